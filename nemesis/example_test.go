package nemesis_test

import (
	"fmt"

	"github.com/seqlab/seqlab/nemesis"
)

// Two partitions at once, on 3 nodes: each fault heals only the links it
// cut, so the links both cut stay cut until both have stopped.
func Example() {
	c := newFake(3, 1) // any nemesis.Cluster: the lab passes its simulated cluster
	isolate, halves := &nemesis.PartitionIsolate{}, &nemesis.PartitionHalves{}
	a, _ := isolate.Start(c)
	b, _ := halves.Start(c)
	fmt.Println(a, b)
	fmt.Println("cut:", c.held())

	halves.Stop(c)
	fmt.Println("halves stopped, cut:", c.held())
	isolate.Stop(c)
	fmt.Println("isolate stopped, cut:", c.held())

	// Registered faults compose with "+": both at once, stopped in reverse.
	both, _ := nemesis.Lookup("partition-isolate+partition-halves")
	fmt.Println(both)
	// Output:
	// map[groups:[[n1] [n2 n3]]] map[groups:[[n2] [n1 n3]]]
	// cut: n1->n2×2 n1->n3 n2->n1×2 n2->n3 n3->n1 n3->n2
	// halves stopped, cut: n1->n2 n1->n3 n2->n1 n3->n1
	// isolate stopped, cut: none
	// all(partition-isolate(1 random node | the rest), partition-halves(random minority | majority))
}
