package scenarios

import (
	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/raft_seq"
)

// raft_seq: the consensus sequencer on etcd's raft, the design
// document's "consensus" (and, with buffering ID clients, "consensus with
// client-side caching").
func init() {
	mustRegister(System{
		Name:        RaftSeq,
		Description: "consensus: a raft leader increments a replicated counter through its log (the design document's consensus)",
		Promises:    raftPromises,
		WhyNot: func(sc Scenario) string {
			if sc.Cluster.FlakeClockRollback {
				return "it plants flake_seq's bug"
			}
			return rrOptions(sc)
		},
		NewNode: newRaftNode,
	})
}

// raftPromises: consensus hands out what its log commits, so besides
// rr_seq's promises it loses no ID that an operation did not leave in
// doubt. A node in memory that restarts has lost its log and cannot
// rejoin (a raft voter must not forget): with crashes in memory the
// cluster need not serve again, and with a crash of every node it
// cannot.
func raftPromises(sc Scenario) []string {
	out := append(defaultPromises(sc), checker.GapFree)
	if sc.Cluster.Persist == Memory && crashes(sc) {
		out = drop(out, checker.Live)
	}
	return out
}

func newRaftNode(env NodeEnv) (Node, error) {
	return raft_seq.NewNode(raft_seq.NodeConfig{
		Self: env.Self, Name: env.Name, Peers: env.Peers, Cluster: "lab",
		DataDir: env.DataDir, FS: env.FS,
		// Every start carries the flag, as a service's command line
		// would: only a cluster whose nodes are all fresh bootstraps.
		Bootstrap:  true,
		Dialer:     env.Dialer,
		PeerSecret: env.Secret,
		Seed:       uint64(env.Seed),
		Core: raft_seq.Config{
			RequestTimeout: env.Scenario.Workload.OpTimeout,
		},
		Logger: env.Logger,
	})
}
