package scenarios_test

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seqlab/seqlab/checker/history"
	"github.com/seqlab/seqlab/scenarios"
)

var (
	seed        = flag.Int64("seed", 0, "run every selected scenario with this seed (default: each scenario's own)")
	store       = flag.String("store", "", "directory for run directories (default: a temporary one, kept on failure)")
	timeLimit   = flag.Duration("time-limit", 0, "simulated length of each run (default: the scenario's)")
	concurrency = flag.Int("concurrency", 0, "number of range clients of each run (default: the scenario's)")
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// blocks is where run blocks go. go test shows a passing package's output
// only with -v, so without it the blocks go straight to the terminal, if
// there is one (SEQLAB_TTY=0 turns that off); summary.txt in each run
// directory keeps them either way.
var blocks = sync.OnceValue(func() io.Writer {
	if testing.Verbose() || os.Getenv("SEQLAB_TTY") == "0" {
		return os.Stdout
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		return tty
	}
	return os.Stdout
})

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

// TestBug runs the planted bugs: each must be caught, or the lab is blind.
func TestBug(t *testing.T) { runGroup(t, "Bug") }

func TestEveryGroupIsTested(t *testing.T) {
	for _, g := range scenarios.Groups() {
		switch g {
		case "Partition", "Crash", "Disk", "Pause", "Slow", "Net", "Client", "Mixed", "Speed", "Bug":
		default:
			t.Errorf("group %s has no test function: add func Test%s", g, g)
		}
	}
}

func runGroup(t *testing.T, group string) {
	n := 0
	for _, sc := range scenarios.Catalogue() {
		if sc.Group() != group || !sc.Supports(scenarios.ModeGRPC) {
			continue
		}
		n++
		_, rest, _ := strings.Cut(sc.Name, "/")
		t.Run(rest, func(t *testing.T) {
			t.Parallel()
			opts := scenarios.Options{Seed: *seed, HasSeed: isSet("seed"), TimeLimit: *timeLimit, Concurrency: *concurrency,
				Store: *store, Out: blocks()}
			if opts.Store == "" {
				opts.Store = t.TempDir()
			}
			rep, err := scenarios.Run(t, sc, opts)
			require.NoError(t, err)
			if !rep.Met() {
				keep(t, rep)
				t.Errorf("%s did not reach its expected verdict:\n%s", sc.Name, rep.Block())
			}
		})
	}
	require.NotZero(t, n, "group %s has no scenarios", group)
}

// keep copies a failing run out of the temporary store, so that it
// survives the test, and points the report at the copy.
func keep(t *testing.T, rep *scenarios.Report) {
	if *store != "" {
		return
	}
	dst := filepath.Join("store", "failed", strings.ReplaceAll(t.Name(), "/", "_")+"-"+time.Now().UTC().Format("20060102T150405"))
	if err := os.CopyFS(dst, os.DirFS(rep.Dir)); err != nil {
		t.Logf("could not keep the run: %v", err)
		return
	}
	rep.Dir = dst
}

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
