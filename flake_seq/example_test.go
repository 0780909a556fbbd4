package flake_seq_test

import (
	"context"
	"fmt"
	"time"

	"github.com/seqlab/seqlab/flake_seq"
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
