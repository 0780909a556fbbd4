package scenarios

import (
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/nemesis"
	"github.com/seqlab/seqlab/rr_seq"
	"github.com/seqlab/seqlab/simnet/sim"
)

// Persistence says where nodes keep their values.
type Persistence int

const (
	// Memory: a crashed node comes back empty.
	Memory Persistence = iota
	// Disk: values are durable on a simulated disk that loses what was
	// not synced on power loss.
	Disk
)

func (p Persistence) String() string {
	if p == Disk {
		return "disk"
	}
	return "memory"
}

// Cluster describes the system under test.
type Cluster struct {
	Nodes     int
	R, W      int // 0: majority
	Unsafe    bool
	WriteRule rr_seq.WriteRule
	Persist   Persistence
	// AckBeforeSync plants the bug of acknowledging unsynced writes.
	AckBeforeSync bool
	// Planted plants coordinator bugs (rr_seq.Planted).
	Planted rr_seq.Planted
	// FlakeClockRollback plants flake_seq's bug of a node that keeps no
	// high-water mark (flake_seq.Planted.ClockRollback).
	FlakeClockRollback bool
	// ReadFirst runs rr_seq's protocol from before write-only rounds and
	// coalescing (rr_seq.Config.ReadFirst).
	ReadFirst bool
	// NoBootstrapOnRestart restarts crashed nodes without the bootstrap
	// flag. By default a node restarts with the command line it started
	// with, bootstrap included: a node that lost its state still recovers
	// from its peers when any of them holds state, but a cluster that lost
	// every node's state starts over at 1 (the planted bug
	// Bug/crash-all-in-memory). Without the flag it stays unavailable.
	NoBootstrapOnRestart bool
	// Latency and Jitter of every link.
	Latency, Jitter time.Duration
}

// Workload describes the clients.
type Workload struct {
	// RangeClients call NextRange on the nodes directly; each takes its
	// range size from Sizes in turn.
	RangeClients int
	Sizes        []uint64
	// IDClients are rr_seq.Client instances handing out IDs one by one,
	// fetching ranges of IDRangeSize.
	IDClients   int
	IDRangeSize uint64
	// Rate is each client's operations per second of simulated time.
	Rate float64
	// OpTimeout bounds an operation; a timed-out op is info and its
	// process is replaced.
	OpTimeout time.Duration
	// Names are the sequences used; default just "default".
	Names []string
}

// Expect is the verdict a scenario should reach.
type Expect struct {
	// Violates lists properties the run must find violated (planted
	// bugs). Empty: every promised property must hold.
	Violates []string
	// LostBuffers: the run must show IDs lost in crashed clients'
	// buffers (the client-crash fault did its work).
	LostBuffers bool
	// Rare says the planted bug shows on few seeds: one run that misses
	// it meets the expectation if it keeps every promise, and only a
	// hunt, which must catch it on some seed, tests it.
	Rare bool
}

// Scenario is one experiment.
type Scenario struct {
	Name        string // "Group/what"; Group selects it with -run
	Description string
	Cluster     Cluster
	Workload    Workload
	Faults      []string // registered nemesis names
	// Interval is the quiet time before each fault (plus up to half of it
	// again, seeded), FaultFor how long each stays on. InTurn takes the
	// faults in turn; otherwise each is drawn at random from the seed.
	Interval time.Duration
	FaultFor time.Duration
	InTurn   bool
	// Timeline is the explicit part of the faults: each started and
	// stopped at an exact time, on the targets it names, and Windows are
	// random schedules of their own over parts of the run. Both come
	// beside the random schedule of Faults, which spans the run up to
	// its recovery (see FaultPlan).
	Timeline []TimedFault
	Windows  []FaultWindow
	// TimeLimit is the simulated length of the run, Recovery its final
	// part, with every fault healed. NoRecovery lets faults last to the
	// end (a shrunk run, cut short where its violation was).
	TimeLimit  time.Duration
	Recovery   time.Duration
	NoRecovery bool
	// Ops, when not nil, is the workload spelt out: exactly these client
	// operations and no others (sim.Config.Ops), as a shrunk run has it.
	// Only the simulator runs them.
	Ops []sim.OpSpec
	// Seed, when not nil, is the seed a run takes when none is given
	// (DefaultSeed).
	Seed *int64
	// Source is the script the scenario was read from, if any
	// (ParseScript): a run directory keeps it as script.scn, so that a
	// replay needs no file.
	Source []byte
	// Promises, when set, cut what the system under test promises to
	// these properties (a scenario that keeps a cluster unavailable by
	// design drops "live"); empty leaves each system's own promises
	// (System.Promises).
	Promises []string
	Expect   Expect
	// Systems are the systems the scenario applies to (RRSeq, RaftSeq,
	// FlakeSeq, or a registered one); empty means every system that
	// takes it (System.WhyNot). A planted bug names its system. A
	// prepared scenario (Prepare) names exactly the one it runs on.
	Systems []string
	// Modes are the modes the scenario runs in (ModeGRPC, ModeSim,
	// ModeProcess); empty means every mode that can run it: grpc, sim,
	// and process unless WhyNotProcess says why not.
	Modes []string
}

// LiveWithin is the time the cluster has, after the last fault event, to
// serve every operation again (the live check). It is the same for every
// scenario and mode: long enough for gRPC's reconnect backoff after a
// node restarts. A run too short to invoke anything that late (a
// time-limited one, say) has nothing to judge, and the check is n/a.
func (s Scenario) LiveWithin() time.Duration { return checker.DefaultLiveWithin }

// Supports reports whether the scenario runs in mode.
func (s Scenario) Supports(mode string) bool {
	if s.Ops != nil && mode != ModeSim {
		return false
	}
	if mode == ModeProcess && s.WhyNotProcess(false) != "" {
		return false
	}
	return len(s.Modes) == 0 || slices.Contains(s.Modes, mode)
}

// supports returns an error unless the scenario runs in mode.
func (s Scenario) supports(mode string) error {
	if s.Ops != nil && mode != ModeSim {
		return errors.Errorf("scenario %s spells its operations out, which only the simulator runs (mode %s)", s.Name, ModeSim)
	}
	if !s.Supports(mode) {
		return errors.Errorf("scenario %s does not run in %s mode (its modes: %s)", s.Name, mode, strings.Join(s.Modes, ","))
	}
	if name := s.System(); name != "" {
		sys, err := LookupSystem(name)
		if err != nil {
			return err
		}
		if !sys.Supports(mode) {
			return errors.Errorf("system %s does not run in %s mode (its modes: %s)", name, mode, strings.Join(sys.Modes(), ","))
		}
	}
	return nil
}

// Group returns the first part of the name.
func (s Scenario) Group() string {
	g, _, _ := strings.Cut(s.Name, "/")
	return g
}

// DefaultSeed is the seed a scenario runs with when none is given: fixed
// per scenario, so a plain go test is repeatable.
func (s Scenario) DefaultSeed() int64 {
	if s.Seed != nil {
		return *s.Seed
	}
	h := fnv.New64a()
	h.Write([]byte(s.Name))
	return int64(h.Sum64() & (1<<53 - 1))
}

// WithDefaults fills unset fields.
func (s Scenario) WithDefaults() Scenario {
	c, w := &s.Cluster, &s.Workload
	if c.Nodes == 0 {
		c.Nodes = 3
	}
	if c.Latency == 0 {
		c.Latency = time.Millisecond
	}
	if w.RangeClients == 0 && w.IDClients == 0 {
		w.RangeClients = 5
	}
	if len(w.Sizes) == 0 {
		w.Sizes = []uint64{1, 3, 10}
	}
	if w.IDRangeSize == 0 {
		w.IDRangeSize = 8
	}
	if w.Rate == 0 {
		w.Rate = 10
	}
	if w.OpTimeout == 0 {
		w.OpTimeout = time.Second
	}
	if len(w.Names) == 0 {
		w.Names = []string{"default"}
	}
	if s.TimeLimit == 0 {
		s.TimeLimit = 30 * time.Second
	}
	if s.Recovery == 0 && !s.NoRecovery {
		s.Recovery = s.TimeLimit / 5
	}
	if s.Interval == 0 {
		s.Interval = 3 * time.Second
	}
	if s.FaultFor == 0 {
		s.FaultFor = 3 * time.Second
	}
	return s
}

// Validate returns an error unless s can run.
func (s Scenario) Validate() error {
	if s.Name == "" || strings.ContainsAny(s.Name, " \t\n") {
		return errors.Errorf("scenario name %q must be non-empty without spaces", s.Name)
	}
	c, w := s.Cluster, s.Workload
	q := rr_seq.Quorum{N: c.Nodes, R: c.R, W: c.W}
	if q.R == 0 {
		q.R = c.Nodes/2 + 1
	}
	if q.W == 0 {
		q.W = c.Nodes/2 + 1
	}
	if err := q.Validate(c.Unsafe); err != nil {
		return errors.Wrapf(err, "scenario %s", s.Name)
	}
	switch {
	case c.Nodes < 1 || c.Nodes > 9:
		return errors.Errorf("scenario %s: %d nodes (want 1..9)", s.Name, c.Nodes)
	case w.RangeClients < 0 || w.IDClients < 0 || w.RangeClients+w.IDClients > 200:
		return errors.Errorf("scenario %s: bad client counts", s.Name)
	case w.Rate <= 0 || w.Rate > 10000:
		return errors.Errorf("scenario %s: rate %v outside (0, 10000]", s.Name, w.Rate)
	case s.TimeLimit <= 0 || s.TimeLimit > time.Hour:
		return errors.Errorf("scenario %s: time limit %v outside (0, 1h]", s.Name, s.TimeLimit)
	case s.Recovery < 0 || s.Recovery >= s.TimeLimit:
		return errors.Errorf("scenario %s: recovery %v must be shorter than the time limit", s.Name, s.Recovery)
	case w.OpTimeout <= 0:
		return errors.Errorf("scenario %s: op timeout must be positive", s.Name)
	}
	for _, n := range w.Sizes {
		if n == 0 {
			return errors.Errorf("scenario %s: range size 0", s.Name)
		}
	}
	for _, m := range s.Modes {
		if m != ModeGRPC && m != ModeSim && m != ModeProcess {
			return errors.Errorf("scenario %s: mode %q is not %s, %s or %s", s.Name, m, ModeGRPC, ModeSim, ModeProcess)
		}
	}
	for _, f := range s.Faults {
		if _, err := nemesis.Lookup(f); err != nil {
			return errors.Wrapf(err, "scenario %s", s.Name)
		}
	}
	if err := s.validateTimeline(); err != nil {
		return errors.Wrapf(err, "scenario %s", s.Name)
	}
	for _, name := range s.Systems {
		if _, err := LookupSystem(name); err != nil {
			return errors.Wrapf(err, "scenario %s", s.Name)
		}
	}
	for _, p := range s.Promises {
		if !slices.Contains(checker.Properties, p) {
			return errors.Errorf("scenario %s: promise %q is not a property (known: %s)", s.Name, p, strings.Join(checker.Properties, ", "))
		}
	}
	return nil
}

// String is the one-line form used by seqlab list.
func (s Scenario) String() string {
	s = s.WithDefaults()
	c := s.Cluster
	faults := strings.Join(s.FaultNames(), ",")
	if faults == "" {
		faults = "none"
	}
	expect := "valid"
	if len(s.Expect.Violates) > 0 {
		expect = "violates " + strings.Join(s.Expect.Violates, ",")
	}
	var ms []string
	for _, m := range []string{ModeGRPC, ModeSim, ModeProcess} {
		if s.Supports(m) {
			ms = append(ms, m)
		}
	}
	modes := strings.Join(ms, ",")
	return fmt.Sprintf("%-34s N=%d %s %s faults=%s expect=%s modes=%s systems=%s", s.Name, c.Nodes, c.WriteRule, c.Persist, faults, expect, modes,
		strings.Join(s.SystemNames(), ","))
}

// Catalogue returns every scenario, sorted by name.
func Catalogue() []Scenario {
	out := allScenarios()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Find returns the scenario with this exact name.
func Find(name string) (Scenario, error) {
	for _, s := range allScenarios() {
		if s.Name == name {
			return s, nil
		}
	}
	var names []string
	for _, s := range Catalogue() {
		names = append(names, s.Name)
	}
	return Scenario{}, errors.Errorf("no scenario %q; known: %s", name, strings.Join(names, " "))
}

// Groups returns the scenario groups, sorted.
func Groups() []string {
	seen := map[string]bool{}
	for _, s := range allScenarios() {
		seen[s.Group()] = true
	}
	var out []string
	for g := range seen {
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}
