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

// fakeCluster records what faults do to it, and holds cuts and host
// delays as the Network contract says: counted per directed link, one
// setting per AddHostDelay.
type fakeCluster struct {
	nodes   []string
	log     []string
	down    map[string]bool
	paused  map[string]bool
	cut     map[string]int            // "a->b": how many cuts the link holds
	delays  map[string][]nemesis.Link // host: its settings, in the order added
	rng     *rand.Rand
	clients []string
}

func newFake(n int, seed uint64) *fakeCluster {
	f := &fakeCluster{down: map[string]bool{}, paused: map[string]bool{}, cut: map[string]int{}, delays: map[string][]nemesis.Link{},
		rng: rand.New(rand.NewPCG(seed, 1)), clients: []string{"c1", "c2"}}
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
func (f *fakeCluster) Partition(groups ...[]string) []nemesis.Edge {
	f.logf("partition %v", groups)
	es := nemesis.PartitionEdges(groups...)
	for _, e := range es {
		f.cut[e.String()]++
	}
	return es
}
func (f *fakeCluster) Cut(from, to string) { f.logf("cut %s->%s", from, to); f.cut[from+"->"+to]++ }
func (f *fakeCluster) HealLink(from, to string) {
	f.logf("heal %s->%s", from, to)
	if k := from + "->" + to; f.cut[k] > 1 {
		f.cut[k]--
	} else {
		delete(f.cut, k)
	}
}
func (f *fakeCluster) Heal()                 { f.logf("heal"); clear(f.cut) }
func (f *fakeCluster) Reset(from, to string) { f.logf("reset %s->%s", from, to) }
func (f *fakeCluster) AddHostDelay(h string, l nemesis.Link) error {
	if l.Latency < 0 || l.Jitter < 0 {
		return fmt.Errorf("bad delay %v", l)
	}
	f.logf("add-delay %s %v±%v", h, l.Latency, l.Jitter)
	f.delays[h] = append(f.delays[h], l)
	return nil
}
func (f *fakeCluster) RemoveHostDelay(h string, l nemesis.Link) {
	f.logf("remove-delay %s %v±%v", h, l.Latency, l.Jitter)
	if i := slices.Index(f.delays[h], l); i >= 0 {
		f.delays[h] = slices.Delete(f.delays[h], i, i+1)
	}
	if len(f.delays[h]) == 0 {
		delete(f.delays, h)
	}
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
			require.Empty(t, c.cut, "every cut is healed")
			require.Empty(t, c.delays, "every delay is removed")
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

// cuts returns the directed links cut now ("a->b").
func (f *fakeCluster) cuts() map[string]bool {
	cut := map[string]bool{}
	for k := range f.cut {
		cut[k] = true
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
			require.Empty(t, c.cut, "every cut healed")
			require.Len(t, c.log, 2*rec["cuts"].(int), "one HealLink per Cut")
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
	type stopCase struct {
		key   string // what Stop records
		field string // the part of Start's record it holds; "" for all of it
		undo  string // the prefix of what Stop does to the cluster; "" for nothing
	}
	// One case per registered fault: the README's "Adding a fault" adds
	// its own at the top.
	cases := map[string]stopCase{
		"partition-isolate": {"healed", "", "heal "},
		"partition-halves":  {"healed", "", "heal "},
		"partition-ring":    {"healed", "", "heal "},
		"partition-bridge":  {"healed", "", "heal "},
		"partition-oneway":  {"healed", "", "heal "},
		"crash-one":         {"restarted", "nodes", "restart "},
		"crash-majority":    {"restarted", "nodes", "restart "},
		"crash-all":         {"restarted", "nodes", "restart "},
		"power-loss-all":    {"restarted", "nodes", "restart "},
		"lose-unsynced":     {"restarted", "nodes", "restart "},
		"pause":             {"resumed", "node", "resume "},
		"slow":              {"restored", "hosts", "remove-delay "},
		"slow-node":         {"restored", "hosts", "remove-delay "},
		"loss":              {"stopped", "", "loss 0 0"},
		"reset":             {"nothing_to_undo", "", ""},
		"client-crash":      {"nothing_to_undo", "", ""},
		"clock-offset":      {"restored", "node", "unskew "},
		"clock-step-back":   {"restored", "node", "unskew "},
		"clock-strobe":      {"restored", "node", "unskew "},
		"clock-drift":       {"restored", "node", "unskew "},
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
			require.Empty(t, c.cut, "every cut is healed")
			require.Empty(t, c.delays, "every delay is removed")
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

// TestSlowRemovesItsOwnDelay: Stop removes the delay Start added rather
// than clearing the hosts or setting them to some delay, so a delay that
// another fault added stays; and a bad delay fails Start and leaves
// nothing to remove.
func TestSlowRemovesItsOwnDelay(t *testing.T) {
	c := newFake(3, 1)
	f := &nemesis.Slow{Link: nemesis.Link{Latency: 50 * time.Millisecond, Jitter: 10 * time.Millisecond}}
	_, err := f.Start(c)
	require.NoError(t, err)
	v, err := f.Stop(c)
	require.NoError(t, err)
	require.Equal(t, []string{"add-delay n1 50ms±10ms", "add-delay n2 50ms±10ms", "add-delay n3 50ms±10ms",
		"remove-delay n1 50ms±10ms", "remove-delay n2 50ms±10ms", "remove-delay n3 50ms±10ms"}, c.log)
	require.Equal(t, map[string]any{"restored": []string{"n1", "n2", "n3"}, "removed": "50ms±10ms"}, v)

	c = newFake(3, 1)
	slow, node := &nemesis.Slow{Link: f.Link}, &nemesis.Slow{OneNode: true, Link: nemesis.Link{Latency: time.Second}}
	_, err = slow.Start(c)
	require.NoError(t, err)
	v, err = node.Start(c)
	require.NoError(t, err)
	host := v.(map[string]any)["hosts"].([]string)[0]
	require.Equal(t, []nemesis.Link{f.Link, node.Link}, c.delays[host])
	_, err = slow.Stop(c)
	require.NoError(t, err)
	require.Equal(t, map[string][]nemesis.Link{host: {node.Link}}, c.delays, "slow-node's delay outlives slow")

	c = newFake(3, 1)
	bad := &nemesis.Slow{Link: nemesis.Link{Latency: -time.Second}}
	v, err = bad.Start(c)
	require.EqualError(t, err, "slow n1: bad delay {-1s 0s}")
	require.Equal(t, map[string]any{"hosts": []string(nil)}, v)
	v, err = bad.Stop(c)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"restored": []string(nil), "removed": "-1s±0s"}, v)
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
	require.Equal(t, "loss 0 0", c.log[3], "stopped in reverse")
	require.Equal(t, "restart "+crashed[0], c.log[4])
	require.Len(t, c.log, 5+4, "then the isolated node's 4 links healed, one each")
	for _, l := range c.log[5:] {
		require.True(t, strings.HasPrefix(l, "heal "), "a HealLink, not a Heal: %q", l)
	}
	require.Empty(t, c.cut)
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

// held lists the links cut now, sorted, with their count of cuts where
// more than one holds a link.
func (f *fakeCluster) held() string {
	if len(f.cut) == 0 {
		return "none"
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(f.cut)) {
		if n := f.cut[k]; n > 1 {
			k = fmt.Sprintf("%s×%d", k, n)
		}
		out = append(out, k)
	}
	return strings.Join(out, " ")
}

// TestPartitionsCompose: two partitions at once, on different or on the
// same links; stopping either leaves the other's cuts exactly, and
// stopping both leaves nothing cut.
func TestPartitionsCompose(t *testing.T) {
	// What a fault cut, from its record.
	ownCuts := func(rec any) map[string]int {
		m := rec.(map[string]any)
		out := map[string]int{}
		if g, ok := m["groups"]; ok {
			for _, e := range nemesis.PartitionEdges(g.([][]string)...) {
				out[e.String()]++
			}
		} else {
			out[m["from"].(string)+"->"+m["to"].(string)]++
		}
		return out
	}
	isolate := func() nemesis.Fault { return &nemesis.PartitionIsolate{} }
	oneway := func() nemesis.Fault { return &nemesis.OneWayCut{} }
	halves := func() nemesis.Fault { return &nemesis.PartitionHalves{} }
	for _, tc := range []struct {
		name   string
		a, b   func() nemesis.Fault
		nodes  int
		always bool // the two always share a link
	}{
		{"isolate+oneway", isolate, oneway, 5, false},
		{"oneway+isolate", oneway, isolate, 5, false},
		// On 3 nodes they share the link between the isolated node and
		// the minority, or every link.
		{"isolate+halves", isolate, halves, 3, true},
		{"oneway+oneway", oneway, oneway, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shared, apart := 0, 0
			for seed := uint64(1); seed <= 40; seed++ {
				for _, stopFirst := range []string{"a", "b"} {
					c := newFake(tc.nodes, seed)
					a, b := tc.a(), tc.b()
					ra, err := a.Start(c)
					require.NoError(t, err)
					rb, err := b.Start(c)
					require.NoError(t, err)
					ca, cb := ownCuts(ra), ownCuts(rb)
					both := maps.Clone(ca)
					overlap := false
					for k, n := range cb {
						overlap = overlap || both[k] > 0
						both[k] += n
					}
					require.Equal(t, both, c.cut, "seed %d: each cut counted", seed)
					if overlap {
						shared++
					} else {
						apart++
					}
					first, second, left := a, b, cb
					if stopFirst == "b" {
						first, second, left = b, a, ca
					}
					_, err = first.Stop(c)
					require.NoError(t, err)
					require.Equal(t, left, c.cut, "seed %d: stopping %s leaves the other's cuts, shared ones too", seed, first.Name())
					_, err = second.Stop(c)
					require.NoError(t, err)
					require.Empty(t, c.cut, "seed %d", seed)
					require.NotContains(t, c.log, "heal", "no fault heals everything")
				}
			}
			require.NotZero(t, shared, "some seed cuts a link twice")
			if tc.always {
				require.Zero(t, apart, "the two always share a link")
			} else {
				require.NotZero(t, apart, "some seed cuts different links")
			}
		})
	}
}

// TestFaultsUndoOnlyTheirOwn: for every two registered faults, started
// one after the other, stopping the first leaves exactly the cuts and
// host delays the second added. (Two crashes of one node, two pauses, or
// two losses are not held per fault, and are not what this checks.)
func TestFaultsUndoOnlyTheirOwn(t *testing.T) {
	type state struct {
		cut    map[string]int
		delays map[string][]nemesis.Link
	}
	snap := func(c *fakeCluster) state {
		s := state{cut: maps.Clone(c.cut), delays: map[string][]nemesis.Link{}}
		for h, ls := range c.delays {
			s.delays[h] = slices.Clone(ls)
		}
		return s
	}
	// minus is what b holds that a does not: the second fault's share.
	minus := func(b, a state) state {
		out := state{cut: map[string]int{}, delays: map[string][]nemesis.Link{}}
		for k, n := range b.cut {
			if d := n - a.cut[k]; d > 0 {
				out.cut[k] = d
			}
		}
		for h, ls := range b.delays {
			if rest := ls[len(a.delays[h]):]; len(rest) > 0 {
				out.delays[h] = rest
			}
		}
		return out
	}
	for _, x := range nemesis.Names() {
		for _, y := range nemesis.Names() {
			if x == y {
				continue
			}
			t.Run(x+"+"+y, func(t *testing.T) {
				c := newFake(5, 3)
				fx, _ := nemesis.Lookup(x)
				fy, _ := nemesis.Lookup(y)
				_, err := fx.Start(c)
				require.NoError(t, err)
				sx := snap(c)
				_, err = fy.Start(c)
				require.NoError(t, err)
				want := minus(snap(c), sx)
				_, _ = fx.Stop(c) // a restart may clash with the other crash: not this test's business
				require.Equal(t, want, snap(c), "stopping %s left %s's share", x, y)
				_, _ = fy.Stop(c)
				require.Empty(t, c.cut)
				require.Empty(t, c.delays)
			})
		}
	}
}
