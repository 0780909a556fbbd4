package nemesis_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/nemesis"
)

// fakeCluster records what faults do to it.
type fakeCluster struct {
	nodes   []string
	log     []string
	down    map[string]bool
	paused  map[string]bool
	rng     *rand.Rand
	clients []string
}

func newFake(n int, seed uint64) *fakeCluster {
	f := &fakeCluster{down: map[string]bool{}, paused: map[string]bool{}, rng: rand.New(rand.NewPCG(seed, 1)), clients: []string{"c1", "c2"}}
	for i := range n {
		f.nodes = append(f.nodes, fmt.Sprintf("n%d", i+1))
	}
	return f
}

func (f *fakeCluster) logf(format string, a ...any) { f.log = append(f.log, fmt.Sprintf(format, a...)) }

func (f *fakeCluster) Nodes() []string            { return f.nodes }
func (f *fakeCluster) Clients() []string          { return f.clients }
func (f *fakeCluster) Net() nemesis.Network       { return f }
func (f *fakeCluster) Rand() *rand.Rand           { return f.rng }
func (f *fakeCluster) DefaultLink() nemesis.Link  { return nemesis.Link{Latency: time.Millisecond} }
func (f *fakeCluster) CrashClient(c string) error { f.logf("crash-client %s", c); return nil }
func (f *fakeCluster) Crash(n string, power, torn bool) error {
	f.down[n] = true
	f.logf("crash %s power=%v torn=%v", n, power, torn)
	return nil
}
func (f *fakeCluster) Restart(n string) error {
	if !f.down[n] {
		return fmt.Errorf("%s is not down", n)
	}
	delete(f.down, n)
	f.logf("restart %s", n)
	return nil
}
func (f *fakeCluster) Partition(groups ...[]string) { f.logf("partition %v", groups) }
func (f *fakeCluster) Cut(from, to string)          { f.logf("cut %s->%s", from, to) }
func (f *fakeCluster) Heal()                        { f.logf("heal") }
func (f *fakeCluster) Reset(from, to string)        { f.logf("reset %s->%s", from, to) }
func (f *fakeCluster) SetHost(h string, l *nemesis.Link) error {
	switch {
	case l == nil:
		f.logf("clear %s", h)
	case l.Latency < 0 || l.Jitter < 0:
		return fmt.Errorf("bad delay %v", *l)
	default:
		f.logf("set %s %v±%v", h, l.Latency, l.Jitter)
	}
	return nil
}
func (f *fakeCluster) Pause(h string)                      { f.paused[h] = true; f.logf("pause %s", h) }
func (f *fakeCluster) Resume(h string)                     { delete(f.paused, h); f.logf("resume %s", h) }
func (f *fakeCluster) SetLoss(dropDial, resetConn float64) { f.logf("loss %v %v", dropDial, resetConn) }

func TestEveryRegisteredFaultStartsAndStops(t *testing.T) {
	for _, name := range nemesis.Names() {
		t.Run(name, func(t *testing.T) {
			c := newFake(5, 1)
			f, err := nemesis.Lookup(name)
			require.NoError(t, err)
			_, err = f.Start(c)
			require.NoError(t, err)
			require.NotEmpty(t, c.log, "Start did something")
			_, err = f.Stop(c)
			require.NoError(t, err)
			require.Empty(t, c.down, "every crashed node is restarted")
			require.Empty(t, c.paused, "every paused node is resumed")
		})
	}
	_, err := nemesis.Lookup("gremlins")
	require.ErrorContains(t, err, "unknown fault")
}

func TestCrashShapes(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    *nemesis.Crash
		want int
	}{
		{"crash-one", &nemesis.Crash{Count: 1}, 1},
		{"crash-majority", &nemesis.Crash{Majority: true}, 3},
		{"crash-all", &nemesis.Crash{All: true}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFake(5, 2)
			_, err := tc.f.Start(c)
			require.NoError(t, err)
			require.Len(t, c.down, tc.want)
			require.Equal(t, tc.name, tc.f.Name())
		})
	}
}

// cuts returns the directed cuts in the log ("a->b").
func (f *fakeCluster) cuts() map[string]bool {
	cut := map[string]bool{}
	for _, l := range f.log {
		if c, ok := strings.CutPrefix(l, "cut "); ok {
			cut[c] = true
		}
	}
	return cut
}

// TestRing checks what PartitionRing's doc promises: links are cut both
// ways; every node sees a majority, itself included, made of itself and
// its k nearest neighbours on each side of the recorded ring, with k the
// fewest that make a majority; and no two nodes see the same set.
func TestRing(t *testing.T) {
	for _, n := range []int{4, 5, 6, 7, 8} {
		t.Run(fmt.Sprintf("n%d", n), func(t *testing.T) {
			c := newFake(n, uint64(n))
			f := &nemesis.PartitionRing{}
			v, err := f.Start(c)
			require.NoError(t, err)
			rec := v.(map[string]any)
			ring := rec["ring"].([]string)
			k := rec["neighbours"].(int)
			require.ElementsMatch(t, c.nodes, ring, "the ring holds every node once")
			require.Greater(t, 2*k+1, n/2, "k neighbours a side make a majority")
			require.LessOrEqual(t, 2*(k-1)+1, n/2, "k-1 would not: k is the fewest")
			cut := c.cuts()
			require.Equal(t, len(cut), rec["cuts"], "the record counts the cuts")
			seen := map[string]string{}
			for i, a := range ring {
				var sees []string
				for _, b := range ring {
					if a != b {
						require.Equal(t, cut[a+"->"+b], cut[b+"->"+a], "%s-%s is cut both ways or not at all", a, b)
					}
					if a == b || !cut[a+"->"+b] {
						sees = append(sees, b)
					}
				}
				var nearest []string
				for d := -k; d <= k; d++ {
					nearest = append(nearest, ring[(i+d+n)%n])
				}
				require.ElementsMatch(t, nearest, sees, "%s sees itself and its %d nearest a side", a, k)
				require.Greater(t, 2*len(sees), n, "%s sees a majority", a)
				slices.Sort(sees)
				key := strings.Join(sees, ",")
				require.NotContains(t, seen, key, "%s and %s see the same set", a, seen[key])
				seen[key] = a
			}
			stop, err := f.Stop(c)
			require.NoError(t, err)
			require.Equal(t, map[string]any{"healed": rec}, stop)
			require.Equal(t, "heal", c.log[len(c.log)-1])
		})
	}
}

// TestBridge checks what PartitionBridge's doc promises: the bridge keeps
// every link, the two halves are cut from each other both ways, and each
// half keeps its own links.
func TestBridge(t *testing.T) {
	for _, n := range []int{3, 5, 6} {
		t.Run(fmt.Sprintf("n%d", n), func(t *testing.T) {
			c := newFake(n, uint64(n))
			v, err := (&nemesis.PartitionBridge{}).Start(c)
			require.NoError(t, err)
			rec := v.(map[string]any)
			bridge := rec["bridge"].(string)
			sides := rec["sides"].([][]string)
			require.ElementsMatch(t, c.nodes, append(append([]string{bridge}, sides[0]...), sides[1]...))
			require.LessOrEqual(t, len(sides[1])-len(sides[0]), 1, "halves")
			require.NotEmpty(t, sides[0])
			side := map[string]int{bridge: -1}
			for i, s := range sides {
				for _, x := range s {
					side[x] = i
				}
			}
			cut := c.cuts()
			for _, a := range c.nodes {
				for _, b := range c.nodes {
					across := a != b && side[a] >= 0 && side[b] >= 0 && side[a] != side[b]
					require.Equal(t, across, cut[a+"->"+b], "%s->%s", a, b)
				}
			}
		})
	}
}

// TestTooSmallForTheShape: a partition a cluster is too small for fails
// at Start, cuts nothing, and is recorded as the fault's error; its Stop
// heals nothing.
func TestTooSmallForTheShape(t *testing.T) {
	for _, tc := range []struct {
		f     nemesis.Fault
		nodes int
		want  string
	}{
		{&nemesis.PartitionRing{}, 3, "nemesis: partition-ring needs at least 4 nodes for a ring of different majorities, the cluster has 3"},
		{&nemesis.PartitionRing{}, 2, "nemesis: partition-ring needs at least 4 nodes for a ring of different majorities, the cluster has 2"},
		{&nemesis.PartitionBridge{}, 2, "nemesis: partition-bridge needs at least 3 nodes for two sides and a bridge, the cluster has 2"},
		{&nemesis.PartitionIsolate{}, 1, "nemesis: partition-isolate needs at least 2 nodes for one node and the rest, the cluster has 1"},
		{&nemesis.PartitionHalves{}, 1, "nemesis: partition-halves needs at least 2 nodes for two sides, the cluster has 1"},
		{&nemesis.OneWayCut{}, 1, "nemesis: partition-oneway needs at least 2 nodes for two ends, the cluster has 1"},
	} {
		t.Run(fmt.Sprintf("%s-n%d", tc.f.Name(), tc.nodes), func(t *testing.T) {
			var events []nemesis.Event
			synctest.Test(t, func(t *testing.T) {
				c := newFake(tc.nodes, 1)
				start := time.Now()
				s := nemesis.Schedule{Faults: []nemesis.Fault{tc.f}, Interval: time.Second, Duration: time.Second}
				s.Run(context.Background(), c, func() time.Duration { return time.Since(start) }, 3*time.Second,
					func(e nemesis.Event) { events = append(events, e) })
				require.Empty(t, c.log, "nothing was cut, nothing healed")
			})
			require.Len(t, events, 2)
			require.Equal(t, "start-"+tc.f.Name(), events[0].F)
			require.EqualError(t, events[0].Err, tc.want)
			require.Equal(t, "stop-"+tc.f.Name(), events[1].F)
			require.NoError(t, events[1].Err)
			require.Equal(t, map[string]any{"healed": nil}, events[1].Value)
		})
	}
}

// TestStopSaysWhatItUndid: every registered fault's Stop records what it
// undid, which is what its Start did, and does the undoing; a second Stop
// has nothing left to undo.
func TestStopSaysWhatItUndid(t *testing.T) {
	cases := map[string]struct {
		key   string // what Stop records
		field string // the part of Start's record it holds; "" for all of it
		undo  string // the prefix of what Stop does to the cluster; "" for nothing
	}{
		"partition-isolate": {"healed", "", "heal"},
		"partition-halves":  {"healed", "", "heal"},
		"partition-ring":    {"healed", "", "heal"},
		"partition-bridge":  {"healed", "", "heal"},
		"partition-oneway":  {"healed", "", "heal"},
		"crash-one":         {"restarted", "nodes", "restart "},
		"crash-majority":    {"restarted", "nodes", "restart "},
		"crash-all":         {"restarted", "nodes", "restart "},
		"power-loss-all":    {"restarted", "nodes", "restart "},
		"lose-unsynced":     {"restarted", "nodes", "restart "},
		"pause":             {"resumed", "node", "resume "},
		"slow":              {"restored", "hosts", "clear "},
		"slow-node":         {"restored", "hosts", "clear "},
		"loss":              {"stopped", "", "loss 0 0"},
		"reset":             {"nothing_to_undo", "", ""},
		"client-crash":      {"nothing_to_undo", "", ""},
	}
	require.ElementsMatch(t, nemesis.Names(), slices.Collect(maps.Keys(cases)), "a case for every registered fault")
	for _, name := range nemesis.Names() {
		t.Run(name, func(t *testing.T) {
			tc := cases[name]
			c := newFake(5, 1)
			f, err := nemesis.Lookup(name)
			require.NoError(t, err)
			started, err := f.Start(c)
			require.NoError(t, err)
			want := started
			if tc.field != "" {
				want = started.(map[string]any)[tc.field]
			}
			require.NotEmpty(t, want)
			before := len(c.log)
			stopped, err := f.Stop(c)
			require.NoError(t, err)
			got := stopped.(map[string]any)
			require.Len(t, got, map[bool]int{true: 2, false: 1}[tc.key == "restored"])
			require.Equal(t, want, got[tc.key])
			undone := c.log[before:]
			if tc.undo == "" {
				require.Empty(t, undone)
			} else {
				require.NotEmpty(t, undone)
				for _, l := range undone {
					require.True(t, strings.HasPrefix(l, tc.undo), "Stop did %q", l)
				}
			}
			again, err := f.Stop(c)
			require.NoError(t, err)
			require.Len(t, c.log, before+len(undone), "a second Stop does nothing")
			require.Nil(t, again.(map[string]any)[tc.key], "and says so")
		})
	}
}

// TestStrings: every fault says exactly what it does, with its parameters.
func TestStrings(t *testing.T) {
	for _, tc := range []struct {
		f    nemesis.Fault
		want string
	}{
		{&nemesis.PartitionIsolate{}, "partition-isolate(1 random node | the rest)"},
		{&nemesis.PartitionHalves{}, "partition-halves(random minority | majority)"},
		{&nemesis.PartitionRing{}, "partition-ring(random ring, each node sees its nearest majority)"},
		{&nemesis.PartitionBridge{}, "partition-bridge(half | half, joined only by 1 random bridge node)"},
		{&nemesis.OneWayCut{}, "partition-oneway(random a -> random b cut, b -> a open)"},
		{&nemesis.Crash{Count: 1}, "crash-one(1 random node)"},
		{&nemesis.Crash{Count: 2}, "crash-2(2 random nodes)"},
		{&nemesis.Crash{Majority: true}, "crash-majority(random majority)"},
		{&nemesis.Crash{All: true}, "crash-all(every node)"},
		{&nemesis.Crash{All: true, PowerLoss: true}, "power-loss-all(every node, unsynced writes lost)"},
		{&nemesis.Crash{Majority: true, PowerLoss: true, Torn: true}, "lose-unsynced-majority(random majority, unsynced writes lost or torn)"},
		{&nemesis.Pause{}, "pause(1 random node)"},
		{&nemesis.Slow{Link: nemesis.Link{Latency: 50 * time.Millisecond, Jitter: 50 * time.Millisecond}}, "slow(every node: 50ms±50ms)"},
		{&nemesis.Slow{OneNode: true, Link: nemesis.Link{Latency: 200 * time.Millisecond, Jitter: 100 * time.Millisecond}}, "slow-node(1 random node: 200ms±100ms)"},
		{&nemesis.Reset{}, "reset(every connection between 2 random nodes)"},
		{&nemesis.Loss{DropDial: 0.3, ResetConn: 0.1}, "loss(drop-dial=0.3, reset-conn=0.1)"},
		{&nemesis.Loss{DropDial: 1}, "loss(drop-dial=1, reset-conn=0)"},
		{&nemesis.ClientCrash{}, "client-crash(1 random buffering client)"},
		{nemesis.All{&nemesis.PartitionIsolate{}, &nemesis.Loss{DropDial: 0.5}},
			"all(partition-isolate(1 random node | the rest), loss(drop-dial=0.5, reset-conn=0))"},
	} {
		t.Run(tc.f.Name(), func(t *testing.T) {
			require.Equal(t, tc.want, fmt.Sprint(tc.f))
		})
	}
	for _, name := range nemesis.Names() {
		f, err := nemesis.Lookup(name)
		require.NoError(t, err)
		s, ok := f.(fmt.Stringer)
		require.True(t, ok, "%s has a String", name)
		require.True(t, strings.HasPrefix(s.String(), f.Name()+"("), "%s: %q starts with its name", name, s)
	}
}

// TestResetOnce: Reset resets a pair once; the network's Reset covers both
// directions.
func TestResetOnce(t *testing.T) {
	c := newFake(5, 1)
	v, err := (&nemesis.Reset{}).Start(c)
	require.NoError(t, err)
	pair := v.(map[string]any)["between"].([]string)
	require.Equal(t, []string{fmt.Sprintf("reset %s->%s", pair[0], pair[1])}, c.log)
}

// TestSlowClearsOnStop: Stop clears the hosts' settings rather than
// setting them to some delay, and a bad delay fails Start and leaves
// nothing to clear.
func TestSlowClearsOnStop(t *testing.T) {
	c := newFake(3, 1)
	f := &nemesis.Slow{Link: nemesis.Link{Latency: 50 * time.Millisecond, Jitter: 10 * time.Millisecond}}
	_, err := f.Start(c)
	require.NoError(t, err)
	_, err = f.Stop(c)
	require.NoError(t, err)
	require.Equal(t, []string{"set n1 50ms±10ms", "set n2 50ms±10ms", "set n3 50ms±10ms", "clear n1", "clear n2", "clear n3"}, c.log)

	c = newFake(3, 1)
	bad := &nemesis.Slow{Link: nemesis.Link{Latency: -time.Second}}
	v, err := bad.Start(c)
	require.EqualError(t, err, "slow n1: bad delay {-1s 0s}")
	require.Equal(t, map[string]any{"hosts": []string(nil)}, v)
	v, err = bad.Stop(c)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"restored": []string(nil), "delay": "default"}, v)
	require.Empty(t, c.log)
}

// TestLookupComposes: "a+b" is a and b at once, started in order and
// stopped in reverse, each recorded under its name.
func TestLookupComposes(t *testing.T) {
	f, err := nemesis.Lookup("partition-isolate+crash-one+loss")
	require.NoError(t, err)
	require.IsType(t, nemesis.All{}, f)
	require.Equal(t, "partition-isolate+crash-one+loss", f.Name())
	require.Equal(t, "all(partition-isolate(1 random node | the rest), crash-one(1 random node), loss(drop-dial=0.3, reset-conn=0.1))", fmt.Sprint(f))

	c := newFake(3, 1)
	started, err := f.Start(c)
	require.NoError(t, err)
	require.Len(t, c.log, 3)
	require.True(t, strings.HasPrefix(c.log[0], "partition "), c.log[0])
	require.True(t, strings.HasPrefix(c.log[1], "crash "), c.log[1])
	require.Equal(t, "loss 0.3 0.1", c.log[2])
	rec := started.(map[string]any)
	require.Len(t, rec, 3)
	groups := rec["partition-isolate"].(map[string]any)["groups"]
	crashed := rec["crash-one"].(map[string]any)["nodes"].([]string)
	require.Len(t, crashed, 1)
	require.Equal(t, map[string]any{"drop_dial": 0.3, "reset_conn": 0.1}, rec["loss"])

	stopped, err := f.Stop(c)
	require.NoError(t, err)
	require.Equal(t, []string{"loss 0 0", "restart " + crashed[0], "heal"}, c.log[3:], "stopped in reverse")
	require.Equal(t, map[string]any{
		"partition-isolate": map[string]any{"healed": map[string]any{"groups": groups}},
		"crash-one":         map[string]any{"restarted": crashed},
		"loss":              map[string]any{"stopped": map[string]any{"drop_dial": 0.3, "reset_conn": 0.1}},
	}, stopped)

	for _, tc := range []struct{ name, want string }{
		{"partition-isolate+gremlins", `nemesis: unknown fault "gremlins" in "partition-isolate+gremlins" (known: `},
		{"crash-one+", `nemesis: unknown fault "" in "crash-one+" (known: `},
		{"gremlins", `nemesis: unknown fault "gremlins" (known: `},
		{"crash-one+pause+crash-one", `nemesis: "crash-one+pause+crash-one" names crash-one twice`},
	} {
		_, err := nemesis.Lookup(tc.name)
		require.ErrorContains(t, err, tc.want)
	}
	for _, name := range nemesis.Names() {
		require.NotContains(t, name, "+", "Names lists registered names only")
	}
}

// TestAllStopsEveryFault: a Stop that fails does not keep the others on,
// and a Start that fails leaves the faults after it unstarted.
func TestAllStopsEveryFault(t *testing.T) {
	c := newFake(3, 1)
	f := nemesis.All{&nemesis.Pause{}, &nemesis.Slow{Link: nemesis.Link{Latency: -1}}, &nemesis.Loss{DropDial: 1}}
	v, err := f.Start(c)
	require.EqualError(t, err, "slow: slow n1: bad delay {-1ns 0s}")
	require.Contains(t, v, "slow")
	require.NotContains(t, v, "loss", "not started after a failure")
	require.Len(t, c.log, 1)
	paused := c.log[0]
	_, err = f.Stop(c)
	require.NoError(t, err)
	require.Equal(t, []string{paused, "resume" + strings.TrimPrefix(paused, "pause")}, c.log, "only what started is undone")

	c = newFake(3, 1)
	f = nemesis.All{&nemesis.Crash{Count: 1}, &nemesis.Pause{}}
	_, err = f.Start(c)
	require.NoError(t, err)
	clear(c.down) // the restart will fail
	_, err = f.Stop(c)
	require.ErrorContains(t, err, "crash-one: restart n")
	require.Empty(t, c.paused, "the pause ended anyway")
}

func TestScheduleIsSeededAndHeals(t *testing.T) {
	run := func(seed uint64) []string {
		var out []string
		synctest.Test(t, func(t *testing.T) {
			c := newFake(3, seed)
			start := time.Now()
			now := func() time.Duration { return time.Since(start) }
			s := nemesis.Schedule{
				Faults:   []nemesis.Fault{&nemesis.PartitionHalves{}, &nemesis.Crash{Count: 1}, &nemesis.Pause{}},
				Interval: time.Second, Duration: 2 * time.Second, Jitter: 500 * time.Millisecond,
			}
			s.Run(context.Background(), c, now, 20*time.Second, func(e nemesis.Event) {
				require.NoError(t, e.Err)
				out = append(out, fmt.Sprintf("%v %s %v", e.At, e.F, e.Value))
			})
			require.Empty(t, c.down, "the schedule ends healed")
			require.Empty(t, c.paused)
		})
		return out
	}
	a, b, other := run(7), run(7), run(8)
	require.NotEmpty(t, a)
	require.Equal(t, a, b, "one seed, one schedule")
	require.NotEqual(t, a, other, "another seed, another schedule")
	require.True(t, strings.Contains(a[len(a)-1], "stop-"), "last event is a stop: %s", a[len(a)-1])
}
