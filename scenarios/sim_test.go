package scenarios_test

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/scenarios"
	"github.com/seqlab/seqlab/simnet/sim"
)

// simLimit keeps the sim-mode tests within CI's budget.
const simLimit = 10 * time.Second

// TestSimDeterminism: every scenario, on a sample of seeds, gives the same
// trace hash twice.
func TestSimDeterminism(t *testing.T) {
	for _, sc := range scenarios.Catalogue() {
		for _, seed := range []int64{1, 2} {
			cfg, _, err := scenarios.SimConfig(sc, scenarios.Options{Seed: seed, HasSeed: true, TimeLimit: simLimit})
			require.NoError(t, err, sc.Name)
			a, err := sim.Run(cfg, false)
			require.NoError(t, err)
			b, err := sim.Run(cfg, false)
			require.NoError(t, err)
			assert.Equal(t, a.Hash, b.Hash, "%s seed %d", sc.Name, seed)
		}
	}
}

// TestSimVerdicts: in the simulator too, each scenario reaches its
// expected verdict on a sample of seeds — the modes agree on the non-bug
// scenarios, and the bugs are caught. A planted bug needs the seeds its
// hunt needs, so for bugs the sample is the first seed that catches it
// within 1,000 (TestSimBugs checks that one exists).
func TestSimVerdicts(t *testing.T) {
	for _, sc := range scenarios.Catalogue() {
		if sc.Group() == "Bug" {
			continue
		}
		for _, seed := range []int64{1, 2, 3} {
			cfg, _, err := scenarios.SimConfig(sc, scenarios.Options{Seed: seed, HasSeed: true, TimeLimit: simLimit})
			require.NoError(t, err)
			out, err := scenarios.Simulate(sc, cfg)
			require.NoError(t, err)
			assert.True(t, out.Met(), "%s seed %d: %v\n%s", sc.Name, seed, out.Problems, out.Results.Summary())
		}
	}
}

// TestSimBugs: the hunt finds each planted bug within 1,000 seeds;
// shrinking reduces its plan; the shrunk run replays bit-exactly to the
// same violation.
func TestSimBugs(t *testing.T) {
	store := t.TempDir()
	for _, sc := range scenarios.Catalogue() {
		if sc.Group() != "Bug" {
			continue
		}
		t.Run(sc.Name, func(t *testing.T) {
			var hit int64 = -1
			for from := int64(1); from <= 1000 && hit < 0; from += 50 {
				h, err := scenarios.Hunt(sc, from, from+49, 2, scenarios.Options{TimeLimit: simLimit}, nil)
				require.NoError(t, err)
				require.Empty(t, h.Errors)
				if len(h.Hits) > 0 {
					hit = h.Hits[0]
				}
			}
			require.GreaterOrEqual(t, hit, int64(0), "not found in 1000 seeds")
			rep, err := scenarios.RunSim(sc, scenarios.Options{Seed: hit, HasSeed: true, TimeLimit: simLimit, Store: store, Out: io.Discard})
			require.NoError(t, err)
			require.True(t, rep.Met(), rep.Block())

			sh, err := scenarios.Shrink(rep.Dir, scenarios.Options{Store: store, Out: io.Discard})
			require.NoError(t, err)
			t.Logf("seed %d; %s", hit, sh)
			assert.LessOrEqual(t, sh.OpsAfter, sh.OpsBefore)
			assert.LessOrEqual(t, len(sh.After.Faults), len(sh.Before.Faults))
			assert.True(t, sh.Report.Met(), "the shrunk run still catches the bug")

			again, exact, err := scenarios.ReplaySim(sh.Report.Dir, scenarios.Options{Store: store, Out: io.Discard})
			require.NoError(t, err)
			assert.True(t, exact, "replay of the shrunk run is bit-exact")
			assert.True(t, again.Met())
		})
	}
}
