package raftsim_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/checker/history"
	"github.com/seqlab/seqlab/raft_seq/raftsim"
	"github.com/seqlab/seqlab/simnet/sim"
)

// Example runs a three-node raft_seq cluster, its state on disk, through a
// power loss of every node and a partition, checks the history, and
// replays the run from its seed.
func Example() {
	cfg := sim.Config{Seed: 42, Nodes: 3, Clients: 4, TimeLimit: 8 * time.Second, Faults: []sim.FaultSpec{
		{Name: "power-loss-all", At: 2 * time.Second, For: 500 * time.Millisecond, Seed: 1},
		{Name: "partition-halves", At: 3 * time.Second, For: time.Second, Seed: 2},
	}}
	sys, err := raftsim.New(raftsim.Config{Persist: true}, cfg.Nodes)
	if err != nil {
		panic(err)
	}
	r, err := sim.Run(cfg, sys, false)
	if err != nil {
		panic(err)
	}
	events, _, err := history.Read(bytes.NewReader(r.History))
	if err != nil {
		panic(err)
	}
	promises := []string{checker.Unique, checker.Linearizable, checker.GapFree, checker.Live}
	res := checker.Check(events, checker.Options{Promises: promises})
	for _, p := range promises {
		fmt.Println(p, res.Word(p))
	}
	again, _ := sim.Run(cfg, sys, false)
	fmt.Println("replayed bit for bit:", again.Hash == r.Hash)
	// Output:
	// unique held
	// linearizable held
	// gap-free held
	// live held
	// replayed bit for bit: true
}
