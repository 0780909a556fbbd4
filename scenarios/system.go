package scenarios

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/fsys"
	"github.com/seqlab/seqlab/simnet/sim"
)

// A System is a sequencer the lab puts under faults. It brings what it
// has of three things, and runs in each mode they allow:
//
//   - a state-machine core for the simulator (NewSim, with SimConfig),
//     which ModeSim drives, bit for bit from the seed;
//   - an in-process gRPC node (NewNode), which ModeGRPC runs over the
//     simulated network with a simulated disk and clock;
//   - a node binary (Process), which ModeProcess builds from the module
//     and runs (rrseq-node, raftseq-node, flakeseq-node), as it runs any
//     binary named by --node-cmd.
//
// Every gRPC node serves rrseq.v1.Sequencer's NextRange, which the lab's
// clients call. A system says what it promises; the checker judges it
// against those promises only, and reports the rest as not promised.
// Planted bugs stay configurations of a system (Cluster's fields for
// rr_seq), never systems of their own.
type System struct {
	Name        string
	Description string
	// Promises are the properties (checker.Properties) the system
	// promises in a run of sc, which has its defaults.
	Promises func(sc Scenario) []string
	// Sparse says the system's IDs are sparse by design: the gap check
	// is n/a for it.
	Sparse bool
	// WhyNot says why sc does not apply to the system, or "".
	WhyNot func(sc Scenario) string

	// SimConfig is the system's side of a simulated run of sc: a value
	// that plan.json records beside the simulator's configuration, and
	// NewSim builds the system from it (decoded from the plan on
	// replay). Nil, with NewSim, when the system has no core for the
	// simulator.
	SimConfig func(sc Scenario) (any, error)
	NewSim    func(config json.RawMessage, nodes int) (sim.System, error)

	// NewNode starts one in-process gRPC node; nil when the system has
	// none.
	NewNode func(env NodeEnv) (Node, error)
	// Process is the system's node binary, which the process mode
	// builds and runs; nil when it has none.
	Process *ProcessSpec
}

// ProcessSpec is how the process mode runs a system's node binary.
type ProcessSpec struct {
	// Package is the binary's main package in the module
	// ("./cmd/rrseq-node"); the lab builds it from the module's source.
	Package string
	// Template is the nodes' command template (process/supervisor's
	// placeholders) for a run of sc, a prepared scenario, with the binary
	// at bin: the scenario's settings as the binary's flags.
	Template func(sc Scenario, bin string) string
}

// NodeEnv is what the gRPC mode gives a node it starts: its names, the
// simulated network, disk and clock, and a seed.
type NodeEnv struct {
	// Name is the node's name ("n1"), Index its place among the nodes.
	Name  string
	Index int
	// Self is the node's peer address, Peers every node's, in order;
	// Dialer dials them (and anything else) on the simulated network.
	Self   string
	Peers  []string
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
	// FS and DataDir are the node's disk; DataDir is empty for a node in
	// memory (Persistence Memory), which comes back empty after a crash.
	FS      fsys.FS
	DataDir string
	// Starts counts the node's earlier starts: 0 is its first.
	Starts int
	// Seed is this start's seed, drawn from the run's.
	Seed int64
	// PeerTimeout bounds a call to a peer.
	PeerTimeout time.Duration
	// Clock is the node's own clock: the bubble's time plus the clock
	// faults on the node. Began is when the run began by the bubble's
	// clock, the same for every start: an epoch for timestamps (a
	// bubble's clock starts in 2000).
	Clock func() time.Time
	Began time.Time
	// Secret is the cluster's peer secret.
	Secret string
	Logger *slog.Logger
	// Scenario is the run's scenario, with its defaults.
	Scenario Scenario
}

// Node is a running in-process gRPC node. Close stops it and everything
// it started; Serve and ServePeers then return.
type Node interface {
	Serve(lis net.Listener) error
	ServePeers(lis net.Listener) error
	Close() error
}

// The systems the lab ships.
const (
	RRSeq    = "rr_seq"
	RaftSeq  = "raft_seq"
	FlakeSeq = "flake_seq"
)

// OwnProgram is the system a process-mode run records when it ran a
// program of one's own (--node-cmd), which the lab knows only by its
// command.
const OwnProgram = "node-cmd"

var (
	sysMu   sync.RWMutex
	systems = map[string]System{}
)

// Register adds a system to the lab, so that every scenario that applies
// to it runs it (see Scenario.Systems). A name may be registered once.
func Register(s System) error {
	switch {
	case s.Name == "" || strings.ContainsAny(s.Name, " \t\n/,"):
		return errors.Errorf("system name %q must be non-empty, without spaces, slashes or commas", s.Name)
	case s.Promises == nil:
		return errors.Errorf("system %s says nothing of what it promises", s.Name)
	case (s.SimConfig == nil) != (s.NewSim == nil):
		return errors.Errorf("system %s: SimConfig and NewSim go together", s.Name)
	case s.NewSim == nil && s.NewNode == nil && s.Process == nil:
		return errors.Errorf("system %s has neither a simulator core, a gRPC node nor a binary", s.Name)
	case s.Process != nil && (s.Process.Package == "" || s.Process.Template == nil):
		return errors.Errorf("system %s: a node binary needs its Package and Template", s.Name)
	}
	sysMu.Lock()
	defer sysMu.Unlock()
	if _, ok := systems[s.Name]; ok {
		return errors.Errorf("system %s is registered already", s.Name)
	}
	systems[s.Name] = s
	return nil
}

func mustRegister(s System) {
	if err := Register(s); err != nil {
		panic(err)
	}
}

// Systems returns every registered system: the lab's own first, in the
// order of the design document (rr_seq, raft_seq, flake_seq), then the
// others by name.
func Systems() []System {
	sysMu.RLock()
	defer sysMu.RUnlock()
	out := make([]System, 0, len(systems))
	for _, s := range systems {
		out = append(out, s)
	}
	rank := func(n string) int {
		if i := slices.Index([]string{RRSeq, RaftSeq, FlakeSeq}, n); i >= 0 {
			return i
		}
		return 3
	}
	sort.Slice(out, func(i, j int) bool {
		if ri, rj := rank(out[i].Name), rank(out[j].Name); ri != rj {
			return ri < rj
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// LookupSystem returns the system registered under name.
func LookupSystem(name string) (System, error) {
	sysMu.RLock()
	s, ok := systems[name]
	sysMu.RUnlock()
	if ok {
		return s, nil
	}
	var names []string
	for _, s := range Systems() {
		names = append(names, s.Name)
	}
	return System{}, errors.Errorf("no system %q; known: %s", name, strings.Join(names, " "))
}

// Supports reports whether the system runs in mode.
func (s System) Supports(mode string) bool {
	switch mode {
	case ModeSim:
		return s.NewSim != nil
	case ModeGRPC:
		return s.NewNode != nil
	case ModeProcess:
		return s.Process != nil
	}
	return false
}

// Modes lists the modes the system runs in.
func (s System) Modes() []string {
	var out []string
	for _, m := range []string{ModeGRPC, ModeSim, ModeProcess} {
		if s.Supports(m) {
			out = append(out, m)
		}
	}
	return out
}

// whyNot says why sc does not run on s, or "".
func (s System) whyNot(sc Scenario) string {
	if len(sc.Systems) > 0 && !slices.Contains(sc.Systems, s.Name) {
		return "the scenario names the systems " + strings.Join(sc.Systems, ",")
	}
	if s.WhyNot != nil {
		return s.WhyNot(sc)
	}
	return ""
}

// promises is what s promises in sc: its own promises, cut to those the
// scenario allows when it lists any (a scenario that keeps a system
// unavailable by design drops "live").
func (s System) promises(sc Scenario) []string {
	own := s.Promises(sc)
	if len(sc.Promises) == 0 {
		return own
	}
	var out []string
	for _, p := range own {
		if slices.Contains(sc.Promises, p) {
			out = append(out, p)
		}
	}
	return out
}

// SystemNames lists the registered systems that sc applies to, in
// Systems order.
func (s Scenario) SystemNames() []string {
	s = s.WithDefaults()
	var out []string
	for _, sys := range Systems() {
		if sys.whyNot(s) == "" {
			out = append(out, sys.Name)
		}
	}
	return out
}

// RunsOn reports whether the scenario runs on system in mode.
func (s Scenario) RunsOn(system, mode string) bool {
	sys, err := LookupSystem(system)
	if err != nil || !sys.Supports(mode) || sys.whyNot(s.WithDefaults()) != "" {
		return false
	}
	return s.Supports(mode)
}

// defaultPromises is what a sequencer that keeps every promise of the
// lab's first one promises in sc: unique and linearizable IDs, monotonic
// ones for clients that hand them out one by one, and service again
// after the faults heal.
func defaultPromises(sc Scenario) []string {
	out := []string{checker.Unique, checker.Linearizable}
	if sc.Workload.IDClients > 0 {
		out = append(out, checker.Monotonic)
	}
	return append(out, checker.Live)
}

// resolve prepares sc to run on system (the scenario's first when
// empty): it names the system alone in Systems, and Promises becomes
// what the system promises in it. It is idempotent.
func resolve(sc Scenario, system string) (Scenario, System, error) {
	sc = sc.WithDefaults()
	if system == "" {
		names := sc.SystemNames()
		if len(names) == 0 {
			return sc, System{}, errors.Errorf("scenario %s applies to no registered system", sc.Name)
		}
		system = names[0]
	}
	sys, err := LookupSystem(system)
	if err != nil {
		return sc, System{}, err
	}
	if why := sys.whyNot(sc); why != "" {
		return sc, System{}, errors.Errorf("scenario %s does not apply to %s: %s (its systems: %s)",
			sc.Name, system, why, strings.Join(sc.SystemNames(), ","))
	}
	sc.Promises = sys.promises(sc)
	sc.Systems = []string{system}
	return sc, sys, nil
}

// System is the system a prepared scenario runs on (see Prepare).
func (s Scenario) System() string {
	if len(s.Systems) == 1 {
		return s.Systems[0]
	}
	return ""
}

// crashes reports whether any of sc's faults, on its schedule or its
// timeline, crashes a node.
func crashes(sc Scenario) bool {
	for _, f := range sc.FaultNames() {
		for part := range strings.SplitSeq(f, "+") {
			if strings.HasPrefix(part, "crash-") || strings.HasPrefix(part, "power-loss") || part == "lose-unsynced" {
				return true
			}
		}
	}
	return false
}

// drop returns xs without x.
func drop(xs []string, x string) []string {
	return slices.DeleteFunc(slices.Clone(xs), func(s string) bool { return s == x })
}

// checkOptions are the checker's options for a run of sc, prepared for
// sys, on top of o.
func (s Scenario) checkOptions(sys System, o checker.Options) checker.Options {
	o.Promises = s.Promises
	o.LiveWithin = s.LiveWithin()
	o.Sparse = sys.Sparse
	return o
}

// sparse reports whether a prepared scenario's system hands out IDs
// sparse by design.
func (s Scenario) sparse() bool {
	sys, err := LookupSystem(s.System())
	return err == nil && sys.Sparse
}
