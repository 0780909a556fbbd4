package nemesis_test

import (
	"fmt"

	"github.com/seqlab/seqlab/nemesis"
)

// CutLast is a whole new fault: it isolates the last node, in both
// directions, and heals on Stop. Adding it to the lab takes this type and
// one line in nemesis.Registry.
type CutLast struct{}

func (CutLast) Name() string   { return "cut-last" }
func (CutLast) String() string { return "cut-last(the last node | the rest)" }

func (CutLast) Start(c nemesis.Cluster) (any, error) {
	nodes := c.Nodes()
	last := nodes[len(nodes)-1]
	c.Net().Partition(nodes[:len(nodes)-1], []string{last})
	return map[string]any{"isolated": last}, nil
}

func (CutLast) Stop(c nemesis.Cluster) (any, error) {
	nodes := c.Nodes()
	c.Net().Heal()
	return map[string]any{"healed": map[string]any{"isolated": nodes[len(nodes)-1]}}, nil
}

func Example() {
	nemesis.Registry["cut-last"] = func() nemesis.Fault { return CutLast{} }
	defer delete(nemesis.Registry, "cut-last")

	f, err := nemesis.Lookup("cut-last")
	if err != nil {
		panic(err)
	}
	c := newFake(3, 1) // any nemesis.Cluster: the lab passes its simulated cluster
	v, _ := f.Start(c)
	fmt.Println(v, c.log)
	v, _ = f.Stop(c)
	fmt.Println(v, c.log[len(c.log)-1])

	// Registered faults compose with "+": both at once, stopped in reverse.
	both, _ := nemesis.Lookup("cut-last+pause")
	fmt.Println(both)
	// Output:
	// map[isolated:n3] [partition [[n1 n2] [n3]]]
	// map[healed:map[isolated:n3]] heal
	// all(cut-last(the last node | the rest), pause(1 random node))
}
