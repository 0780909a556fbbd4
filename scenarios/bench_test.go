package scenarios_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seqlab/seqlab/scenarios"
	"github.com/seqlab/seqlab/simnet/sim"
)

// BenchmarkHuntSeed is one seed of a hunt of the speed scenario: a
// 30-second simulated run of 5 nodes and 10 clients, and its checks. It
// reports the run's speed against real time and the seeds a minute one
// core hunts, both by the wall clock and by the CPU time the process
// spent (the GC's included): on a shared machine the second is the
// steadier figure.
func BenchmarkHuntSeed(b *testing.B) {
	benchHunt(b, "Speed/healthy-n5-c10")
}

// BenchmarkHuntSeeds is the same for each 30-second scenario a hunt runs
// most, planted bugs among them.
func BenchmarkHuntSeeds(b *testing.B) {
	for _, name := range []string{"Speed/healthy-n5-c10", "Partition/halves-n5", "Mixed/at-once-n5", "Crash/restart-one-n5-disk",
		"Bug/set-if-greater", "Bug/rejoin-empty"} {
		b.Run(name, func(b *testing.B) { benchHunt(b, name) })
	}
}

// BenchmarkHunt is a hunt of the speed scenario on two workers, as
// seqlab hunt runs one on this machine's two cores: seeds a minute by the
// wall clock (seeds/min) and by the CPU time spent (cpu-ms/seed).
func BenchmarkHunt(b *testing.B) {
	sc, err := scenarios.Find("Speed/healthy-n5-c10")
	if err != nil {
		b.Fatal(err)
	}
	const seeds = 100
	cpu0 := cpuTime()
	next := int64(1)
	for b.Loop() {
		rep, err := scenarios.HuntSeeds(sc, scenarios.HuntPlan{From: next, To: next + seeds - 1, Workers: 2}, scenarios.Options{}, nil)
		if err != nil || len(rep.Errors) > 0 || len(rep.Hits) > 0 {
			b.Fatal(err, rep.Errors, rep.Hits)
		}
		next += seeds
	}
	n := float64(b.N * seeds)
	b.ReportMetric(n/b.Elapsed().Minutes(), "seeds/min")
	b.ReportMetric(float64(cpuTime()-cpu0)/1e6/n, "cpu-ms/seed")
	b.ReportMetric(0, "ns/op")
}

func benchHunt(b *testing.B, name string) {
	sc, err := scenarios.Find(name)
	if err != nil {
		b.Fatal(err)
	}
	bug := sc.Group() == "Bug"
	cfg, _, err := scenarios.SimConfig(sc, scenarios.Options{Seed: 1, HasSeed: true})
	if err != nil {
		b.Fatal(err)
	}
	limit := cfg.TimeLimit
	b.ResetTimer()
	cpu0 := cpuTime()
	// b.N seeds as a hunt runs them, on one worker: each seed's plan, its
	// run, its checks, and nothing written for a seed that passes; the
	// hunt's own setup once.
	rep, err := scenarios.HuntSeeds(sc, scenarios.HuntPlan{From: 1, To: int64(b.N), Workers: 1}, scenarios.Options{}, nil)
	if err != nil || len(rep.Errors) > 0 || (!bug && len(rep.Hits) > 0) || rep.Done != int64(b.N) {
		b.Fatal(err, rep.Errors, rep.Hits)
	}
	per := b.Elapsed() / time.Duration(b.N)
	cpu := (cpuTime() - cpu0) / time.Duration(b.N)
	b.ReportMetric(float64(limit)/float64(per), "x-realtime")
	b.ReportMetric(float64(time.Minute)/float64(per), "seeds/min/core")
	b.ReportMetric(float64(cpu)/1e6, "cpu-ms/seed")
	b.ReportMetric(float64(limit)/float64(cpu), "x-realtime-cpu")
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// simMemoryChild, when set, makes the test binary a child that plays the
// 1-hour Mixed/everything-n5 run in the simulator and exits, so that the
// parent can read the child's peak memory from its rusage: "sim" writes
// the history to a file as the run makes it and stops; "run" is the
// whole of seqlab run --mode sim (the run dir, its checks and its
// report).
const simMemoryChild = "SEQLAB_SIM_MEMORY_CHILD"

func init() {
	// init, not TestMain: the child must not run the package's tests.
	if stage := os.Getenv(simMemoryChild); stage != "" {
		os.Exit(simAsChild(stage, os.Getenv(simMemoryChild+"_DIR")))
	}
}

func simAsChild(stage, dir string) int {
	sc, err := scenarios.Find("Mixed/everything-n5")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	opts := scenarios.Options{TimeLimit: time.Hour, Store: dir, Out: io.Discard}
	if stage == "sim" {
		cfg, _, err := scenarios.SimConfig(sc, opts)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		f, err := os.Create(filepath.Join(dir, "history.jsonl"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		w := bufio.NewWriterSize(f, 1<<16)
		r, err := cfg.RunTo(sim.Output{History: w})
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Printf("events=%d ops=%d\n", r.Events, r.Ops)
		return 0
	}
	rep, err := scenarios.RunSim(sc, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Printf("verdict=%s problems=%d\n", rep.Verdict.Valid, len(rep.Problems))
	return 0
}

// BenchmarkSimMemory plays the 1-hour Mixed/everything-n5 run in a child
// process and reports the child's peak RSS (peak-MB) and CPU time: the
// simulation with its history streamed to a file (sim), and the whole
// seqlab run (run). It takes a while, so it runs only when asked for:
//
//	go test ./scenarios -run X -bench SimMemory -benchtime 1x
func BenchmarkSimMemory(b *testing.B) {
	if testing.Short() {
		b.Skip("an hour of simulated time")
	}
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	for _, stage := range []string{"sim", "run"} {
		b.Run(stage, func(b *testing.B) {
			var peak, cpu float64
			for b.Loop() {
				cmd := exec.Command(exe)
				cmd.Env = append(os.Environ(), simMemoryChild+"="+stage, simMemoryChild+"_DIR="+b.TempDir())
				out, err := cmd.CombinedOutput()
				if err != nil {
					b.Fatalf("child: %v: %s", err, out)
				}
				ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
				peak = float64(ru.Maxrss) / 1024 // KiB on Linux
				cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
				b.Logf("%s", strings.TrimSpace(string(out)))
			}
			b.ReportMetric(peak, "peak-MB")
			b.ReportMetric(cpu, "cpu-s")
		})
	}
}
