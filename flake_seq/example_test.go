package flake_seq_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/seqlab/seqlab/flake_seq"
	"github.com/seqlab/seqlab/nemesis"
)

// The core's loop: reserve a mark (persist it, then say so), hand out
// ranges by the clock, and keep going the same way when the clock steps
// back.
func Example() {
	core, _ := flake_seq.NewCore(flake_seq.Config{NodeID: 3}, 0)
	clock := 1500 * time.Millisecond
	if mark, ok := core.Renewal(clock); ok {
		// Write mark to disk and fsync it, then:
		core.Persisted(mark)
		fmt.Println("reserved below", mark)
	}
	r, _ := core.NextRange(clock, "orders", 10)
	ts, node, counter := flake_seq.Unpack(r.From)
	fmt.Println(r, "= timestamp", ts, "node", node, "counter", counter)

	r, _ = core.NextRange(clock-time.Second, "orders", 5) // the clock stepped back
	ts, _, counter = flake_seq.Unpack(r.From)
	fmt.Println("stepped back:", "timestamp", ts, "counter", counter)

	_, err := core.NextRange(clock-time.Second, "orders", flake_seq.PerMilli)
	fmt.Println(err)
	// Output:
	// reserved below 2500
	// [6291468288,6291468298) = timestamp 1500 node 3 counter 0
	// stepped back: timestamp 1500 counter 10
	// flake_seq: clock behind the last timestamp: the clock reads 500ms, the next usable millisecond starts at 1.501s (1.001s ahead)
}

// A node serves NextRange over gRPC (Serve); Allocate is the same call in
// process. This one reads a clock stopped at one instant.
func ExampleNewNode() {
	now := flake_seq.DefaultEpoch.Add(time.Hour)
	node, err := flake_seq.NewNode(flake_seq.NodeConfig{Name: "f1", NodeID: 1, Clock: func() time.Time { return now }})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer node.Close()
	r, _ := node.Allocate(context.Background(), "orders", 3)
	ts, id, counter := flake_seq.Unpack(r.From)
	fmt.Println(r.Len(), "IDs at", time.Duration(ts)*time.Millisecond, "after the epoch, node", id, "counter", counter)
	// Output:
	// 3 IDs at 1h0m0s after the epoch, node 1 counter 0
}

// skewedCluster is the clock part of a lab's cluster of in-process nodes:
// one nemesis.SkewedClock per node, which the node reads through
// NodeConfig.Clock, makes it a nemesis.Clocks, so clock faults reach the
// nodes' timestamps.
type skewedCluster struct {
	nemesis.Cluster // the network, crashes...: not used by clock faults
	clocks          map[string]*nemesis.SkewedClock
	rng             *rand.Rand
}

func (c *skewedCluster) Nodes() []string  { return []string{"n1"} }
func (c *skewedCluster) Rand() *rand.Rand { return c.rng }
func (c *skewedCluster) SkewClock(node string, s *nemesis.Skew) error {
	c.clocks[node].Add(s)
	return nil
}
func (c *skewedCluster) UnskewClock(node string, s *nemesis.Skew) { c.clocks[node].Remove(s) }

// A clock fault on a node that reads a skewed clock: stepped back, the
// node keeps its last timestamp.
func ExampleNodeConfig_skewedClock() {
	now := flake_seq.DefaultEpoch.Add(time.Hour) // the machine's clock, stopped for the example
	clock := nemesis.NewSkewedClock(func() time.Time { return now })
	c := &skewedCluster{clocks: map[string]*nemesis.SkewedClock{"n1": clock}, rng: rand.New(rand.NewPCG(1, 1))}
	node, _ := flake_seq.NewNode(flake_seq.NodeConfig{Name: "n1", Clock: clock.Now})
	defer node.Close()
	ts := func() time.Duration {
		r, _ := node.Allocate(context.Background(), "orders", 1)
		t, _, _ := flake_seq.Unpack(r.From)
		return time.Duration(t) * time.Millisecond
	}
	fmt.Println("before:", ts())
	f, _ := nemesis.Lookup("clock-step-back")
	v, _ := f.Start(c)
	fmt.Println(v, "now reads", clock.Now().Sub(flake_seq.DefaultEpoch))
	fmt.Println("stepped back:", ts())
	f.Stop(c)
	now = now.Add(time.Millisecond)
	fmt.Println("restored:", ts())
	// Output:
	// before: 1h0m0s
	// map[node:n1 skew:-2s] now reads 59m58s
	// stepped back: 1h0m0s
	// restored: 1h0m0.001s
}
