package scenarios_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/checker/history"
	"github.com/seqlab/seqlab/scenarios"
)

var (
	seed        = flag.Int64("seed", 0, "run every selected scenario with this seed (default: each scenario's own)")
	store       = flag.String("store", "", "directory that keeps every run directory, relative to the module root (default: store/, keeping only the runs whose paths are printed)")
	timeLimit   = flag.Duration("time-limit", 0, "simulated length of each run (default: the scenario's)")
	concurrency = flag.Int("concurrency", 0, "number of range clients of each run (default: the scenario's)")
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// root is the module's root. The paths a test prints are relative to it,
// as are the go test commands in the blocks: the README runs both from
// there.
var root = sync.OnceValue(func() string {
	dir, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			panic("no go.mod above " + dir)
		}
	}
})

// storeDir is where the tests keep run directories: -store, or the
// module's store/, the same store seqlab uses when run from the root.
func storeDir() string {
	s := *store
	if s == "" {
		s = "store"
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(root(), s)
	}
	return s
}

// tty is the terminal that blocks go to when SEQLAB_TTY=1 asks for it
// (nil otherwise): go test shows a passing test's log only with -v.
var tty = sync.OnceValue(func() io.Writer {
	if os.Getenv("SEQLAB_TTY") != "1" {
		return nil
	}
	if f, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		return f
	}
	return nil
})

// printed reports whether the paths t prints reach anyone: under -v, with
// SEQLAB_TTY=1, when t fails, or when -store asks to keep every run.
func printed(t *testing.T) bool {
	return *store != "" || testing.Verbose() || tty() != nil || t.Failed()
}

// track removes a run directory at the end of t unless its path was
// printed: every directory a printed command names survives the test.
func track(t *testing.T, dir string) {
	t.Cleanup(func() {
		if printed(t) {
			return
		}
		_ = os.RemoveAll(dir)
		for d := filepath.Dir(dir); strings.HasPrefix(d, storeDir()+string(filepath.Separator)); d = filepath.Dir(d) {
			if os.Remove(d) != nil { // not empty: another run's
				break
			}
		}
	})
}

// relative gives a run's block its directory relative to the module root.
func relative(rep *scenarios.Report) *scenarios.Report {
	r := *rep
	if rel, err := filepath.Rel(root(), r.Dir); err == nil && !strings.HasPrefix(rel, "..") {
		r.Dir = rel
	}
	return &r
}

// show prints a run's block with t.Log, which go test shows under -v and
// for a failing test, or on the terminal with SEQLAB_TTY=1; summary.txt
// in the run directory keeps it either way.
func show(t *testing.T, rep *scenarios.Report) {
	block := relative(rep).Block()
	if w := tty(); w != nil {
		fmt.Fprint(w, block)
		return
	}
	t.Log("\n" + block)
}

// The groups: one test function each, so that -run Partition, -run Crash
// or -run Bug select a group. TestEveryGroupIsTested keeps this list whole.

func TestPartition(t *testing.T) { runGroup(t, "Partition") }
func TestCrash(t *testing.T)     { runGroup(t, "Crash") }
func TestDisk(t *testing.T)      { runGroup(t, "Disk") }
func TestPause(t *testing.T)     { runGroup(t, "Pause") }
func TestSlow(t *testing.T)      { runGroup(t, "Slow") }
func TestNet(t *testing.T)       { runGroup(t, "Net") }
func TestClient(t *testing.T)    { runGroup(t, "Client") }
func TestMixed(t *testing.T)     { runGroup(t, "Mixed") }
func TestSpeed(t *testing.T)     { runGroup(t, "Speed") }
func TestClock(t *testing.T)     { runGroup(t, "Clock") }

// TestBug runs the planted bugs: each must be caught, or the lab is blind.
func TestBug(t *testing.T) { runGroup(t, "Bug") }

func TestEveryGroupIsTested(t *testing.T) {
	for _, g := range scenarios.Groups() {
		switch g {
		case "Partition", "Crash", "Disk", "Pause", "Slow", "Net", "Client", "Mixed", "Speed", "Clock", "Bug":
		default:
			t.Errorf("group %s has no test function: add func Test%s", g, g)
		}
	}
}

// runGroup runs each scenario of group in the gRPC mode on every system
// it applies to, one subtest per system: TestPartition/isolate-n3/raft_seq.
func runGroup(t *testing.T, group string) {
	// The groups share the parallel slots (one a core), so that no
	// group's longest run holds the package up with a core idle.
	t.Parallel()
	n := 0
	for _, sc := range scenarios.Catalogue() {
		if sc.Group() != group || !sc.Supports(scenarios.ModeGRPC) {
			continue
		}
		var systems []string
		for _, system := range sc.SystemNames() {
			// The lab's own: a test may register a system of its own.
			if slices.Contains(labSystems, system) && sc.RunsOn(system, scenarios.ModeGRPC) {
				systems = append(systems, system)
			}
		}
		n += len(systems)
		_, rest, _ := strings.Cut(sc.Name, "/")
		t.Run(rest, func(t *testing.T) {
			t.Parallel()
			for _, system := range systems {
				t.Run(system, func(t *testing.T) {
					t.Parallel()
					opts := scenarios.Options{System: system, Seed: *seed, HasSeed: isSet("seed"), TimeLimit: *timeLimit, Concurrency: *concurrency,
						Store: storeDir(), Out: io.Discard}
					rep, err := scenarios.Run(t, sc, opts)
					require.NoError(t, err)
					track(t, rep.Dir)
					if !rep.Met() {
						t.Errorf("%s on %s did not reach its expected verdict", sc.Name, system)
					}
					show(t, rep)
				})
			}
		})
	}
	require.NotZero(t, n, "group %s has no scenarios", group)
}

// labSystems are the systems the lab ships, which the group tests run.
var labSystems = []string{scenarios.RRSeq, scenarios.RaftSeq, scenarios.FlakeSeq}

func isSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// TestReplaySameSchedule: the same seed gives the same fault schedule —
// the same faults, on the same targets, at the same virtual times. (The
// interleaving of goroutines is Go's to choose, so outcomes may differ.)
func TestReplaySameSchedule(t *testing.T) {
	sc, err := scenarios.Find("Mixed/everything-n5")
	require.NoError(t, err)
	var runs [2][]string
	for i := range runs {
		rep, err := scenarios.Run(t, sc, scenarios.Options{Seed: 99, HasSeed: true, TimeLimit: 12 * time.Second,
			Store: t.TempDir(), Out: io.Discard})
		require.NoError(t, err)
		events, problems, err := history.ReadFile(filepath.Join(rep.Dir, "history.jsonl"))
		require.NoError(t, err)
		require.Empty(t, problems)
		for _, e := range events {
			if e.Nemesis {
				runs[i] = append(runs[i], fmt.Sprintf("%d %s %s", e.Time, e.F, e.Value))
			}
		}
	}
	require.NotEmpty(t, runs[0])
	assert.Equal(t, runs[0], runs[1])
}

// TestModes: a scenario runs only in the modes it names.
func TestModes(t *testing.T) {
	sc, err := scenarios.Find("Crash/restart-one-n3-memory")
	require.NoError(t, err)
	assert.True(t, sc.Supports(scenarios.ModeGRPC) && sc.Supports(scenarios.ModeSim), "no modes named: both")

	simOnly := sc
	simOnly.Modes = []string{scenarios.ModeSim}
	_, err = scenarios.Run(t, simOnly, scenarios.Options{Store: t.TempDir(), Out: io.Discard})
	assert.ErrorContains(t, err, "does not run in grpc mode")
	_, _, err = scenarios.SimConfig(simOnly, scenarios.Options{})
	assert.NoError(t, err)

	grpcOnly := sc
	grpcOnly.Modes = []string{scenarios.ModeGRPC}
	_, _, err = scenarios.SimConfig(grpcOnly, scenarios.Options{})
	assert.ErrorContains(t, err, "does not run in sim mode")

	bad := sc
	bad.Modes = []string{"fast"}
	assert.ErrorContains(t, bad.WithDefaults().Validate(), `mode "fast"`)
}

// TestPrintedRunsSurvive: the run directory that a block names, and its
// replay command with it, outlives go test; a run whose block nobody saw
// leaves nothing behind. It runs this test binary on one planted bug,
// with -v and without.
func TestPrintedRunsSurvive(t *testing.T) {
	if os.Getenv("SEQLAB_INNER") != "" {
		t.Skip("inside the outer test")
	}
	runs := func() []string {
		dirs, err := filepath.Glob(filepath.Join(storeDir(), "Bug", "r-plus-w-le-n", "*"))
		require.NoError(t, err)
		return dirs
	}
	inner := func(args ...string) string {
		cmd := exec.Command(os.Args[0], append([]string{"-test.run", "^TestBug$/^r-plus-w-le-n$/^rr_seq$", "-time-limit", "2s"}, args...)...)
		cmd.Env = append(os.Environ(), "SEQLAB_INNER=1", "SEQLAB_TTY=")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	if *store != "" {
		t.Skip("-store keeps every run")
	}
	before := runs()
	out := inner()
	assert.NotContains(t, out, "run dir", "without -v, go test shows no block of a passing test")
	assert.ElementsMatch(t, before, runs(), "a run nobody saw is not kept")

	out = inner("-test.v")
	_, rest, ok := strings.Cut(out, "seqlab replay ")
	require.True(t, ok, "-v shows the block with its replay command:\n%s", out)
	dir := strings.Fields(rest)[0]
	require.DirExists(t, filepath.Join(root(), dir), "the printed replay command's directory, from the module root")
	assert.FileExists(t, filepath.Join(root(), dir, "run.json"))
	assert.False(t, filepath.IsAbs(dir), "printed relative to the module root, as the README runs it: %s", dir)
	require.NoError(t, os.RemoveAll(filepath.Join(root(), dir)))
	for d := filepath.Dir(filepath.Join(root(), dir)); d != storeDir() && os.Remove(d) == nil; d = filepath.Dir(d) {
	}
}

// TestBlockWords: a block says what it found in the lab's words: caught
// for a planted bug, n/a for a check with nothing to read, not promised
// for gaps.
func TestBlockWords(t *testing.T) {
	sc, err := scenarios.Find("Bug/r-plus-w-le-n")
	require.NoError(t, err)
	rep, err := scenarios.RunSim(sc, scenarios.Options{Seed: 1, HasSeed: true, TimeLimit: 2 * time.Second, Store: t.TempDir(), Out: io.Discard})
	require.NoError(t, err)
	require.True(t, rep.Met(), rep.Block())
	b := rep.Block()
	for _, want := range []string{
		"=== PASS Bug/r-plus-w-le-n\n",
		"\ncheck     unique        caught        ",
		"\ncheck     monotonic     n/a           no IDs handed out one by one\n",
		"\ncheck     gap-free      not promised  ",
		"\nverdict   CAUGHT: the expected violation of unique (promised unique,linearizable,live)\n",
	} {
		assert.Contains(t, b, want)
	}
	assert.Equal(t, checker.Caught, rep.Word(checker.Unique))
	assert.NotContains(t, b, " false ")
	assert.NotContains(t, b, " true ")

	healthy, err := scenarios.Find("Partition/halves-n3")
	require.NoError(t, err)
	rep, err = scenarios.RunSim(healthy, scenarios.Options{Seed: 1, HasSeed: true, TimeLimit: 2 * time.Second, Store: t.TempDir(), Out: io.Discard})
	require.NoError(t, err)
	assert.Contains(t, rep.Block(), "\nverdict   held (promised unique,linearizable,live)\n")
	assert.Contains(t, rep.Block(), "\ncheck     unique        held          ")
	assert.NotContains(t, rep.Block(), "replay", "a healthy run that passes prints no replay command")
}

// TestPrepareRejects: bad settings are refused up front, each naming
// only what is wrong, with the limit.
func TestPrepareRejects(t *testing.T) {
	sc, err := scenarios.Find("Partition/halves-n3")
	require.NoError(t, err)
	for _, tc := range []struct {
		opts scenarios.Options
		want string
	}{
		{scenarios.Options{Seed: -1, HasSeed: true}, "seed -1 is negative: seeds are 0 or more"},
		{scenarios.Options{TimeLimit: -5 * time.Second}, "time limit -5s is negative"},
		{scenarios.Options{TimeLimit: time.Nanosecond}, "time limit 1ns is under 1s: a shorter run tests nothing"},
		{scenarios.Options{Concurrency: -3}, "concurrency -3 is negative"},
		{scenarios.Options{Concurrency: 1000}, "concurrency 1000 is over 200, the most clients a run has"},
	} {
		_, _, err := scenarios.Prepare(sc, tc.opts)
		assert.EqualError(t, err, tc.want)
	}
	_, _, err = scenarios.Prepare(sc, scenarios.Options{Concurrency: scenarios.MaxClients, TimeLimit: scenarios.MinTimeLimit})
	assert.NoError(t, err, "the limits themselves are allowed")
}

// TestRunInterrupted: a run whose context ends stops early, checks what
// it recorded, and says in its run directory that it was interrupted.
func TestRunInterrupted(t *testing.T) {
	sc, err := scenarios.Find("Partition/halves-n3")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	stop := time.AfterFunc(time.Second, cancel) // long enough to record something on a loaded machine
	defer stop.Stop()
	rep, err := scenarios.Run(t, sc, scenarios.Options{TimeLimit: time.Hour, Store: t.TempDir(), Out: io.Discard, Context: ctx})
	require.NoError(t, err)
	assert.True(t, rep.Info.Interrupted)
	assert.Less(t, rep.Info.SimTime, time.Hour)
	assert.False(t, rep.Met(), "an interrupted run has not met its verdict")
	assert.Contains(t, rep.Problems[0], "interrupted at ")
	summary, err := os.ReadFile(filepath.Join(rep.Dir, "summary.txt"))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(summary), "=== INTERRUPTED Partition/halves-n3\n"), "%s", summary)
	info, _, err := scenarios.ReadRun(rep.Dir)
	require.NoError(t, err)
	assert.True(t, info.Interrupted, "run.json records it")
	assert.Equal(t, rep.Info.SimTime, info.SimTime)
	assert.FileExists(t, filepath.Join(rep.Dir, checker.ResultsFile))
}

// TestHuntInterrupted: a hunt whose context ends takes no new seed and
// reports what the seeds it ran found.
func TestHuntInterrupted(t *testing.T) {
	sc, err := scenarios.Find("Bug/r-plus-w-le-n")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls []scenarios.HuntProgress
	h, err := scenarios.Hunt(sc, 1, 1000, 2, scenarios.Options{TimeLimit: 2 * time.Second, Context: ctx}, func(p scenarios.HuntProgress) {
		calls = append(calls, p)
		if p.Done == 5 {
			cancel()
		}
	})
	require.NoError(t, err)
	assert.True(t, h.Interrupted)
	assert.GreaterOrEqual(t, h.Done, int64(5))
	assert.Less(t, h.Done, int64(20), "no new seeds after the interrupt, bar one per worker")
	assert.Len(t, h.Hits, int(h.Done), "every seed catches this bug")
	require.Len(t, calls, int(h.Done), "one progress call per seed")
	assert.Equal(t, int64(1000), calls[0].Total)
	assert.Equal(t, len(h.Hits), calls[len(calls)-1].Hits)
}

// TestBuild: a run records what built it. Test binaries carry no VCS
// stamp, so the commit comes from git when git is here.
func TestBuild(t *testing.T) {
	b := scenarios.CurrentBuild()
	assert.Equal(t, runtime.Version(), b.Go)
	if head, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		assert.Equal(t, strings.TrimSpace(string(head)), b.Commit)
	} else {
		assert.Equal(t, "unknown", b.Commit)
	}
	rec := scenarios.Build{Commit: "0123456789abcdef", Go: "go1.0"}
	now := scenarios.Build{Commit: "fedcba9876543210", Go: "go1.0"}
	assert.Empty(t, rec.Differences(rec))
	assert.Equal(t, []string{"recorded at commit 0123456789ab, replayed at fedcba987654"}, rec.Differences(now))
	now.Dirty, now.Commit = true, rec.Commit
	assert.Equal(t, []string{"the working tree had uncommitted changes, which no commit records"}, rec.Differences(now))
	assert.Equal(t, []string{"the recording does not say what built it"}, scenarios.Build{}.Differences(now))
	assert.Equal(t, "commit 0123456789ab (dirty), go1.0", now.String())

	sc, err := scenarios.Find("Partition/halves-n3")
	require.NoError(t, err)
	rep, err := scenarios.Run(t, sc, scenarios.Options{TimeLimit: 2 * time.Second, Store: t.TempDir(), Out: io.Discard})
	require.NoError(t, err)
	info, _, err := scenarios.ReadRun(rep.Dir)
	require.NoError(t, err)
	assert.Equal(t, b, info.Build, "run.json records the build")
	assert.Contains(t, rep.Block(), "\nbuild     "+b.String()+"\n")
}
