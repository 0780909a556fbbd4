package scenarios

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/seqlab/seqlab/checker"
	pcluster "github.com/seqlab/seqlab/process/cluster"
	"github.com/seqlab/seqlab/raft_seq"
	"github.com/seqlab/seqlab/raft_seq/raftsim"
	"github.com/seqlab/seqlab/rr_seq"
	"github.com/seqlab/seqlab/simnet/sim"
)

// raft_seq: the consensus sequencer on etcd's raft, the design
// document's "consensus" (and, with buffering ID clients, "consensus with
// client-side caching"). Its planted bugs are the two it shares with
// rr_seq: acknowledging writes it never fsynced (Cluster.AckBeforeSync)
// and a node that lost its state rejoining without asking its peers
// (Cluster.Planted.RejoinEmpty).
func init() {
	mustRegister(System{
		Name:        RaftSeq,
		Description: "consensus: a raft leader increments a replicated counter through its log (the design document's consensus)",
		Promises:    raftPromises,
		WhyNot:      raftWhyNot,
		SimConfig:   func(sc Scenario) (any, error) { return raftSimConfig(sc), nil },
		NewSim: func(config json.RawMessage, nodes int) (sim.System, error) {
			var c raftsim.Config
			if len(config) > 0 {
				if err := json.Unmarshal(config, &c); err != nil {
					return nil, err
				}
			}
			return raftsim.New(c, nodes)
		},
		NewNode: newRaftNode,
		Process: &ProcessSpec{Package: "./cmd/raftseq-node", Template: raftseqNodeTemplate},
	})
}

// raftseqNodeTemplate is raftseq-node's command in a process-mode run of
// sc: the grpc mode's timers (raftTimers), the planted bug it has a flag
// for, and every start with --bootstrap, as in the grpc mode.
func raftseqNodeTemplate(sc Scenario, bin string) string {
	t := raftTimers(sc)
	s := pcluster.RaftSeqNode(bin, sc.Cluster.Persist == Disk) + " --cluster lab" +
		fmt.Sprintf(" --election-timeout %v --tick %v --request-timeout %v --max-range %d", t.ElectionTimeout, t.TickInterval, t.RequestTimeout, t.MaxRange)
	if sc.Cluster.AckBeforeSync {
		s += " --unsafe-no-sync"
	}
	return s
}

// raftPromises: consensus hands out what its log commits, so besides
// rr_seq's promises it loses no ID that an operation did not leave in
// doubt. A node in memory that restarts has lost its log and cannot
// rejoin (a raft voter must not forget): with crashes in memory the
// cluster need not serve again.
func raftPromises(sc Scenario) []string {
	out := append(defaultPromises(sc), checker.GapFree)
	if sc.Cluster.Persist == Memory && crashes(sc) {
		out = drop(out, checker.Live)
	}
	return out
}

// raftWhyNot takes the planted bugs raft_seq has, and no other system's
// settings.
func raftWhyNot(sc Scenario) string {
	if sc.Cluster.FlakeClockRollback {
		return "it plants flake_seq's bug"
	}
	c := sc
	c.Cluster.AckBeforeSync = false
	c.Cluster.Planted.RejoinEmpty = false
	return rrOptions(c)
}

func raftSimConfig(sc Scenario) raftsim.Config {
	c := sc.Cluster
	return raftsim.Config{
		Persist:      c.Persist == Disk,
		UnsafeNoSync: c.AckBeforeSync,
		RejoinEmpty:  c.Planted.RejoinEmpty,
	}.WithDefaults(c.Nodes)
}

// raftTimers are the core's timers for a run of sc, as the simulator
// derives them: elections a quarter of the clients' timeout (at most
// 500ms, so that some fit in the live bound), ticks a fifth of that, and
// requests answered unknown just before the client gives up.
func raftTimers(sc Scenario) raft_seq.Config {
	op := sc.Workload.OpTimeout
	election := max(min(op/4, 500*time.Millisecond), 2*time.Millisecond)
	return raft_seq.Config{
		ElectionTimeout: election,
		TickInterval:    max(election/5, time.Millisecond),
		RequestTimeout:  max(op-min(op/10, 20*time.Millisecond), time.Millisecond),
		MaxRange:        rr_seq.DefaultMaxRange,
	}
}

func newRaftNode(env NodeEnv) (Node, error) {
	return raft_seq.NewNode(raft_seq.NodeConfig{
		Self: env.Self, Name: env.Name, Peers: env.Peers, Cluster: "lab",
		DataDir: env.DataDir, FS: env.FS,
		// Every start carries the flag, as a service's command line
		// would: only a cluster whose nodes are all fresh bootstraps.
		Bootstrap:    true,
		Dialer:       env.Dialer,
		PeerSecret:   env.Secret,
		Seed:         uint64(env.Seed),
		Core:         raftTimers(env.Scenario),
		UnsafeNoSync: env.Scenario.Cluster.AckBeforeSync,
		Logger:       env.Logger,
	})
}
