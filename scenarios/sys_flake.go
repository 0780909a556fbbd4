package scenarios

import (
	"encoding/json"
	"time"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/flake_seq"
	"github.com/seqlab/seqlab/flake_seq/flakesim"
	pcluster "github.com/seqlab/seqlab/process/cluster"
	"github.com/seqlab/seqlab/simnet/sim"
)

// flake_seq: the design document's Flake model. Every node stamps IDs
// from its own clock, with no coordination at all.
func init() {
	mustRegister(System{
		Name:        FlakeSeq,
		Description: "Flake IDs: a timestamp, a node ID and a counter, no coordination (the design document's Flake model)",
		Promises:    flakePromises,
		Sparse:      true,
		WhyNot:      flakeWhyNot,
		SimConfig: func(sc Scenario) (any, error) {
			return flakesim.Config{ClockRollback: sc.Cluster.FlakeClockRollback}.WithDefaults(sc.Cluster.Nodes), nil
		},
		NewSim: func(config json.RawMessage, nodes int) (sim.System, error) {
			var c flakesim.Config
			if len(config) > 0 {
				if err := json.Unmarshal(config, &c); err != nil {
					return nil, err
				}
			}
			return flakesim.New(c, nodes)
		},
		NewNode: newFlakeNode,
		Process: &ProcessSpec{Package: "./cmd/flakeseq-node", Template: flakeseqNodeTemplate},
	})
}

// flakeseqNodeTemplate is flakeseq-node's command in a process-mode run
// of sc, with the planted bug it has a flag for. The nodes read the
// machine's clock, which no fault of the process mode shifts.
func flakeseqNodeTemplate(sc Scenario, bin string) string {
	s := pcluster.FlakeSeqNode(bin, sc.Cluster.Persist == Disk)
	if sc.Cluster.FlakeClockRollback {
		s += " --unsafe-clock-rollback"
	}
	return s
}

// flakePromises: Flake IDs are unique, and each node's increase with
// time; there is no global order, so neither linearizability nor a
// client's monotonic order (a client that moves to a node whose clock is
// behind goes back) is promised, and they are sparse by design. With no
// coordination, a node serves whenever it is up.
func flakePromises(sc Scenario) []string {
	return []string{checker.Unique, checker.NodeOrder, checker.Live}
}

func flakeWhyNot(sc Scenario) string {
	if why := rrOptions(sc); why != "" {
		return why
	}
	if sc.Expect.LostBuffers {
		return "it expects the gap check to find IDs lost in buffers, and Flake IDs are sparse by design"
	}
	return ""
}

func newFlakeNode(env NodeEnv) (Node, error) {
	return flake_seq.NewNode(flake_seq.NodeConfig{
		Name: env.Name, NodeID: env.Index,
		DataDir: env.DataDir, FS: env.FS,
		Clock: env.Clock,
		// Timestamps count from an hour before the run began (the
		// bubble's clock starts before flake_seq's default epoch), so
		// that a clock stepped back early in a run stays past it.
		Epoch:   env.Began.Add(-time.Hour),
		Planted: flake_seq.Planted{ClockRollback: env.Scenario.Cluster.FlakeClockRollback},
		Logger:  env.Logger,
	})
}
