package sim

import (
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/nemesis"
)

// TestNetworkCutsCompose: the model counts cuts per directed link as
// nemesis.Network says, and its hot path's set holds exactly the links
// with a cut left.
func TestNetworkCutsCompose(t *testing.T) {
	n := &network{cut: map[[2]string]bool{}, hosts: map[string]LinkDelay{}}
	got := n.Partition([]string{"a", "b"}, []string{"b", "c"})
	e := func(from, to string) nemesis.Edge { return nemesis.Edge{From: from, To: to} }
	assert.Equal(t, []nemesis.Edge{e("a", "b"), e("a", "c"), e("b", "c"), e("b", "a"), e("c", "a"), e("c", "b")}, got,
		"each link once, in the order of the groups")
	n.Cut("a", "b")
	for _, e := range got {
		n.HealLink(e.From, e.To)
	}
	assert.Equal(t, map[[2]string]bool{{"a", "b"}: true}, n.cut, "the one-way cut outlives the partition")
	n.HealLink("a", "b")
	n.HealLink("a", "b")
	assert.Empty(t, n.cut)
	assert.Empty(t, n.cuts, "nothing left behind")

	n.Cut("c", "a")
	n.Partition([]string{"a"}, []string{"b"})
	assert.True(t, n.cut[[2]string{"c", "a"}], "Partition heals nothing first")
	n.Heal()
	assert.Empty(t, n.cut)
	assert.Empty(t, n.cuts)
}

// TestNetworkHostDelaysCompose: a host takes the slowest of its settings,
// and removing one leaves the others.
func TestNetworkHostDelaysCompose(t *testing.T) {
	n := &network{cut: map[[2]string]bool{}, hosts: map[string]LinkDelay{}}
	slow, slower := LinkDelay{Latency: 10 * time.Millisecond}, LinkDelay{Latency: 5 * time.Millisecond, Jitter: 40 * time.Millisecond}
	require.NoError(t, n.AddHostDelay("a", slow))
	require.NoError(t, n.AddHostDelay("a", slower))
	assert.Equal(t, slower, n.hosts["a"])
	n.RemoveHostDelay("a", slower)
	assert.Equal(t, slow, n.hosts["a"])
	n.RemoveHostDelay("a", slower)
	assert.Equal(t, slow, n.hosts["a"], "removing what is not there does nothing")
	n.RemoveHostDelay("a", slow)
	assert.Empty(t, n.hosts)
	assert.Empty(t, n.held)
	assert.EqualError(t, n.AddHostDelay("a", LinkDelay{Latency: -1}), "sim: add-host-delay a: simnet: delay -1ns±0s: negative latency")
	assert.Empty(t, n.hosts)
}

// TestComposedFaultsOnTheModel: registered faults on the simulator's
// cluster, two at a time; stopping the first leaves exactly the second's
// cuts, and stopping both leaves none.
func TestComposedFaultsOnTheModel(t *testing.T) {
	partitions := []string{"partition-isolate", "partition-halves", "partition-ring", "partition-bridge", "partition-oneway"}
	for _, x := range partitions {
		for _, y := range partitions {
			if x == y {
				continue
			}
			t.Run(x+"+"+y, func(t *testing.T) {
				for seed := uint64(1); seed <= 10; seed++ {
					s := newSim(Config{Seed: int64(seed), Nodes: 5}.WithDefaults(), toy{}, io.Discard, false, true)
					c := &cluster{s: s, rng: rand.New(rand.NewPCG(seed, 2))}
					fx, err := nemesis.Lookup(x)
					require.NoError(t, err)
					fy, err := nemesis.Lookup(y)
					require.NoError(t, err)
					_, err = fx.Start(c)
					require.NoError(t, err)
					before := clone(s.net.cuts)
					_, err = fy.Start(c)
					require.NoError(t, err)
					want := map[[2]string]int{}
					for k, v := range s.net.cuts {
						if d := v - before[k]; d > 0 {
							want[k] = d
						}
					}
					_, err = fx.Stop(c)
					require.NoError(t, err)
					assert.Equal(t, want, s.net.cuts, "seed %d: %s's cuts stay", seed, y)
					assert.Len(t, s.net.cut, len(want))
					_, err = fy.Stop(c)
					require.NoError(t, err)
					assert.Empty(t, s.net.cut, "seed %d", seed)
				}
			})
		}
	}
}

func clone(m map[[2]string]int) map[[2]string]int {
	out := make(map[[2]string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
