package scenarios

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/seqlab/seqlab/rr_seq"
	"github.com/seqlab/seqlab/rr_seq/rrsim"
	"github.com/seqlab/seqlab/simnet/sim"
)

// rr_seq: the read-repair sequencer, the lab's first system. Cluster's
// quorums, write rule and planted bugs are its configuration.
func init() {
	mustRegister(System{
		Name:        RRSeq,
		Description: "read-repair quorums: a coordinator reads R nodes and conditionally writes W (the design document's read-repair)",
		Promises:    defaultPromises,
		SimConfig:   func(sc Scenario) (any, error) { return rrSimConfig(sc), nil },
		NewSim: func(config json.RawMessage, nodes int) (sim.System, error) {
			var c rrsim.Config
			if len(config) > 0 {
				if err := json.Unmarshal(config, &c); err != nil {
					return nil, err
				}
			}
			return rrsim.New(c.WithDefaults(nodes), nodes)
		},
		NewNode: newRRNode,
		Process: &ProcessSpec{Package: "./cmd/rrseq-node", Template: rrseqNodeTemplate},
		WhyNot: func(sc Scenario) string {
			if sc.Cluster.FlakeClockRollback {
				return "it plants flake_seq's bug"
			}
			return ""
		},
	})
}

func rrSimConfig(sc Scenario) rrsim.Config {
	c, w := sc.Cluster, sc.Workload
	return rrsim.Config{
		R: c.R, W: c.W, WriteRule: c.WriteRule, Persist: c.Persist == Disk, AckBeforeSync: c.AckBeforeSync,
		TrustCache: c.Planted.TrustCache, LateJoin: c.Planted.LateJoin, RejoinEmpty: c.Planted.RejoinEmpty, ShunReset: c.Planted.ShunReset, ReadFirst: c.ReadFirst,
		PeerTimeout: w.OpTimeout / 4, NoBootstrapOnRestart: c.NoBootstrapOnRestart,
	}.WithDefaults(c.Nodes)
}

func newRRNode(env NodeEnv) (Node, error) {
	cc := env.Scenario.Cluster
	return rr_seq.NewNode(rr_seq.Config{
		Self: env.Self, Name: env.Name, Peers: env.Peers, Cluster: "lab",
		R: cc.R, W: cc.W, Unsafe: cc.Unsafe, WriteRule: cc.WriteRule,
		UnsafeAckBeforeSync: cc.AckBeforeSync,
		UnsafePlanted:       cc.Planted,
		ReadFirst:           cc.ReadFirst,
		Dialer:              env.Dialer,
		PeerTimeout:         env.PeerTimeout,
		RoundLife:           2 * env.PeerTimeout, // as in the simulator
		PeerSecret:          env.Secret,
		// A node restarts with the command line it started with, unless
		// the scenario drops the bootstrap flag on restarts.
		Bootstrap:  env.Starts == 0 || !cc.NoBootstrapOnRestart,
		FirstStart: env.Starts == 0,
		Seed:       env.Seed,
		Logger:     env.Logger,
		DataDir:    env.DataDir,
		FS:         env.FS,
	})
}

// rrOptions says which of rr_seq's own settings sc sets: settings that
// no other system has, so a scenario that sets them is rr_seq's alone.
func rrOptions(sc Scenario) string {
	c := sc.Cluster
	var set []string
	if c.R != 0 || c.W != 0 || c.Unsafe {
		set = append(set, fmt.Sprintf("quorums R=%d W=%d", c.R, c.W))
	}
	if c.WriteRule != rr_seq.SetIfUnchanged {
		set = append(set, "write rule "+c.WriteRule.String())
	}
	if c.AckBeforeSync || c.Planted != (rr_seq.Planted{}) {
		set = append(set, "planted bugs")
	}
	if c.ReadFirst {
		set = append(set, "read-first")
	}
	if c.NoBootstrapOnRestart {
		set = append(set, "no bootstrap on restart")
	}
	if len(set) == 0 {
		return ""
	}
	return "it sets rr_seq's " + strings.Join(set, ", ")
}
