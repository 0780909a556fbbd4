package scenarios_test

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/scenarios"
)

// simLimit keeps the sim-mode tests within CI's budget.
const simLimit = 10 * time.Second

// TestSimDeterminism: every scenario, on a sample of seeds, gives the same
// trace hash twice; a difference names the first event where the runs
// part. The hashes are also those of testdata/sim-hashes.golden: a change
// that makes the simulator or a system behave otherwise shows there (and
// the seed ranges the README claims were hunted are then to hunt again);
// one meant to change nothing, such as making the simulator faster, must
// leave the file as it is. -update-hashes rewrites it.
func TestSimDeterminism(t *testing.T) {
	var got []string
	for _, sc := range simScenarios() {
		for _, system := range sc.SystemNames() {
			if !slices.Contains(labSystems, system) || !sc.RunsOn(system, scenarios.ModeSim) {
				continue
			}
			seeds := []int64{1, 2}
			if system != scenarios.RRSeq {
				seeds = seeds[:1] // rr_seq's runs cover the scenarios; one seed each covers the systems
			}
			for _, seed := range seeds {
				cfg, _, err := scenarios.SimConfig(sc, scenarios.Options{System: system, Seed: seed, HasSeed: true, TimeLimit: simLimit})
				require.NoError(t, err, sc.Name)
				a, err := cfg.Run(false)
				require.NoError(t, err)
				b, err := cfg.Run(false)
				require.NoError(t, err)
				if a.Hash != b.Hash {
					t.Errorf("%s on %s seed %d: two runs differ; %s", sc.Name, system, seed, firstDivergence(t, cfg))
				}
				got = append(got, fmt.Sprintf("%s %s %d %s", sc.Name, system, seed, a.Hash))
			}
		}
	}
	golden := filepath.Join("testdata", "sim-hashes.golden")
	text := strings.Join(got, "\n") + "\n"
	if *updateHashes {
		require.NoError(t, os.WriteFile(golden, []byte(text), 0o644))
		return
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "go test ./scenarios -run TestSimDeterminism -update-hashes writes it")
	wantLines := strings.Split(strings.TrimSuffix(string(want), "\n"), "\n")
	changed := 0
	for i, line := range got {
		if i >= len(wantLines) || wantLines[i] != line {
			if changed++; changed <= 5 {
				t.Errorf("run's trace hash is not the golden one: got %q", line)
			}
		}
	}
	if changed > 0 || len(wantLines) != len(got) {
		t.Errorf("%d of %d runs differ from %s (%d lines there): the simulator or a system now behaves otherwise; if that is meant, rewrite it with -update-hashes", changed, len(got), golden, len(wantLines))
	}
}

var updateHashes = flag.Bool("update-hashes", false, "rewrite testdata/sim-hashes.golden with the runs' trace hashes")

// TestReplayEverySystem: a sim run of each system, replayed from its run
// directory (plan.json, with the system's own configuration), is bit-exact,
// and another seed is not.
func TestReplayEverySystem(t *testing.T) {
	sc, err := scenarios.Find("Mixed/at-once-n5")
	require.NoError(t, err)
	for _, system := range labSystems {
		t.Run(system, func(t *testing.T) {
			store := t.TempDir()
			rep, err := scenarios.RunSim(sc, scenarios.Options{System: system, Seed: 5, HasSeed: true, TimeLimit: simLimit, Store: store, Out: io.Discard})
			require.NoError(t, err)
			require.True(t, rep.Met(), rep.Block())
			assert.Equal(t, system, rep.Info.System)
			again, exact, err := scenarios.ReplaySim(rep.Dir, scenarios.Options{Store: store, Out: io.Discard})
			require.NoError(t, err)
			assert.True(t, exact, "replay of %s: hash %s, recorded %s", system, again.Info.Hash, rep.Info.Hash)
			assert.Equal(t, system, again.Info.System, "the replay runs the recorded system")
			other, err := scenarios.RunSim(sc, scenarios.Options{System: system, Seed: 6, HasSeed: true, TimeLimit: simLimit, Store: store, Out: io.Discard})
			require.NoError(t, err)
			assert.NotEqual(t, rep.Info.Hash, other.Info.Hash, "another seed, another run")
		})
	}
}

// firstDivergence runs cfg twice more, keeping the traces, and says where
// they part.
func firstDivergence(t *testing.T, cfg scenarios.SimPlan) string {
	a, err := cfg.Run(true)
	require.NoError(t, err)
	b, err := cfg.Run(true)
	require.NoError(t, err)
	for i := range min(len(a.Trace), len(b.Trace)) {
		if a.Trace[i] != b.Trace[i] {
			return fmt.Sprintf("first diverging event %d:\n  %s\n  %s", i, a.Trace[i], b.Trace[i])
		}
	}
	return fmt.Sprintf("traces of %d and %d events agree as far as the shorter goes", len(a.Trace), len(b.Trace))
}

// TestModesAgree: on the same seeds, the gRPC mode and the deterministic
// mode reach the same verdict on each property of every scenario that is
// not a planted bug.
func TestModesAgree(t *testing.T) {
	for _, sc := range simScenarios() {
		if sc.Group() == "Bug" || !sc.Supports(scenarios.ModeGRPC) {
			continue
		}
		for _, seed := range []int64{1, 2} {
			t.Run(fmt.Sprintf("%s/seed%d", sc.Name, seed), func(t *testing.T) {
				t.Parallel()
				opts := scenarios.Options{Seed: seed, HasSeed: true, TimeLimit: 6 * time.Second, Store: t.TempDir(), Out: io.Discard}
				g, err := scenarios.Run(t, sc, opts)
				require.NoError(t, err)
				s, err := scenarios.RunSim(sc, opts)
				require.NoError(t, err)
				for _, p := range []string{"unique", "linearizable", "monotonic"} {
					assert.Equal(t, g.Verdict.Results.Checks[p].Valid, s.Verdict.Results.Checks[p].Valid,
						"%s: grpc says %s, sim says %s", p, g.Verdict.Checks[p], s.Verdict.Checks[p])
				}
				assert.Equal(t, g.Verdict.Valid, s.Verdict.Valid)
				assert.True(t, g.Met() && s.Met(), "grpc: %v; sim: %v", g.Problems, s.Problems)
			})
		}
	}
}

// TestSimVerdicts: in the simulator too, each scenario reaches its
// expected verdict on a sample of seeds — the modes agree on the non-bug
// scenarios, and the bugs are caught. A planted bug needs the seeds its
// hunt needs, so for bugs the sample is the first seed that catches it
// within 1,000 (TestSimBugs checks that one exists).
func TestSimVerdicts(t *testing.T) {
	for _, sc := range simScenarios() {
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

// fullLength are planted bugs that need runs of the scenario's full
// length (the rare one, and the liveness one, whose check needs time
// after the last fault), each with a seed known to catch it, where
// TestSimBugs starts its search.
var fullLength = map[string]int64{"Bug/rejoin-empty": 682, "Bug/shun-reset": 1, "Bug/raft-rejoin-empty": 9, "Bug/raft-rejoin-empty-mixed": 33}

// TestSimBugs: the hunt finds each planted bug within 1,000 seeds;
// shrinking reduces its plan; the shrunk run replays bit-exactly to the
// same violation.
func TestSimBugs(t *testing.T) {
	store := storeDir() // a failure prints the block, and its replay command
	for _, sc := range simScenarios() {
		if sc.Group() != "Bug" {
			continue
		}
		t.Run(sc.Name, func(t *testing.T) {
			var hit int64 = -1
			start, limit := int64(1), simLimit
			if s, ok := fullLength[sc.Name]; ok {
				start, limit = s, 0
			}
			for from := start; from < start+1000 && hit < 0; from += 50 {
				h, err := scenarios.Hunt(sc, from, from+49, 2, scenarios.Options{TimeLimit: limit}, nil)
				require.NoError(t, err)
				require.Empty(t, h.Errors)
				if len(h.Hits) > 0 {
					hit = h.Hits[0]
				}
			}
			require.GreaterOrEqual(t, hit, int64(0), "not found in 1000 seeds")
			rep, err := scenarios.RunSim(sc, scenarios.Options{Seed: hit, HasSeed: true, TimeLimit: limit, Store: store, Out: io.Discard})
			require.NoError(t, err)
			track(t, rep.Dir)
			require.True(t, rep.Met(), relative(rep).Block())

			sh, err := scenarios.Shrink(rep.Dir, scenarios.Options{Store: store, Out: io.Discard})
			require.NoError(t, err)
			track(t, sh.Report.Dir)
			t.Logf("seed %d; %s", hit, sh)
			assert.LessOrEqual(t, sh.OpsAfter, sh.OpsBefore)
			assert.LessOrEqual(t, len(sh.After.Faults), len(sh.Before.Faults))
			assert.True(t, sh.Report.Met(), "the shrunk run still catches the bug")
			assert.Less(t, sh.OpsAfter, 10, "a handful of operations show the bug")

			// 1-minimal: without any one of its operations or faults, the
			// shrunk plan no longer shows the violation.
			violates := func(c scenarios.SimPlan) bool {
				out, err := scenarios.Simulate(sc, c)
				require.NoError(t, err)
				return slices.Contains(out.Violated(), sh.Property)
			}
			for i := range sh.After.Ops {
				c := sh.After
				c.Ops = slices.Delete(slices.Clone(c.Ops), i, i+1)
				assert.False(t, violates(c), "operation %d could go too", i)
			}
			for i := range sh.After.Faults {
				c := sh.After
				c.Faults = slices.Delete(slices.Clone(c.Faults), i, i+1)
				assert.False(t, violates(c), "fault %d could go too", i)
			}

			again, exact, err := scenarios.ReplaySim(sh.Report.Dir, scenarios.Options{Store: store, Out: io.Discard})
			require.NoError(t, err)
			track(t, again.Dir)
			assert.True(t, exact, "replay of the shrunk run is bit-exact")
			assert.True(t, again.Met(), relative(again).Block())
		})
	}
}

// simScenarios are the scenarios that run in the deterministic mode.
func simScenarios() []scenarios.Scenario {
	var out []scenarios.Scenario
	for _, sc := range scenarios.Catalogue() {
		if sc.Supports(scenarios.ModeSim) {
			out = append(out, sc)
		}
	}
	return out
}

// TestHuntChecksAsRunsDo: a hunt's seed, whose checks take the run's
// events as it makes them, gets the verdict and the results that the run
// gets from its history's lines, on every scenario and system, with the
// swarm and the seed-fired sites too.
func TestHuntChecksAsRunsDo(t *testing.T) {
	type variant struct {
		name string
		opts scenarios.Options
	}
	variants := []variant{{"plain", scenarios.Options{}}, {"swarm", scenarios.Options{Swarm: "all"}}, {"buggify", scenarios.Options{Buggify: true}}}
	runs, failing := 0, 0
	for _, sc := range simScenarios() {
		for _, system := range sc.SystemNames() {
			if !slices.Contains(labSystems, system) || !sc.RunsOn(system, scenarios.ModeSim) {
				continue
			}
			for i, v := range variants {
				if i > 0 && system != scenarios.RRSeq {
					continue
				}
				opts := v.opts
				opts.System, opts.Seed, opts.HasSeed, opts.TimeLimit = system, int64(3+i), true, simLimit
				cfg, _, err := scenarios.SimConfig(sc, opts)
				if err != nil {
					continue // a variant the scenario does not take
				}
				want, err := scenarios.Simulate(sc, cfg)
				require.NoError(t, err, sc.Name)
				got, err := scenarios.SimulateSeed(sc, cfg)
				require.NoError(t, err, sc.Name)
				want.Results.Duration, got.Results.Duration = 0, 0
				assert.Equal(t, want.Results, got.Results, "%s on %s, %s", sc.Name, system, v.name)
				assert.Equal(t, want.Problems, got.Problems, "%s on %s, %s", sc.Name, system, v.name)
				assert.Equal(t, want.Result.Events, got.Result.Events)
				runs++
				if len(got.Violated()) > 0 {
					failing++
				}
			}
		}
	}
	t.Logf("%d runs, %d of them violate a promise", runs, failing)
	assert.Greater(t, failing, 5, "the planted bugs' runs are among those compared")
}
