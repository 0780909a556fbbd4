package flakesim_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/checker/history"
	"github.com/seqlab/seqlab/flake_seq"
	"github.com/seqlab/seqlab/flake_seq/flakesim"
	"github.com/seqlab/seqlab/seq"
	"github.com/seqlab/seqlab/simnet/sim"
)

// plan is a run: the simulator's configuration and flake_seq's, as a
// plan.json holds them (flake's under "flake").
type plan struct {
	sim.Config
	Flake flakesim.Config `json:"flake"`
}

func run(t testing.TB, p plan, keep bool) *sim.Result {
	t.Helper()
	sys, err := flakesim.New(p.Flake, p.Config.WithDefaults().Nodes)
	require.NoError(t, err)
	r, err := sim.Run(p.Config, sys, keep)
	require.NoError(t, err)
	return r
}

// faults are the faults flake_seq must keep its promises under.
var faults = []string{"crash-one", "power-loss-all", "clock-offset", "clock-step-back", "clock-strobe", "clock-drift",
	"clock-step-back+crash-one", "clock-drift+power-loss-all", "clock-strobe+crash-one", "clock-offset+power-loss-all"}

// mixed is a run of seed under a random mix of faults.
func mixed(seed int64) plan {
	return plan{Config: sim.Config{Seed: seed, Nodes: 3, Jitter: time.Millisecond, Clients: 5, Sizes: []uint64{1, 3, 10, 100},
		IDClients: 2, IDRangeSize: 16, Rate: 20, TimeLimit: 4 * time.Second,
		Faults: sim.Plan(seed, sim.Schedule{Faults: faults, Interval: 400 * time.Millisecond, Duration: 600 * time.Millisecond,
			Jitter: 200 * time.Millisecond}, 3500*time.Millisecond)}}
}

// rollback is a run of seed under the plan that catches the planted bug.
func rollback(seed int64, bug bool) plan {
	return plan{Config: sim.Config{Seed: seed, Nodes: 3, Jitter: time.Millisecond, Clients: 6, Rate: 50,
		TimeLimit: 5 * time.Second, Faults: flakesim.RollbackPlan(seed, 5*time.Second)},
		Flake: flakesim.Config{ClockRollback: bug}}
}

// scheduled is a run of seed under the schedule that catches the planted
// bug.
func scheduled(seed int64, bug bool) plan {
	p := rollback(seed, bug)
	p.Faults = sim.Plan(seed, flakesim.RollbackSchedule, 4*time.Second)
	return p
}

func check(t testing.TB, r *sim.Result) ([]history.Event, checker.Results) {
	t.Helper()
	events, problems, err := history.Read(bytes.NewReader(r.History))
	require.NoError(t, err)
	require.Empty(t, problems)
	return events, checker.Check(events, checker.Options{Promises: []string{checker.Unique, checker.NodeOrder}, Sparse: true})
}

// TestDeterministic: a plan with crashes, power losses and clock faults
// runs the same twice, bit for bit; another seed runs otherwise; the plan
// survives plan.json; and the clock faults did skew clocks, behind
// timestamps that nodes then kept (the trace's range-kept answers).
func TestDeterministic(t *testing.T) {
	skewed, kept := 0, 0
	for seed := int64(1); seed <= 5; seed++ {
		p := mixed(seed)
		a := run(t, p, true)
		b := run(t, p, true)
		if a.Hash != b.Hash {
			for i := range min(len(a.Trace), len(b.Trace)) {
				require.Equal(t, a.Trace[i], b.Trace[i], "seed %d: runs part at event %d", seed, i)
			}
		}
		require.Equal(t, a.Hash, b.Hash, "seed %d", seed)
		c := run(t, mixed(seed+1000), false)
		assert.NotEqual(t, a.Hash, c.Hash, "another seed, another run")

		js, err := json.Marshal(p)
		require.NoError(t, err)
		require.Contains(t, string(js), `"flake":{"reserve_ns":0`)
		var back plan
		require.NoError(t, json.Unmarshal(js, &back))
		assert.Equal(t, a.Hash, run(t, back, false).Hash, "seed %d: replayed from its plan", seed)
		for _, l := range a.Trace {
			switch {
			case strings.Contains(l, " clock-skew "):
				skewed++
			case strings.Contains(l, " range-kept "):
				kept++
			}
		}
	}
	t.Logf("5 seeds: %d clocks skewed, %d ranges at a kept timestamp, the clock behind it", skewed, kept)
	assert.Positive(t, skewed, "clock faults skew clocks, in the trace")
	assert.Positive(t, kept, "nodes keep their last timestamp when their clock is behind it")
	// A clock fault changes the run.
	p := mixed(1)
	p.Faults = []sim.FaultSpec{{Name: "crash-one", At: time.Second, For: time.Second, Seed: 1}}
	q := p
	q.Faults = []sim.FaultSpec{{Name: "clock-step-back+crash-one", At: time.Second, For: time.Second, Seed: 1}}
	assert.NotEqual(t, run(t, p, false).Hash, run(t, q, false).Hash)
}

// TestUniqueUnderFaults: over 200 seeds of mixed faults (crashes, power
// losses, each clock fault, and clock faults with crashes), and 20 each of
// the plan and the schedule that catch the planted bug, no ID is handed out twice, and each
// node's IDs increase (the checker's unique and node-order).
func TestUniqueUnderFaults(t *testing.T) {
	seeds := 200
	if testing.Short() {
		seeds = 20
	}
	ok, fail := 0, 0
	for seed := int64(1); seed <= int64(seeds); seed++ {
		plans := []plan{mixed(seed)}
		if seed <= 20 {
			plans = append(plans, rollback(seed, false), scheduled(seed, false))
		}
		for _, p := range plans {
			_, res := check(t, run(t, p, false))
			require.Equal(t, checker.ValidTrue, res.Valid, "seed %d %v:\n%s", seed, p.Faults, res.Summary())
			ok += res.Stats.Ops["next-range"]["ok"]
			fail += res.Stats.Ops["next-range"]["fail"]
		}
	}
	t.Logf("%d seeds: %d ranges handed out, %d refused", seeds, ok, fail)
	assert.Greater(t, ok, 300*seeds)
}

// TestPlantedClockRollback: with the planted bug, the rollback plan and
// the rollback schedule find duplicates on nearly every seed; they need
// the bug (TestUniqueUnderFaults), and the bug needs a clock behind at a
// restart (crashes alone, or a clock stepped back without a restart, find
// nothing).
func TestPlantedClockRollback(t *testing.T) {
	const seeds = 20
	for name, p := range map[string]func(int64, bool) plan{"plan": rollback, "schedule": scheduled} {
		found := 0
		for seed := int64(1); seed <= seeds; seed++ {
			_, res := check(t, run(t, p(seed, true), false))
			if res.Checks[checker.Unique].Valid == checker.ValidFalse {
				found++
			}
		}
		t.Logf("flake-clock-rollback found by the %s on %d of %d seeds", name, found, seeds)
		require.GreaterOrEqual(t, found, seeds*9/10, name)
	}

	for _, f := range []string{"crash-all", "clock-step-back"} {
		for seed := int64(1); seed <= 10; seed++ {
			p := rollback(seed, true)
			var only []sim.FaultSpec
			for _, s := range p.Faults {
				if s.Name == f {
					only = append(only, s)
				}
			}
			p.Faults = only
			_, res := check(t, run(t, p, false))
			require.Equal(t, checker.ValidTrue, res.Valid, "%s alone, seed %d:\n%s", f, seed, res.Summary())
		}
	}
}

// TestWaitsThenRefuses: a range that does not fit in this millisecond
// waits for the next; a node whose clock is far behind its mark (just
// restarted) refuses once MaxWait is out, as a fail, never a duplicate.
func TestWaitsThenRefuses(t *testing.T) {
	p := plan{Config: sim.Config{Seed: 1, Nodes: 1, Clients: 4, Sizes: []uint64{flake_seq.PerMilli}, Rate: 200,
		TimeLimit: 3 * time.Second, Faults: []sim.FaultSpec{{Name: "crash-one", At: time.Second, For: 10 * time.Millisecond}}}}
	events, res := check(t, run(t, p, false))
	require.Equal(t, checker.ValidTrue, res.Valid, res.Summary())
	assert.Greater(t, res.Stats.Ops["next-range"]["ok"], 1000, "full milliseconds wait for the next")
	var refused []string
	for _, e := range events {
		if e.Type == history.Fail {
			refused = append(refused, e.Error)
		}
	}
	require.NotEmpty(t, refused, "the restarted node waits for its clock to pass its mark")
	assert.Contains(t, refused[0], "unavailable: flake_seq: clock behind the last timestamp")

	_, err := flakesim.New(flakesim.Config{Reserve: time.Second, RenewAhead: time.Second}, 3)
	require.ErrorContains(t, err, "renew-ahead")
	_, err = flakesim.New(flakesim.Config{}, flake_seq.MaxNodeID+2)
	require.ErrorContains(t, err, "nodes")
	sys, err := flakesim.New(flakesim.Config{}, 3)
	require.NoError(t, err)
	assert.Equal(t, flakesim.Config{Reserve: time.Second, RenewAhead: 500 * time.Millisecond, SyncDelay: time.Millisecond,
		MaxWait: 20 * time.Millisecond}, sys.Config())
	require.ErrorIs(t, sys.ValidateName(""), seq.ErrInvalidArgument)
}

func BenchmarkRun10s(b *testing.B) {
	p := mixed(1)
	p.TimeLimit = 10 * time.Second
	for b.Loop() {
		run(b, p, false)
	}
	b.ReportMetric(float64(10*time.Second)/(float64(b.Elapsed())/float64(b.N)), "x-realtime")
}
