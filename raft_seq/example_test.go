package raft_seq_test

import (
	"fmt"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/seqlab/seqlab/raft_seq"
)

// Example drives a one-node core by hand: the loop a driver runs. Writes
// are made "durable" at once, and Tick is called when Output.Wake says.
func Example() {
	core, out, err := raft_seq.NewCore(raft_seq.Config{ID: 1, Peers: []uint64{1}, Seed: 7, Incarnation: 1},
		raft_seq.Bootstrap([]uint64{1}), 0)
	if err != nil {
		panic(err)
	}
	var now time.Duration
	var log []*raftpb.Entry // what this driver made durable
	carry := func(out raft_seq.Output) raft_seq.Output {
		for len(out.Writes) > 0 { // make them durable, then tell the core
			w := out.Writes[len(out.Writes)-1]
			for _, wr := range out.Writes {
				log = append(log, wr.Entries...)
			}
			next := core.Durable(now, w.Seq)
			next.Replies = append(out.Replies, next.Replies...)
			out = next
		}
		for _, r := range out.Replies {
			fmt.Println("reply", r.ID, r.Range, r.Err)
		}
		return out
	}
	out = carry(out)
	for core.Status().State != "leader" {
		now = out.Wake
		out = carry(core.Tick(now))
	}
	carry(core.Request(now, raft_seq.Request{ID: 1, Name: "orders", N: 10}))
	carry(core.Request(now, raft_seq.Request{ID: 2, Name: "orders", N: 1}))
	carry(core.Request(now, raft_seq.Request{ID: 3, Name: "orders", N: 0}))
	fmt.Println("entries in the log:", len(log))
	// Output:
	// reply 1 [1,11) <nil>
	// reply 2 [11,12) <nil>
	// reply 3 [0,0) range size n must be at least 1: seq: invalid argument
	// entries in the log: 3
}
