package checker

import (
	"fmt"
	"slices"
	"sort"
)

// NodeOrderDetails are the figures of the node-order check.
type NodeOrderDetails struct {
	// Judged counts the ok ranges that name the node that issued them,
	// and Nodes are those nodes.
	Judged int      `json:"judged"`
	Nodes  []string `json:"nodes"`
	// Violations counts the ranges that hold an ID at or below one of a
	// range their node had completed before they were invoked.
	Violations     int        `json:"violations"`
	Examples       []string   `json:"examples,omitempty"`
	ExamplePairsOp [][2]int64 `json:"example_pairs,omitempty"`
}

func (d *NodeOrderDetails) add(o NodeOrderDetails) {
	d.Judged += o.Judged
	d.Violations += o.Violations
	for _, n := range o.Nodes {
		if !slices.Contains(d.Nodes, n) {
			d.Nodes = append(d.Nodes, n)
		}
	}
	sort.Strings(d.Nodes)
	for i, x := range o.Examples {
		if len(d.Examples) < 5 {
			d.Examples = append(d.Examples, x)
			d.ExamplePairsOp = append(d.ExamplePairsOp, o.ExamplePairsOp[i])
		}
	}
}

// checkNodeOrder: for each node that issues IDs, a range that completed
// at the node before another was invoked there holds only IDs below the
// other's. This is the order a Flake sequencer promises, where each node
// reads its own clock and none coordinates: the IDs of different nodes
// may interleave in any way, so there is no global order to check, but
// one node never goes back. The node is the one the completion names
// (history's node); ranges without one are left out.
//
// As for linearizability, a sweep in line order decides it: at each
// range's invoke, the ranges its node completed so far must all end at
// or below its start, so only the one that ends highest matters.
func checkNodeOrder(s *seqOps, nodes []string) Result {
	// The ok ranges that name their node are judged: s.ranges has their
	// invokes in line order, s.okDone their completions.
	ends := s.okDone
	top := make([]*op, len(nodes)) // by node: the completed range that ends highest
	var d NodeOrderDetails
	var ops []int64
	next := 0
	// done takes the completions before position pos.
	done := func(pos int) {
		for ; next < len(ends) && ends[next].end < pos; next++ {
			if ends[next].node < 0 {
				continue
			}
			if t := top[ends[next].node]; t == nil || ends[next].to > t.to {
				top[ends[next].node] = ends[next]
			}
		}
	}
	for _, o := range s.ranges {
		if !o.ok() || o.node < 0 {
			continue
		}
		d.Judged++
		done(o.inv)
		t := top[o.node]
		if t == nil || o.from >= t.to {
			continue
		}
		d.Violations++
		ops = append(ops, t.ref(), o.ref())
		if len(d.Examples) < 5 {
			d.Examples = append(d.Examples, fmt.Sprintf("node %s completed [%d,%d) at %d before the op invoked at %d, which got [%d,%d) from it",
				nodes[o.node], t.from, t.to, t.ref(), o.invIdx, o.from, o.to))
			d.ExamplePairsOp = append(d.ExamplePairsOp, [2]int64{t.ref(), o.ref()})
		}
	}
	done(int(^uint(0) >> 1))
	d.Nodes = []string{}
	for i, t := range top {
		if t != nil {
			d.Nodes = append(d.Nodes, nodes[i])
		}
	}
	sort.Strings(d.Nodes)
	switch {
	case d.Violations > 0:
		return Result{Valid: ValidFalse, Ops: capOps(ops), Details: d,
			Reason: fmt.Sprintf("%d ranges not above one their node completed before they were invoked, first: %s", d.Violations, d.Examples[0])}
	case d.Judged == 0:
		return Result{Valid: ValidTrue, Details: d, Reason: "no ranges name the node that issued them"}
	}
	return Result{Valid: ValidTrue, Details: d,
		Reason: fmt.Sprintf("%d ranges from %d nodes, each node's in real-time order", d.Judged, len(d.Nodes))}
}
