package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/scenarios"
)

func dirNames(t *testing.T, dir string) []string {
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// sums is every file under dir with the SHA-256 of its content.
func sums(t *testing.T, dir string) map[string]string {
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out[path] = fmt.Sprintf("%x", sha256.Sum256(b))
		return nil
	}))
	return out
}

// TestCheckChangesNothing: re-checking a run directory, whatever the
// promises, leaves every file it holds as the run wrote it, and adds none.
func TestCheckChangesNothing(t *testing.T) {
	inTest(t)
	store := t.TempDir()
	code, out, errOut := seqlab("run", "Bug/r-plus-w-le-n", "--seed", "11", "--time-limit", "5s", "--store", store)
	require.Equal(t, 0, code, out+errOut)
	code, out, errOut = seqlab("run", "Bug/r-plus-w-le-n", "--mode", "sim", "--seed", "1", "--time-limit", "2s", "--store", store)
	require.Equal(t, 0, code, out+errOut)
	runs, err := filepath.Glob(filepath.Join(store, "Bug", "r-plus-w-le-n", "*"))
	require.NoError(t, err)
	require.Len(t, runs, 2)
	before := sums(t, store)
	require.NotEmpty(t, before)
	for _, run := range runs {
		for _, args := range [][]string{
			{"check", run},
			{"check", run, "--promise", "monotonic"}, // would have turned a recorded false into true
			{"check", run, "--promise", "unique,gap-free", "--json"},
			{"check", filepath.Join(run, "history.jsonl")},
			{"check", filepath.Join(run, "history.jsonl"), "--promise", "linearizable"},
		} {
			code, out, errOut := seqlab(args...)
			assert.Contains(t, []int{0, 1}, code, "%q: %s%s", args, out, errOut)
			assert.Equal(t, before, sums(t, store), "%q changed the recording", args)
		}
	}
}

func TestList(t *testing.T) {
	code, out, _ := seqlab("list")
	assert.Equal(t, 0, code)
	for _, name := range []string{"Partition/isolate-n3", "Bug/set-if-greater", "Crash/total-power-loss-n3-disk"} {
		assert.Contains(t, out, name)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		assert.LessOrEqual(t, len(line), 120, line)
	}
	assert.NotContains(t, out, "set-if-unchanged", "settings only with --long")

	code, long, _ := seqlab("list", "--long")
	assert.Equal(t, 0, code)
	assert.Contains(t, long, "Bug/set-if-greater\n    the original write rule")
	assert.Contains(t, long, "expects a planted bug: the violation of unique caught; modes grpc,sim")
	for _, args := range [][]string{{"list", "extra"}, {"list", "--short"}} {
		code, _, _ = seqlab(args...)
		assert.Equal(t, 2, code, "%q", args)
	}
}

// TestMessages: a bad argument is refused with a message that names what
// is wrong, and only that.
func TestMessages(t *testing.T) {
	inTest(t)
	store := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
		not  string
	}{
		{[]string{"run", "Bug/set-if-greatr"}, `no scenario or group "Bug/set-if-greatr"; did you mean Bug/set-if-greater?`, "Crash/"},
		{[]string{"run", "partition/ISOLATE-n3"}, "did you mean Partition/isolate-n3", ""},
		{[]string{"run", "isolate-n5"}, "did you mean Partition/isolate-n5?", ""},
		{[]string{"run", "Nothing/like-it"}, `no scenario or group "Nothing/like-it" (seqlab list shows them all)`, ""},
		{[]string{"run", "Partition/isolate-n3", "--concurrency", "1000"}, "concurrency 1000 is over 200, the most clients a run has", ""},
		{[]string{"run", "Partition/isolate-n3", "--time-limit", "-5s"}, "time limit -5s is negative", "concurrency"},
		{[]string{"run", "Partition/isolate-n3", "--time-limit", "1ns"}, "time limit 1ns is under 1s: a shorter run tests nothing", ""},
		{[]string{"run", "Partition/isolate-n3", "--seed", "-1"}, "seed -1 is negative: seeds are 0 or more", ""},
		{[]string{"run", "Partition/isolate-n3", "--mode", "sim", "--seed", "-1"}, "seed -1 is negative", ""},
		{[]string{"hunt", "Bug/set-if-greater", "--seeds", "5-1"}, `bad --seeds "5-1": FROM 5 is above TO 1`, "workers"},
		{[]string{"hunt", "Bug/set-if-greater", "--seeds", "-1"}, `bad --seeds "-1"`, "workers"},
		{[]string{"hunt", "Bug/set-if-greater", "--workers", "0"}, "bad --workers 0: want 1 to 256", "seeds"},
		{[]string{"hunt", "Partition"}, "Partition is a group; name one of its scenarios: Partition/bridge-n3", ""},
		{[]string{"check", filepath.Join(store, "missing")}, "seqlab check: stat ", "check: check:"},
		{[]string{"run", "--all", "Bug"}, "--all runs every scenario; name none", ""},
		{[]string{"run", "--all", "--hunt", "-1"}, "--hunt -1: want 0 to 1000000 seeds", ""},
	} {
		args := tc.args
		if args[0] != "check" {
			args = append(args, "--store", store)
		}
		code, out, errOut := seqlab(args...)
		assert.Equal(t, 2, code, "%q: %s", tc.args, out)
		assert.Contains(t, errOut, tc.want, "%q", tc.args)
		if tc.not != "" {
			assert.NotContains(t, errOut, tc.not, "%q", tc.args)
		}
		assert.Equal(t, 1, strings.Count(errOut, "\n"), "%q: one line: %s", tc.args, errOut)
	}
	assert.Empty(t, dirNames(t, store), "nothing ran")
}

// TestShrinkGRPCRun: shrink refuses a gRPC-mode run and says how to get
// a simulator run of the same seed.
func TestShrinkGRPCRun(t *testing.T) {
	inTest(t)
	store := t.TempDir()
	code, out, errOut := seqlab("run", "Bug/r-plus-w-le-n", "--seed", "11", "--time-limit", "2s", "--store", store)
	require.Equal(t, 0, code, out+errOut)
	runs, err := filepath.Glob(filepath.Join(store, "Bug", "r-plus-w-le-n", "*"))
	require.NoError(t, err)
	require.Len(t, runs, 1)
	code, _, errOut = seqlab("shrink", runs[0], "--store", store)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "is a grpc-mode run, and only sim runs can be shrunk: `seqlab run Bug/r-plus-w-le-n --mode sim --seed 11 --time-limit 2s`")
}

// TestRunGroupAndAll: a group name runs the group, and --all every
// scenario in each of its modes with a hunt each, then a table.
func TestRunGroupAndAll(t *testing.T) {
	inTest(t)
	store := t.TempDir()
	// Full-length runs: the liveness bug needs the healed end of a run.
	code, out, errOut := seqlab("run", "Bug", "--mode", "sim", "--seed", "1", "--store", store)
	require.Equal(t, 0, code, out+errOut)
	pairs := 0
	for _, sc := range scenarios.Catalogue() {
		if sc.Group() == "Bug" {
			for _, system := range sc.SystemNames() {
				pairs++
				assert.Contains(t, out, "\n"+sc.Name+" "+system+" ", "a row for each of the group, on each of its systems")
			}
		}
	}
	assert.Regexp(t, "\nscenario +sim\n", out)
	assert.Contains(t, out, fmt.Sprintf("%d runs of %d scenarios and systems", pairs, pairs))

	code, out, errOut = seqlab("run", "--all", "--mode", "sim", "--hunt", "2", "--store", store)
	require.Equal(t, 0, code, out+errOut)
	for _, sc := range scenarios.Catalogue() {
		for _, system := range sc.SystemNames() {
			assert.Contains(t, out, "\n"+sc.Name+" "+system+" ", "a row for %s on %s", sc.Name, system)
		}
	}
	assert.Contains(t, out, "  sim     hunt 1-2\n")
	assert.Contains(t, out, "caught by 2 of 2")
	assert.Contains(t, out, "held on 2 of 2")
	assert.Contains(t, out, "every one met its expected verdict")
}

// interruptAfter makes the commands see an interrupt after d, as the
// signal handler would report one.
func interruptAfter(t *testing.T, d time.Duration) {
	old := notify
	notify = func(io.Writer) (context.Context, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		timer := time.AfterFunc(d, cancel)
		return ctx, func() { timer.Stop(); cancel() }
	}
	t.Cleanup(func() { notify = old })
}

// TestRunInterrupted: an interrupted run stops, records in its directory
// that it was interrupted, says so, and exits 130.
func TestRunInterrupted(t *testing.T) {
	inTest(t)
	interruptAfter(t, 300*time.Millisecond)
	store := t.TempDir()
	code, out, errOut := seqlab("run", "Partition/halves-n3", "--time-limit", "1h", "--store", store)
	assert.Equal(t, exitInterrupted, code, out+errOut)
	assert.Contains(t, out, "=== INTERRUPTED Partition/halves-n3")
	assert.Contains(t, errOut, "seqlab run: interrupted at ")
	runs, err := filepath.Glob(filepath.Join(store, "Partition", "halves-n3", "*"))
	require.NoError(t, err)
	require.Len(t, runs, 1)
	var info struct {
		Interrupted bool `json:"interrupted"`
	}
	b, err := os.ReadFile(filepath.Join(runs[0], "run.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &info))
	assert.True(t, info.Interrupted)
	assert.FileExists(t, filepath.Join(runs[0], "results.json"))
	summary, err := os.ReadFile(filepath.Join(runs[0], "summary.txt"))
	require.NoError(t, err)
	assert.Contains(t, string(summary), "problem   interrupted at ")

	// A replay of it says the recording was cut short (and is itself
	// interrupted, so as not to run the hour).
	code, out, errOut = seqlab("replay", runs[0], "--store", store)
	assert.Equal(t, exitInterrupted, code, out+errOut)
	assert.Contains(t, out, "warning   the recording was interrupted at ")
	assert.Contains(t, errOut, "seqlab replay: interrupted at ")
}

// TestHuntInterrupted: an interrupted hunt stops taking seeds, prints
// the failing seeds it found, and exits 130.
func TestHuntInterrupted(t *testing.T) {
	interruptAfter(t, 2*time.Second) // a seed or more, even under -race on a loaded machine
	store := t.TempDir()
	code, out, errOut := seqlab("hunt", "Bug/r-plus-w-le-n", "--seeds", "1-1000000", "--time-limit", "2s", "--workers", "2", "--store", store)
	assert.Equal(t, exitInterrupted, code, out+errOut)
	assert.Contains(t, out, "INTERRUPTED after ")
	assert.Contains(t, out, "catch the planted bug; first: 1; seeds: 1-")
	assert.Contains(t, out, "the first, recorded:")
	assert.Contains(t, errOut, "seqlab hunt: interrupted: ")
}

// TestHuntProgress: progress lines say seeds done, speed, hits and time
// left; at most one a second, then one every ten after ten seconds.
func TestHuntProgress(t *testing.T) {
	var buf bytes.Buffer
	clock := time.Unix(0, 0)
	now := func() time.Time { return clock }
	p := progressPrinter(&buf, true, now)
	step := func(d time.Duration, done int64) {
		clock = clock.Add(d)
		p(scenarios.HuntProgress{Done: done, Total: 1000, Hits: int(done), Elapsed: clock.Sub(time.Unix(0, 0))})
	}
	step(500*time.Millisecond, 50)
	assert.Empty(t, buf.String(), "not within the first second")
	step(500*time.Millisecond, 100)
	assert.Equal(t, "hunt      100 of 1000 seeds, 100 seeds/s, 100 catch the bug, about 9s left\n", buf.String())
	step(500*time.Millisecond, 150)
	assert.Equal(t, 1, strings.Count(buf.String(), "\n"), "at most one a second")
	for range 20 {
		step(time.Second, 200)
	}
	assert.Equal(t, 10, strings.Count(buf.String(), "\n"), "one a second to 10s, then one every 10s")
	step(time.Minute, 1000)
	assert.Equal(t, 10, strings.Count(buf.String(), "\n"), "not the last seed: the summary follows")
}

// TestHuntSignal: a real SIGINT to a running hunt stops it cleanly; it
// prints the failing seeds found so far and exits 130.
func TestHuntSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the command as a process")
	}
	cmd := exec.Command(os.Args[0], "hunt", "Bug/r-plus-w-le-n", "--seeds", "1-1000000", "--time-limit", "2s",
		"--workers", "2", "--store", t.TempDir())
	cmd.Env = append(os.Environ(), "SEQLAB_MAIN=1")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var errLines []string
	var mu sync.Mutex
	progressed := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			errLines = append(errLines, sc.Text())
			mu.Unlock()
			if strings.HasPrefix(sc.Text(), "hunt      ") {
				once.Do(func() { close(progressed) })
			}
		}
	}()
	select {
	case <-progressed:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("no progress line within a minute")
	}
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	<-readDone
	err = cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	mu.Lock()
	defer mu.Unlock()
	all := strings.Join(errLines, "\n")
	assert.Equal(t, exitInterrupted, exit.ExitCode(), "stdout:\n%s\nstderr:\n%s", stdout.String(), all)
	assert.Contains(t, all, "seqlab: interrupt: stopping after what is running")
	assert.Contains(t, all, "seqlab hunt: interrupted: ")
	assert.Contains(t, stdout.String(), "catch the planted bug; first: 1; seeds: 1-")
	assert.Contains(t, stdout.String(), "the first, recorded:")
}
