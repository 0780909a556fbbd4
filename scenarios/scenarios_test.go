package scenarios_test

import (
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seqlab/seqlab/scenarios"
)

var (
	seed      = flag.Int64("seed", 0, "run every selected scenario with this seed (default: each scenario's own)")
	store     = flag.String("store", "", "directory for run directories (default: a temporary one, kept on failure)")
	timeLimit = flag.Duration("time-limit", 0, "simulated length of each run (default: the scenario's)")
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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
		if sc.Group() != group {
			continue
		}
		n++
		_, rest, _ := strings.Cut(sc.Name, "/")
		t.Run(rest, func(t *testing.T) {
			t.Parallel()
			opts := scenarios.Options{Seed: *seed, HasSeed: isSet("seed"), TimeLimit: *timeLimit, Store: *store}
			if opts.Store == "" {
				opts.Store = t.TempDir()
			}
			rep, err := scenarios.Run(t, sc, opts)
			require.NoError(t, err)
			if !rep.Met() {
				t.Errorf("%s did not reach its expected verdict:\n%s", sc.Name, rep.Block())
				keep(t, rep.Dir)
			}
		})
	}
	require.NotZero(t, n, "group %s has no scenarios", group)
}

// keep copies a failing run out of the temporary store, so it survives.
func keep(t *testing.T, dir string) {
	if *store != "" {
		return
	}
	dst := "store/failed/" + strings.ReplaceAll(t.Name(), "/", "_") + "-" + time.Now().UTC().Format("20060102T150405")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Logf("keep run: %v", err)
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, err := os.ReadFile(dir + "/" + e.Name())
		if err == nil {
			os.WriteFile(dst+"/"+e.Name(), b, 0o644)
		}
	}
	t.Logf("run kept in %s", dst)
}

func isSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
