package nemesis_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/nemesis"
)

// A fault with its targets spelt out acts on them, says so, records them
// as a drawn fault would, and draws nothing from the seeded source.
func TestTargetedFaults(t *testing.T) {
	for _, tc := range []struct {
		name    string
		targets []string
		str     string
		start   any
		log     []string
	}{
		{"partition-isolate", []string{"n4"}, "partition-isolate(n4 | the rest)",
			map[string]any{"groups": [][]string{{"n4"}, {"n1", "n2", "n3", "n5"}}},
			[]string{"partition [[n4] [n1 n2 n3 n5]]"}},
		{"partition-halves", []string{"n5", "n2"}, "partition-halves(n5 n2 | the rest)",
			map[string]any{"groups": [][]string{{"n5", "n2"}, {"n1", "n3", "n4"}}},
			[]string{"partition [[n5 n2] [n1 n3 n4]]"}},
		{"partition-ring", []string{"n1", "n3", "n5", "n2", "n4"}, "partition-ring(ring n1 n3 n5 n2 n4, each node sees its nearest majority)",
			map[string]any{"ring": []string{"n1", "n3", "n5", "n2", "n4"}, "neighbours": 1, "cuts": 10}, nil},
		{"partition-bridge", []string{"n3", "n1", "n5", "n2", "n4"}, "partition-bridge(n1 n5 | n2 n4, joined only by bridge n3)",
			map[string]any{"bridge": "n3", "sides": [][]string{{"n1", "n5"}, {"n2", "n4"}}}, nil},
		{"partition-oneway", []string{"n2", "n1"}, "partition-oneway(n2 -> n1 cut, n1 -> n2 open)",
			map[string]any{"from": "n2", "to": "n1"}, []string{"cut n2->n1"}},
		{"crash-one", []string{"n2"}, "crash-one(n2)",
			map[string]any{"nodes": []string{"n2"}, "power_loss": false}, []string{"crash n2 power=false torn=false"}},
		{"lose-unsynced", []string{"n5", "n1", "n3"}, "lose-unsynced-majority(n5 n1 n3, unsynced writes lost or torn)",
			map[string]any{"nodes": []string{"n5", "n1", "n3"}, "power_loss": true},
			[]string{"crash n5 power=true torn=true", "crash n1 power=true torn=true", "crash n3 power=true torn=true"}},
		{"pause", []string{"n3"}, "pause(n3)", map[string]any{"node": "n3"}, []string{"pause n3"}},
		{"slow-node", []string{"n1"}, "slow-node(n1: 200ms±100ms)",
			map[string]any{"hosts": []string{"n1"}, "latency": "200ms", "jitter": "100ms"}, []string{"add-delay n1 200ms±100ms"}},
		{"reset", []string{"n4", "n2"}, "reset(every connection between n4 and n2)",
			map[string]any{"between": []string{"n4", "n2"}}, []string{"reset n4->n2"}},
		{"client-crash", []string{"c2"}, "client-crash(c2)", map[string]any{"client": "c2"}, []string{"crash-client c2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFake(5, 7)
			f, err := nemesis.Targeted(tc.name, tc.targets)
			require.NoError(t, err)
			plain, _ := nemesis.Lookup(tc.name)
			require.Equal(t, plain.Name(), f.Name(), "the name stays what it was")
			require.Equal(t, tc.str, f.(interface{ String() string }).String())
			require.NoError(t, nemesis.CheckTargets(f, c.nodes, c.clients))
			v, err := f.Start(c)
			require.NoError(t, err)
			require.Equal(t, tc.start, v)
			if tc.log != nil {
				require.Equal(t, tc.log, c.log)
			}
			require.Equal(t, rand.New(rand.NewPCG(7, 1)).Uint64(), c.rng.Uint64(), "nothing drawn")
			_, err = f.Stop(c)
			require.NoError(t, err)
			require.Empty(t, c.down)
			require.Empty(t, c.paused)
			require.Empty(t, c.cut)
			require.Empty(t, c.delays)
		})
	}
}

// Bad targets are refused with a message that says what the fault takes,
// by Targeted when no cluster could suit them, and by CheckTargets and
// Start against the cluster at hand; a refused Start touches nothing.
func TestTargetErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		targets []string
		want    string // from Targeted, or else from CheckTargets and Start
	}{
		{"slow", []string{"n1"}, "nemesis: slow takes no targets"},
		{"loss", []string{"n1"}, "nemesis: loss takes no targets"},
		{"partition-isolate+crash-one", []string{"n1", "n2"}, "nemesis: partition-isolate+crash-one is several faults and takes no targets: give each its own"},
		{"gremlins", []string{"n1"}, `nemesis: unknown fault "gremlins"`},
		{"reset", []string{"n1", "n1"}, "nemesis: reset names n1 twice"},
		{"partition-isolate", []string{"n1", "n2"}, "nemesis: partition-isolate takes 1 target on 3 nodes (the node cut off from the rest), got 2: n1 n2"},
		{"partition-isolate", []string{"n4"}, "nemesis: partition-isolate: n4 names no node of the cluster (n1 n2 n3)"},
		{"crash-majority", []string{"n1"}, "nemesis: crash-majority takes 2 targets on 3 nodes (the nodes to crash), got 1: n1"},
		{"partition-ring", []string{"n1", "n2", "n3"}, "nemesis: partition-ring needs at least 4 nodes"},
		{"partition-bridge", []string{"n1", "n2"}, "nemesis: partition-bridge takes 3 targets on 3 nodes (every node once: the bridge, then one side, then the other), got 2: n1 n2"},
		{"client-crash", []string{"k1"}, "nemesis: client-crash: k1 names no buffering client of the cluster (c1 c2)"},
		{"pause", []string{"c1"}, "nemesis: pause: c1 names no node of the cluster (n1 n2 n3)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFake(3, 1)
			f, err := nemesis.Targeted(tc.name, tc.targets)
			if err != nil {
				require.ErrorContains(t, err, tc.want)
				return
			}
			if tc.name != "partition-ring" { // too small a cluster is Start's own refusal
				require.EqualError(t, nemesis.CheckTargets(f, c.nodes, c.clients), tc.want)
			}
			_, err = f.Start(c)
			require.ErrorContains(t, err, tc.want)
			require.Empty(t, c.log, "a refused Start does nothing")
		})
	}
}

// Without targets a fault is what Lookup gives, drawing as before; an
// empty list of targets is no targets.
func TestTargetedWithoutTargets(t *testing.T) {
	for _, name := range nemesis.Names() {
		a, err := nemesis.Targeted(name, nil)
		require.NoError(t, err)
		b, err := nemesis.Lookup(name)
		require.NoError(t, err)
		require.Equal(t, b, a)
		require.NoError(t, nemesis.CheckTargets(a, nil, nil))
		ca, cb := newFake(5, 3), newFake(5, 3)
		va, _ := a.Start(ca)
		vb, _ := b.Start(cb)
		require.Equal(t, vb, va)
		require.Equal(t, cb.log, ca.log)
	}
	f, err := nemesis.Targeted("crash-one", []string{})
	require.NoError(t, err)
	require.Equal(t, "crash-one(1 random node)", f.(*nemesis.Crash).String())
}

// Fits refuses a cluster too small for a fault's shape, as Start would,
// parts of a composite included.
func TestFits(t *testing.T) {
	three := []string{"n1", "n2", "n3"}
	for name, want := range map[string]string{
		"partition-ring":              "nemesis: partition-ring needs at least 4 nodes for a ring of different majorities, the cluster has 3",
		"pause+partition-ring":        "nemesis: partition-ring needs at least 4 nodes for a ring of different majorities, the cluster has 3",
		"partition-bridge":            "",
		"crash-all":                   "",
		"partition-isolate+crash-one": "",
	} {
		f, err := nemesis.Lookup(name)
		require.NoError(t, err)
		if want == "" {
			require.NoError(t, nemesis.Fits(f, three), name)
			continue
		}
		require.EqualError(t, nemesis.Fits(f, three), want, name)
		_, err = f.Start(newFake(3, 1))
		require.ErrorContains(t, err, want, "Start says the same")
	}
	f, _ := nemesis.Lookup("reset")
	require.EqualError(t, nemesis.Fits(f, []string{"n1"}), "nemesis: reset needs at least 2 nodes for two ends, the cluster has 1")
}
