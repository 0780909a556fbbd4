package checker

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// memoryChild, when set, makes the test binary a child that checks the
// history at that path, as seqlab check does, and exits: the parent reads
// the child's peak memory from its rusage, which no measurement inside
// the parent's own process, with its generated history and its testing
// machinery, could give.
const memoryChild = "SEQLAB_CHECKER_MEMORY_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(memoryChild); path != "" {
		os.Exit(checkAsChild(path))
	}
	os.Exit(m.Run())
}

// checkAsChild checks path with seqlab check's options and prints the
// verdict line and the events checked.
func checkAsChild(path string) int {
	res, err := CheckDir(path, Options{Timeout: time.Minute})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Printf("valid=%s events=%d\n", res.Valid, res.Events)
	if res.Valid != ValidTrue {
		fmt.Print(res.Summary())
		return 1
	}
	return 0
}

// childCheck is one check of a history file in a child process.
type childCheck struct {
	peakMB  float64
	elapsed time.Duration
	// cpu is the child's user and system time: on a machine shared with
	// others, wall time says more about them than about the check.
	cpu time.Duration
	out string
}

// checkInChild runs the check of path in a child process and returns its
// peak resident memory and its wall time.
func checkInChild(path string) (childCheck, error) {
	exe, err := os.Executable()
	if err != nil {
		return childCheck{}, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), memoryChild+"="+path)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	c := childCheck{elapsed: time.Since(start), out: strings.TrimSpace(string(out))}
	if err != nil {
		return c, fmt.Errorf("child: %v: %s", err, c.out)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return c, fmt.Errorf("no rusage on this system")
	}
	c.peakMB = float64(ru.Maxrss) / 1024 // KiB on Linux
	c.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return c, nil
}

// BenchmarkCheckMemory checks generated histories of 1M and 10M events,
// each in a child process, and reports the child's peak RSS (peak-MB),
// wall time (s) and CPU time (cpu-s, user and system): the whole of
// seqlab check on the file, reading included. The files take a while to write (10M events are 1.2 GB), so
// this runs only when asked for:
//
//	go test ./checker -run X -bench CheckMemory
func BenchmarkCheckMemory(b *testing.B) {
	if testing.Short() {
		b.Skip("writes histories of up to 1.2 GB")
	}
	for _, tc := range []struct {
		name string
		ops  int
	}{
		{"1M", 500_000},
		{"10M", 5_000_000},
	} {
		b.Run(tc.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "history.jsonl")
			if err := writeHistoryFile(path, tc.ops); err != nil {
				b.Fatal(err)
			}
			var last childCheck
			for b.Loop() {
				c, err := checkInChild(path)
				if err != nil {
					b.Fatal(err)
				}
				last = c
			}
			b.Logf("%s", last.out)
			b.ReportMetric(last.peakMB, "peak-MB")
			b.ReportMetric(last.elapsed.Seconds(), "s")
			b.ReportMetric(last.cpu.Seconds(), "cpu-s")
			b.ReportMetric(0, "ns/op") // one child's time is s
		})
	}
}

// writeHistoryFile writes genHistory's benchmark history (64 processes,
// one sequence) of ops operations, about 2*ops events, to path.
func writeHistoryFile(path string, ops int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := writeHistory(w, 42, 64, ops, []string{"default"}); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
