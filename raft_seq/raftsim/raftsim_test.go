package raftsim_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/checker/history"
	"github.com/seqlab/seqlab/raft_seq"
	"github.com/seqlab/seqlab/raft_seq/raftsim"
	"github.com/seqlab/seqlab/simnet/sim"
)

// plan is a run: the simulator's configuration and raft_seq's.
type plan struct {
	sim.Config
	raft raftsim.Config
}

// run plays p.
func run(t testing.TB, p plan, keep bool) *sim.Result {
	t.Helper()
	sys, err := raftsim.New(p.raft, p.Config.WithDefaults().Nodes)
	require.NoError(t, err)
	r, err := sim.Run(p.Config, sys, keep)
	require.NoError(t, err)
	return r
}

func events(t testing.TB, r *sim.Result) []history.Event {
	t.Helper()
	evs, problems, err := history.Read(bytes.NewReader(r.History))
	require.NoError(t, err)
	require.Empty(t, problems)
	return evs
}

// promises are raft_seq's: unique, linearizable and monotonic IDs, no
// gaps but where an outcome is unknown or a client's buffer was lost, and
// service again once the faults heal.
var promises = []string{checker.Unique, checker.Linearizable, checker.Monotonic, checker.GapFree, checker.Live}

// check holds r to raft_seq's promises.
func check(t testing.TB, r *sim.Result) checker.Results {
	t.Helper()
	return checker.Check(events(t, r), checker.Options{Promises: promises})
}

// checkSafety holds r to unique and linearizable only, without porcupine:
// a broken history can keep porcupine searching for seconds.
func checkSafety(t testing.TB, r *sim.Result) checker.Results {
	t.Helper()
	return checker.Check(events(t, r), checker.Options{Promises: []string{checker.Unique, checker.Linearizable}, PorcupineLimit: -1})
}

// faults are the faults raft_seq must survive with its state on disk,
// and serve again after.
var faults = []string{"crash-one", "crash-majority", "partition-halves", "partition-isolate", "pause",
	"power-loss-all", "lose-unsynced", "slow", "reset", "loss"}

// faulty is a run of 10s: faults from 1s to 7s, each on for a second,
// then 3s to heal and be judged live.
func faulty(seed int64, names ...string) plan {
	return plan{Config: sim.Config{Seed: seed, Nodes: 3, Jitter: time.Millisecond, Clients: 4, Sizes: []uint64{1, 3, 10},
		IDClients: 1, IDRangeSize: 8, Rate: 10, TimeLimit: 10 * time.Second,
		Faults: sim.Plan(seed, sim.Schedule{Faults: names, Interval: time.Second, Duration: time.Second, Jitter: 500 * time.Millisecond}, 6*time.Second)},
		raft: raftsim.Config{Persist: true}}
}

// seeds is how many seeds a sweep runs: n, fewer under the race detector,
// fewer still with -short.
func seeds(n int) int64 {
	switch {
	case testing.Short():
		return int64(max(n/10, 1))
	case raceEnabled:
		return int64(max(n/8, 2))
	}
	return int64(n)
}

// TestReplay: a seed gives the same run twice, bit for bit, through
// crashes, partitions, power losses and pauses; another seed another run;
// and the run's workload spelt out runs the same again.
func TestReplay(t *testing.T) {
	replay := func(seed int64) plan {
		p := faulty(seed)
		for i, f := range []string{"crash-one", "partition-halves", "power-loss-all", "pause"} {
			p.Faults = append(p.Faults, sim.FaultSpec{Name: f, At: time.Duration(2*i+1) * 800 * time.Millisecond,
				For: 700 * time.Millisecond, Seed: uint64(seed)<<8 | uint64(i)})
		}
		return p
	}
	for seed := int64(1); seed <= max(seeds(10)/2, 1); seed++ {
		p := replay(seed)
		a, b := run(t, p, true), run(t, p, true)
		if a.Hash != b.Hash {
			for i := range min(len(a.Trace), len(b.Trace)) {
				if a.Trace[i] != b.Trace[i] {
					t.Fatalf("seed %d: runs part at event %d:\n  %s\n  %s", seed, i, a.Trace[i], b.Trace[i])
				}
			}
			t.Fatalf("seed %d: hashes differ, traces of %d and %d lines", seed, len(a.Trace), len(b.Trace))
		}
		assert.Greater(t, a.Ops, 300, "seed %d: the clients were served", seed)
		starts := 0
		for _, l := range a.Trace {
			if strings.Contains(l, " raft-start ") {
				starts++
			}
		}
		assert.Greater(t, starts, 6, "seed %d: the crashed node and every node after the power loss restarted", seed)

		c := run(t, replay(seed+1000), false)
		assert.NotEqual(t, a.Hash, c.Hash, "seed %d: another seed, another run", seed)

		p.Ops = a.Workload
		d := run(t, p, false)
		assert.Equal(t, a.Hash, d.Hash, "seed %d: the spelt-out workload runs the same", seed)
	}
}

// TestCorrectUnderFaults: with its state on disk, raft_seq keeps every
// promise through each fault, and serves again within the live bound once
// the faults heal, on every seed.
func TestCorrectUnderFaults(t *testing.T) {
	n := seeds(200)
	seen := map[string]int{}
	var ok int
	for seed := int64(1); seed <= n; seed++ {
		p := faulty(seed, faults...)
		for _, f := range p.Faults {
			seen[f.Name]++
		}
		r := run(t, p, false)
		res := check(t, r)
		require.Equal(t, checker.ValidTrue, res.Valid, "seed %d, faults %v:\n%s", seed, p.Faults, res.Summary())
		ok += res.Stats.Ops["next-range"]["ok"]
	}
	for _, f := range faults {
		assert.Positive(t, seen[f], "no seed drew %s", f)
	}
	t.Logf("%d seeds, no violation; %d ranges handed out; faults drawn: %v", n, ok, seen)
}

// TestFiveNodesRedirectAndDuplicates: five nodes, followers that redirect
// instead of forwarding, and a network that duplicates messages keep the
// safety promises. Redirecting followers fail the clients that pick them
// (the simulated clients do not follow redirects), so live is not held.
func TestFiveNodesRedirectAndDuplicates(t *testing.T) {
	n := seeds(40)
	for seed := int64(1); seed <= n; seed++ {
		p := faulty(seed, faults...)
		p.Nodes, p.Clients, p.Dup = 5, 6, 0.02
		p.raft.Redirect = seed%2 == 0
		r := run(t, p, false)
		res := check(t, r)
		for _, k := range []string{checker.Unique, checker.Linearizable, checker.Monotonic, checker.GapFree} {
			require.Equal(t, checker.ValidTrue, res.Checks[k].Valid, "seed %d, redirect %v, %s:\n%s", seed, p.raft.Redirect, k, res.Summary())
		}
		if p.raft.Redirect {
			assert.Contains(t, string(r.History), "not the leader", "seed %d: followers redirect", seed)
		} else {
			require.Equal(t, checker.ValidTrue, res.Checks[checker.Live].Valid, "seed %d:\n%s", seed, res.Summary())
		}
	}
}

// TestInMemoryNodeStaysOut: a node without a disk that restarts has lost
// its votes and the entries it acknowledged, so it refuses clients for
// good, saying why; the cluster keeps its promises without it, but is not
// live, since clients that pick that node fail.
func TestInMemoryNodeStaysOut(t *testing.T) {
	p := faulty(7, "crash-one")
	p.raft.Persist = false
	p.Faults = []sim.FaultSpec{{Name: "crash-one", At: 2 * time.Second, For: time.Second, Seed: 7}}
	r := run(t, p, false)
	res := check(t, r)
	require.Equal(t, checker.ValidTrue, res.Checks[checker.Unique].Valid, res.Summary())
	require.Equal(t, checker.ValidTrue, res.Checks[checker.Linearizable].Valid, res.Summary())
	require.Equal(t, checker.ValidFalse, res.Checks[checker.Live].Valid, res.Summary())
	var out []string
	for _, e := range events(t, r) {
		if e.Type == history.Fail && strings.Contains(e.Error, "cannot rejoin safely") && !slices.Contains(out, e.Node) {
			out = append(out, e.Node)
		}
	}
	require.Len(t, out, 1, "one node stays out")
	assert.Greater(t, res.Stats.Ops["next-range"]["ok"], 200, "the others serve")
}

// bugs are the planted bugs and the faults that catch them: each a plan,
// with the bug on.
var bugs = map[string]func(seed int64) plan{
	// Acknowledging what was never fsynced: a power loss takes back what
	// a quorum acknowledged, and the cluster starts over.
	"unsafe-no-sync": func(seed int64) plan {
		p := faulty(seed, "power-loss-all")
		p.raft.UnsafeNoSync = true
		return p
	},
	// A node that lost its state rejoining as if new: a majority of them
	// elect one of their own and overwrite what the cluster committed.
	"rejoin-empty": func(seed int64) plan {
		p := faulty(seed, "crash-majority")
		p.raft.Persist, p.raft.RejoinEmpty = false, true
		return p
	},
	// Not a bug of the code but of the configuration: in memory, every
	// node crashing at once loses the cluster's state, and the cluster
	// starts over, as the gRPC node in memory does.
	"crash-all-in-memory": func(seed int64) plan {
		p := faulty(seed, "crash-all")
		p.raft.Persist = false
		return p
	},
}

// withoutBug turns a planted bug's plan into the plan without it.
func withoutBug(p plan) plan {
	p.raft.UnsafeNoSync, p.raft.RejoinEmpty = false, false
	return p
}

// TestPlantedBugs: the checker catches each planted bug within a few
// seeds (unique or linearizable violated).
func TestPlantedBugs(t *testing.T) {
	for name, bug := range bugs {
		t.Run(name, func(t *testing.T) {
			for seed := int64(1); seed <= 100; seed++ {
				res := checkSafety(t, run(t, bug(seed), false))
				if res.Valid == checker.ValidFalse {
					t.Logf("caught at seed %d: %s", seed, res.Checks[checker.Unique].Reason)
					return
				}
			}
			t.Fatal("not caught in 100 seeds")
		})
	}
}

// TestPlantedBugsNeedTheirBug: the plans that catch the planted bugs keep
// the safety promises with the bug off, so it is the bug the lab catches.
func TestPlantedBugsNeedTheirBug(t *testing.T) {
	for _, name := range []string{"unsafe-no-sync", "rejoin-empty"} {
		for seed := int64(1); seed <= seeds(40); seed++ {
			p := withoutBug(bugs[name](seed))
			res := checkSafety(t, run(t, p, false))
			require.Equal(t, checker.ValidTrue, res.Valid, "%s without the bug, seed %d:\n%s", name, seed, res.Summary())
		}
	}
}

// TestConfig: the plan's JSON form, defaults, and the configurations
// refused.
func TestConfig(t *testing.T) {
	c := raftsim.Config{Persist: true, UnsafeNoSync: true}.WithDefaults(3)
	b, err := json.Marshal(c)
	require.NoError(t, err)
	assert.JSONEq(t, `{"persist":true,"sync_delay_ns":1000000,"snapshot_every":200,"unsafe_no_sync":true}`, string(b))
	var back raftsim.Config
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, c, back)

	for _, tc := range []struct {
		cfg  raftsim.Config
		want string
	}{
		{raftsim.Config{SyncDelay: -1}, "raftsim: bad timing (a negative delay or timeout)"},
		{raftsim.Config{TickInterval: time.Second, ElectionTimeout: time.Second}, "raftsim: election timeout 1s is under two ticks of 1s"},
		{raftsim.Config{UnsafeNoSync: true}, "raftsim: unsafe_no_sync plants a bug of the disk, and needs persist"},
		{raftsim.Config{Persist: true, RejoinEmpty: true}, "raftsim: rejoin_empty plants a bug of nodes without a disk, and cannot go with persist"},
	} {
		_, err := raftsim.New(tc.cfg, 3)
		require.EqualError(t, err, tc.want)
	}
	_, err = raftsim.New(raftsim.Config{}, 0)
	require.EqualError(t, err, "raftsim: 0 nodes")
}

// TestOutcomes: which reply errors are failures (nothing allocated) and
// which leave the outcome open.
func TestOutcomes(t *testing.T) {
	for _, tc := range []struct {
		err      error
		definite bool
	}{
		{raft_seq.ErrNotLeader, true},
		{&raft_seq.NotLeaderError{Leader: 2}, true},
		{raft_seq.ErrNoLeader, true},
		{raft_seq.ErrBusy, true},
		{raft_seq.ErrDropped, true},
		{raft_seq.ErrUnknown, false},
		{raft_seq.ErrBroken, false}, // a proposed request may get it
		{assert.AnError, false},
	} {
		assert.Equal(t, tc.definite, raftsim.Definite(tc.err), "%v", tc.err)
	}
}
