package rrsim_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/checker/history"
	"github.com/seqlab/seqlab/rr_seq"
	"github.com/seqlab/seqlab/rr_seq/rrsim"
	"github.com/seqlab/seqlab/simnet/sim"
)

// plan is a run: the simulator's configuration and rr_seq's.
type plan struct {
	sim.Config
	rr rrsim.Config
}

// Run plays p.
func Run(p plan, keep bool) (*sim.Result, error) {
	sys, err := rrsim.New(p.rr, p.Config.WithDefaults().Nodes)
	if err != nil {
		return nil, err
	}
	return sim.Run(p.Config, sys, keep)
}

var allFaults = []string{"partition-isolate", "partition-halves", "partition-ring", "partition-bridge", "partition-oneway",
	"crash-one", "crash-majority", "lose-unsynced", "pause", "slow", "slow-node", "reset", "loss", "client-crash"}

func mixed(seed int64) plan {
	return plan{Config: sim.Config{Seed: seed, Nodes: 5, Jitter: 2 * time.Millisecond, Dup: 0.01, Clients: 7,
		Sizes: []uint64{1, 2, 5, 50}, IDClients: 3, IDRangeSize: 16, Names: []string{"a", "b"}, TimeLimit: 20 * time.Second,
		Faults: sim.Plan(seed, sim.Schedule{Faults: allFaults, Interval: 2 * time.Second, Duration: 2 * time.Second, Jitter: time.Second}, 16*time.Second)},
		rr: rrsim.Config{Persist: true}}
}

func check(t *testing.T, r *sim.Result) checker.Results {
	events, problems, err := history.Read(bytes.NewReader(r.History))
	require.NoError(t, err)
	require.Empty(t, problems)
	return checker.Check(events, checker.Options{})
}

// TestDeterministic runs seeds twice and compares the hashes; a
// difference names the first event where the runs part.
func TestDeterministic(t *testing.T) {
	for seed := int64(1); seed <= 10; seed++ {
		a, err := Run(mixed(seed), true)
		require.NoError(t, err)
		b, err := Run(mixed(seed), true)
		require.NoError(t, err)
		if a.Hash != b.Hash {
			for i := range min(len(a.Trace), len(b.Trace)) {
				if a.Trace[i] != b.Trace[i] {
					t.Fatalf("seed %d: runs part at event %d:\n  %s\n  %s", seed, i, a.Trace[i], b.Trace[i])
				}
			}
			t.Fatalf("seed %d: hashes differ, traces of %d and %d lines", seed, len(a.Trace), len(b.Trace))
		}
		c, err := Run(mixed(seed+1000), false)
		require.NoError(t, err)
		assert.NotEqual(t, a.Hash, c.Hash, "another seed, another run")
	}
}

// TestExplicitWorkload: a run's workload spelt out as Config.Ops gives the
// same run bit for bit, and dropping an operation changes it.
func TestExplicitWorkload(t *testing.T) {
	for seed := int64(1); seed <= 5; seed++ {
		cfg := mixed(seed)
		a, err := Run(cfg, false)
		require.NoError(t, err)
		require.NotEmpty(t, a.Workload)
		cfg.Ops = a.Workload
		b, err := Run(cfg, false)
		require.NoError(t, err)
		assert.Equal(t, a.Hash, b.Hash, "seed %d: the spelt-out workload runs the same", seed)
		assert.Equal(t, a.Workload, b.Workload)

		cfg.Ops = a.Workload[1:]
		c, err := Run(cfg, false)
		require.NoError(t, err)
		assert.NotEqual(t, a.Hash, c.Hash)
		assert.Len(t, c.Workload, len(a.Workload)-1)
	}
}

// TestIDClients: buffering clients hand out increasing IDs, record their
// fetches, and lose their buffers to client crashes.
func TestIDClients(t *testing.T) {
	cfg := plan{Config: sim.Config{Seed: 3, Clients: 1, IDClients: 4, IDRangeSize: 16, Rate: 20, TimeLimit: 20 * time.Second,
		Faults: sim.Plan(3, sim.Schedule{Faults: []string{"client-crash"}, Interval: time.Second, Duration: time.Millisecond, Jitter: 0}, 18*time.Second)}}
	r, err := Run(cfg, false)
	require.NoError(t, err)
	res := check(t, r)
	require.Equal(t, checker.ValidTrue, res.Valid, res.Summary())
	assert.Greater(t, res.Stats.Ops["next-id"]["ok"], 1000)
	crashed := map[string]bool{}
	events, _, err := history.Read(bytes.NewReader(r.History))
	require.NoError(t, err)
	for _, e := range events {
		if e.Nemesis && e.F == "start-client-crash" {
			crashed[string(e.Value)] = true
		}
	}
	assert.Greater(t, len(crashed), 1, "crashes hit several clients: %v", crashed)
	g := res.Checks[checker.GapFree].Details.(checker.GapDetails)
	assert.Greater(t, g.BufferedIDs, uint64(100), "crashed buffers leave gaps")
}

// TestCorrectUnderFaults: the real configuration keeps its promises.
func TestCorrectUnderFaults(t *testing.T) {
	for seed := int64(1); seed <= 10; seed++ {
		r, err := Run(mixed(seed), false)
		require.NoError(t, err)
		res := check(t, r)
		require.Equal(t, checker.ValidTrue, res.Valid, "seed %d:\n%s", seed, res.Summary())
		assert.Greater(t, res.Stats.Ops["next-range"]["ok"], 500)
	}
}

// bugs are the planted bugs in this mode.
var bugs = map[string]func(seed int64) plan{
	"set-if-greater": func(seed int64) plan {
		return plan{Config: sim.Config{Seed: seed, Jitter: 2 * time.Millisecond, Clients: 8,
			Sizes: []uint64{1, 2, 5, 13}, Rate: 20, TimeLimit: 10 * time.Second}, rr: rrsim.Config{WriteRule: rr_seq.SetIfGreater}}
	},
	"r-plus-w-le-n": func(seed int64) plan {
		return plan{Config: sim.Config{Seed: seed, TimeLimit: 10 * time.Second}, rr: rrsim.Config{R: 1, W: 1}}
	},
	"crash-all-in-memory": func(seed int64) plan {
		return plan{Config: sim.Config{Seed: seed, TimeLimit: 10 * time.Second,
			Faults: sim.Plan(seed, sim.Schedule{Faults: []string{"crash-all"}, Interval: 2 * time.Second, Duration: time.Second, Jitter: time.Second}, 8*time.Second)}}
	},
	"ack-before-sync": func(seed int64) plan {
		return plan{Config: sim.Config{Seed: seed, TimeLimit: 10 * time.Second,
			Faults: sim.Plan(seed, sim.Schedule{Faults: []string{"power-loss-all"}, Interval: 2 * time.Second, Duration: time.Second, Jitter: time.Second}, 8*time.Second)},
			rr: rrsim.Config{Persist: true, AckBeforeSync: true}}
	},
	"trust-cache": func(seed int64) plan {
		return plan{Config: sim.Config{Seed: seed, Clients: 4, TimeLimit: 10 * time.Second}, rr: rrsim.Config{TrustCache: true}}
	},
	"late-join": func(seed int64) plan {
		return plan{Config: sim.Config{Seed: seed, Clients: 8, Rate: 40, TimeLimit: 10 * time.Second}, rr: rrsim.Config{LateJoin: true}}
	},
}

// TestCoordinatorBugsNeedTheirBug: the workloads that catch the planted
// coordinator bugs hold their promises with the bug off, so it is the
// bug that the lab catches.
func TestCoordinatorBugsNeedTheirBug(t *testing.T) {
	for _, name := range []string{"trust-cache", "late-join"} {
		for seed := int64(1); seed <= 20; seed++ {
			cfg := bugs[name](seed)
			cfg.rr.TrustCache, cfg.rr.LateJoin = false, false
			r, err := Run(cfg, false)
			require.NoError(t, err)
			res := check(t, r)
			require.Equal(t, checker.ValidTrue, res.Valid, "%s without the bug, seed %d:\n%s", name, seed, res.Summary())
		}
	}
}

// TestPlantedBugs: each bug is found within the first 1,000 seeds.
func TestPlantedBugs(t *testing.T) {
	for name, cfg := range bugs {
		t.Run(name, func(t *testing.T) {
			for seed := int64(1); seed <= 1000; seed++ {
				r, err := Run(cfg(seed), false)
				require.NoError(t, err)
				if check(t, r).Checks["unique"].Valid == checker.ValidFalse {
					t.Logf("found at seed %d", seed)
					return
				}
			}
			t.Fatal("not found in 1000 seeds")
		})
	}
}

func BenchmarkRun60s(b *testing.B) {
	cfg := plan{Config: sim.Config{Seed: 1, Nodes: 5, Clients: 10, TimeLimit: 60 * time.Second, Jitter: time.Millisecond},
		rr: rrsim.Config{Persist: true}}
	for b.Loop() {
		if _, err := Run(cfg, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(60*time.Second)/(float64(b.Elapsed())/float64(b.N)), "x-realtime")
}

// TestRecycledRequests: the simulator hands a peer message back only once
// nothing uses it. With the messages kept out of use, any later use of
// one panics (the simulator checks); with them reused, the runs are the
// same bit for bit. The mixed plan (24 seeds, half with BUGGIFY) has
// every fault, pauses and duplicated messages among them.
func TestRecycledRequests(t *testing.T) {
	seeds := int64(24)
	if testing.Short() {
		seeds = 10
	}
	for seed := int64(1); seed <= seeds; seed++ {
		p := mixed(seed)
		if seed%2 == 0 {
			p.rr.Buggify = rrsim.DrawBuggify(seed, 0)
		}
		reused, err := Run(p, false)
		require.NoError(t, err)
		sys, err := rrsim.New(p.rr, p.Config.WithDefaults().Nodes)
		require.NoError(t, err)
		rrsim.KeepRecycled(sys)
		kept, err := sim.Run(p.Config, sys, false)
		require.NoError(t, err, "seed %d", seed)
		require.Equal(t, kept.Hash, reused.Hash, "seed %d: reusing messages changed the run", seed)
	}
}
