package sim

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/checker/history"
	"github.com/seqlab/seqlab/nemesis"
)

// Config is one simulated run: the cluster's size and network, the
// workload and the fault plan. The system under test, with its own
// configuration, comes beside it (Run). Together with Seed they fix the
// run bit for bit.
type Config struct {
	Seed int64 `json:"seed"`

	Nodes   int           `json:"nodes"`
	Latency time.Duration `json:"latency_ns"`
	Jitter  time.Duration `json:"jitter_ns"`
	// Dup is the share of messages delivered twice.
	Dup float64 `json:"dup"`

	// Clients call NextRange on a random node, each with its range size
	// from Sizes in turn, with the end of its last range of the name as a
	// hint. IDClients hand out IDs one by one from a buffer (seq.Buffer)
	// they fill with ranges of IDRangeSize, fetched from one node while it
	// answers (the next after a failure), with the same hint; their
	// fetches are recorded as next-range operations of processes of their
	// own. Each client invokes at Rate per second, one operation at a
	// time; an operation with no answer after OpTimeout is info and its
	// process is replaced.
	Clients     int           `json:"clients"`
	Sizes       []uint64      `json:"sizes"`
	IDClients   int           `json:"id_clients,omitempty"`
	IDRangeSize uint64        `json:"id_range_size,omitempty"`
	Rate        float64       `json:"rate"`
	OpTimeout   time.Duration `json:"op_timeout_ns"`
	Names       []string      `json:"names"`
	// RoundRobin makes ID clients fetch from each node in turn, with no
	// hint, as clients did before sticky nodes and hints.
	RoundRobin bool `json:"round_robin,omitempty"`
	// Ops, when not nil, is the workload spelt out: exactly these
	// operations and no others (Rate is then unused). A run's Result.Ops
	// is its workload in this form, so a plan can be shrunk an operation
	// at a time.
	Ops []OpSpec `json:"ops"`

	TimeLimit time.Duration `json:"time_limit_ns"`
	// Faults is the plan: each a registered nemesis fault, started and
	// stopped at fixed virtual times, on the targets it names or on
	// targets drawn from its own seed.
	Faults []FaultSpec `json:"faults"`
}

// FaultSpec is one fault of the plan. Targets, if any, are the nodes
// (n1...) or buffering clients (k1...) it acts on, as nemesis.Targeted
// takes them; without them it draws its targets from Seed.
type FaultSpec struct {
	Name    string        `json:"name"`
	At      time.Duration `json:"at_ns"`
	For     time.Duration `json:"for_ns"`
	Seed    uint64        `json:"seed"`
	Targets []string      `json:"targets,omitempty"`
}

// OpSpec is one client operation of an explicit workload. Client numbers
// the clients: range clients first, then ID clients. A client invokes an
// operation at At, or when its previous one ends if that is later. Node
// (an index into the nodes) and Name say where a range client sends its
// NextRange; an ID client's operations take an ID from its own sequence.
type OpSpec struct {
	Client int           `json:"client"`
	At     time.Duration `json:"at_ns"`
	Node   int           `json:"node,omitempty"`
	Name   string        `json:"name,omitempty"`
}

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.Nodes == 0 {
		c.Nodes = 3
	}
	if c.Latency == 0 {
		c.Latency = time.Millisecond
	}
	if c.Clients == 0 && c.IDClients == 0 && c.Ops == nil {
		c.Clients = 5
	}
	if len(c.Sizes) == 0 {
		c.Sizes = []uint64{1, 3, 10}
	}
	if c.IDRangeSize == 0 {
		c.IDRangeSize = 8
	}
	if c.Rate == 0 {
		c.Rate = 10
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = time.Second
	}
	if len(c.Names) == 0 {
		c.Names = []string{"default"}
	}
	if c.TimeLimit == 0 {
		c.TimeLimit = 30 * time.Second
	}
	return c
}

// Validate reports a configuration that cannot run on sys.
func (c Config) Validate(sys System) error {
	if c.Nodes < 1 || c.Nodes > 9 {
		return errors.Errorf("sim: %d nodes (want 1..9)", c.Nodes)
	}
	if c.Clients < 0 || c.IDClients < 0 || c.Clients+c.IDClients > 200 || !(c.Rate > 0) || c.OpTimeout <= 0 ||
		c.TimeLimit <= 0 || c.TimeLimit > time.Hour {
		return errors.New("sim: bad workload (0..200 clients, positive rate, timeout and time limit up to 1h)")
	}
	if c.Latency < 0 || c.Jitter < 0 || !(c.Dup >= 0 && c.Dup <= 1) {
		return errors.New("sim: bad timing or network (negative delays, or dup outside 0..1)")
	}
	for _, n := range append(append([]uint64(nil), c.Sizes...), c.IDRangeSize) {
		if n == 0 {
			return errors.New("sim: range size 0")
		}
	}
	for _, name := range c.Names {
		if err := sys.ValidateName(name); err != nil {
			return errors.Wrap(err, "sim: sequence name")
		}
	}
	var nodes, clients []string
	for i := range c.Nodes {
		nodes = append(nodes, fmt.Sprintf("n%d", i+1))
	}
	for k := range c.IDClients {
		clients = append(clients, fmt.Sprintf("k%d", k+1))
	}
	for _, f := range c.Faults {
		fault, err := nemesis.Targeted(f.Name, f.Targets)
		if err != nil {
			return err
		}
		if err := nemesis.CheckTargets(fault, nodes, clients); err != nil {
			return errors.Wrapf(err, "sim: fault %s at %v", f.Name, f.At)
		}
		if f.At < 0 || f.For < 0 {
			return errors.Errorf("sim: fault %s at negative time", f.Name)
		}
	}
	for i, o := range c.Ops {
		if o.Client < 0 || o.Client >= c.Clients+c.IDClients || o.At < 0 {
			return errors.Errorf("sim: op %d: client %d at %v (want a client in 0..%d at a time >= 0)",
				i, o.Client, o.At, c.Clients+c.IDClients-1)
		}
		if o.Client < c.Clients {
			if o.Node < 0 || o.Node >= c.Nodes {
				return errors.Errorf("sim: op %d: node %d outside 0..%d", i, o.Node, c.Nodes-1)
			}
			if err := sys.ValidateName(o.Name); err != nil {
				return errors.Wrapf(err, "sim: op %d", i)
			}
		}
	}
	return nil
}

// Schedule says how Plan spaces faults, as nemesis.Schedule does.
type Schedule struct {
	Faults   []string      // registered nemesis names
	Interval time.Duration // quiet time before each fault
	Duration time.Duration // time each fault stays on
	Jitter   time.Duration // spreads each interval by up to this much
	InTurn   bool          // take the faults in turn, not at random
}

// Plan draws a fault plan like nemesis.Schedule does: after a quiet
// interval (plus seeded jitter) a fault, picked at random or the next in
// turn, stays on for its duration; nothing starts at or after until.
func Plan(seed int64, s Schedule, until time.Duration) []FaultSpec {
	if len(s.Faults) == 0 || s.Interval <= 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x706c616e))
	var out []FaultSpec
	at := time.Duration(0)
	for i := 0; ; i++ {
		at += s.Interval
		if s.Jitter > 0 {
			at += time.Duration(rng.Int64N(int64(s.Jitter) + 1))
		}
		if at >= until {
			return out
		}
		name := s.Faults[i%len(s.Faults)]
		if !s.InTurn {
			name = s.Faults[rng.IntN(len(s.Faults))]
		}
		f := FaultSpec{Name: name, At: at, For: min(s.Duration, until-at), Seed: rng.Uint64()}
		out = append(out, f)
		at += f.For
	}
}

// Result is what a run produced.
type Result struct {
	// Hash is a SHA-256 over the trace: every event with its virtual time,
	// and every line of the history. Empty when Output.NoHash.
	Hash string
	// History is the run's history, unless it went to Output.History.
	History []byte
	Events  int // simulator events processed
	SimTime time.Duration
	Ops     int // client completions
	// Messages counts the messages sent, clients' and nodes', delivered
	// or not; Syncs the writes the nodes made durable (Host.Durable: one
	// fsync each).
	Messages, Syncs int
	// Workload is every operation the clients invoked, as an explicit
	// workload: Config.Ops set to it runs the same operations again.
	Workload []OpSpec
	// Trace holds the trace's lines when Run was asked to keep them.
	Trace []string
}

// Run plays cfg on sys to the end. It reads no clock, starts no goroutine
// and draws every random number from cfg.Seed, so the same cfg and
// system give the same Result. keepTrace keeps every trace line (to find
// where two runs part). The history is kept in memory, in Result.History.
func Run(cfg Config, sys System, keepTrace bool) (*Result, error) {
	return RunTo(cfg, sys, Output{Trace: keepTrace})
}

// Output says where a run's records go.
type Output struct {
	// History, when set, receives the history as it is made, a line per
	// event, instead of Result.History: a long run then holds only what
	// is in flight. Each write is one whole line.
	History io.Writer
	// Trace keeps every trace line in Result.Trace.
	Trace bool
	// Buffer, when set and History is not, is where the history is kept
	// in memory (emptied first): Result.History is then its bytes, so a
	// caller running seed after seed reuses one buffer.
	Buffer *bytes.Buffer
	// NoHash skips the run's hash (Result.Hash is empty): a hunt, which
	// keeps only the verdict of a seed, saves hashing every event and the
	// history. The run is the same either way.
	NoHash bool
	// Events, when set, takes the history's events as values, as they
	// happen, instead of any line being written (History and Buffer are
	// then unused): a checker.Stream checks the run as it goes. There is
	// no hash, as with NoHash, and an event that breaks the history's
	// rules is the run's error (see history.NewEventRecorder).
	Events func(*history.Event)
}

// RunTo is Run with the history and the trace where out says. The hash
// is the same whichever way the history goes.
func RunTo(cfg Config, sys System, out Output) (*Result, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(sys); err != nil {
		return nil, err
	}
	h := sha256.New()
	var hist *bytes.Buffer
	w := out.History
	switch {
	case out.Events != nil:
		w, out.NoHash = nil, true
	case w == nil:
		hist = out.Buffer
		if hist == nil {
			hist = new(bytes.Buffer)
		}
		hist.Reset()
		// About two lines of 130 bytes per expected operation.
		clients := float64(cfg.Clients + cfg.IDClients)
		hist.Grow(int(min(clients*cfg.Rate*cfg.TimeLimit.Seconds()*260, 64<<20)))
		w = hist
	case !out.NoHash:
		w = io.MultiWriter(w, h)
	}
	s := newSim(cfg, sys, w, out.Trace, !out.NoHash)
	if out.Events != nil {
		s.rec = history.NewEventRecorder(out.Events, s.clock)
	}
	s.start()
	s.run(cfg.TimeLimit)
	s.now = cfg.TimeLimit
	if err := s.rec.Err(); err != nil {
		return nil, err
	}
	r := &Result{Events: s.events, SimTime: s.now, Ops: s.ops, Messages: s.msgs, Syncs: s.syncs, Workload: s.workload, Trace: s.trace}
	if hist != nil {
		r.History = hist.Bytes()
	}
	if s.hash {
		h.Write(r.History)
		binary.Write(h, binary.BigEndian, s.trh)
		r.Hash = hex.EncodeToString(h.Sum(nil))
	}
	return r, nil
}

func (l label) String() string { return fmt.Sprintf("%s %s->%s %d %d", l.kind, l.from, l.to, l.a, l.b) }

type sim struct {
	cfg      Config
	sys      System
	now      time.Duration
	q        queue
	evs      []event // every event's slot, queued or free
	free     []int32 // slots done with, for reuse
	seq      uint64
	rng      *rand.Rand // the network and the nodes' timers
	tieSeed  uint64     // seeds the order of events due at the same time
	events   int
	ops      int
	msgs     int
	syncs    int
	trh      uint64 // hash of the trace
	hash     bool   // whether to keep trh
	trace    []string
	keep     bool
	rec      *history.Recorder
	names    []string
	nodes    map[string]*Host
	hosts    []*Host // the nodes in order: a send finds its peer here without hashing
	net      *network
	procs    int
	workload []OpSpec
	idcs     []*idClient
	// recycler is the system, if it reuses its requests; reclaimed are
	// the requests to hand back to it after the event under way.
	recycler  Recycler
	reclaimed []*Request
	lanes     []*lane // the deadlines' lanes (see deadline)
}

func newSim(cfg Config, sys System, hist io.Writer, keep, hash bool) *sim {
	s := &sim{cfg: cfg, sys: sys, trh: 0x736571, rng: rand.New(rand.NewPCG(uint64(cfg.Seed), 0x73696d)), keep: keep, hash: hash,
		nodes: map[string]*Host{}}
	s.q.evs = &s.evs
	s.recycler, _ = sys.(Recycler)
	s.tieSeed = rand.New(rand.NewPCG(uint64(cfg.Seed), 0x746965)).Uint64()
	s.rec = history.NewRecorder(hist, s.clock)
	s.net = &network{s: s, cut: map[[2]string]bool{}, hosts: map[string]LinkDelay{}}
	for i := range cfg.Nodes {
		s.names = append(s.names, fmt.Sprintf("n%d", i+1))
	}
	for _, name := range s.names {
		s.nodes[name] = newHost(s, name)
		s.hosts = append(s.hosts, s.nodes[name])
	}
	return s
}

// run runs the events due up to limit, in the order of their keys.
func (s *sim) run(limit time.Duration) {
	for {
		k, ok := s.q.next(limit)
		if !ok {
			break
		}
		// The event runs in its slot, which is freed after: what runs
		// may grow the slab, but then ev is the old copy, unchanged.
		ev := &s.evs[k.slot]
		h := ev.h
		if l, ok := h.(*lane); ok {
			l.woken(k.at)
			continue
		}
		s.now = k.at
		s.fire(ev)
		s.release(k.slot)
		if r, ok := h.(*Request); ok {
			r.pending--
			s.reclaim(r)
		}
		if len(s.reclaimed) > 0 {
			s.recycle()
		}
	}
}

// clock is the virtual time, which stamps the history's events.
func (s *sim) clock() time.Duration { return s.now }

// note adds an event to the trace: to its hash (over the time and the
// label's fields, no formatting) and, when kept, to its lines. A hunt
// does neither, so the check is all that runs.
func (s *sim) note(l *label) {
	if s.hash || s.keep {
		s.noted(l)
	}
}

func (s *sim) noted(l *label) {
	if s.hash {
		s.trh = hashLabel(s.trh, uint64(s.now), l)
	}
	if s.keep {
		s.trace = append(s.trace, fmt.Sprintf("%d %s", s.now, *l))
	}
}

// host is the node named name, or nil.
func (s *sim) host(name string) *Host {
	for _, h := range s.hosts {
		if h.name == name {
			return h
		}
	}
	return nil
}

func (s *sim) newProc() int {
	s.procs++
	return s.procs - 1
}

// start creates the clients and schedules the fault plan.
func (s *sim) start() {
	cfg := s.cfg
	var explicit [][]OpSpec
	if cfg.Ops != nil {
		explicit = make([][]OpSpec, cfg.Clients+cfg.IDClients)
		ops := append([]OpSpec(nil), cfg.Ops...)
		sort.SliceStable(ops, func(i, j int) bool { return ops[i].At < ops[j].At })
		for _, o := range ops {
			explicit[o.Client] = append(explicit[o.Client], o)
		}
	}
	every := time.Duration(float64(time.Second) / cfg.Rate)
	for i := range cfg.Clients + cfg.IDClients {
		w := &worker{s: s, index: i, every: every,
			rng: rand.New(rand.NewPCG(uint64(cfg.Seed), 0x776f726b<<16|uint64(i)))}
		if explicit != nil {
			w.plan, w.explicit = explicit[i], true
		}
		if i < cfg.Clients {
			w.c = &rangeClient{w: w, hostn: fmt.Sprintf("c%d", i+1), size: cfg.Sizes[i%len(cfg.Sizes)], proc: s.newProc()}
		} else {
			k := i - cfg.Clients
			c := newIDClient(s, w, fmt.Sprintf("k%d", k+1), cfg.Names[k%len(cfg.Names)])
			s.idcs = append(s.idcs, c)
			w.c = c
		}
		w.first()
	}
	cl := &cluster{s: s}
	for i, f := range cfg.Faults {
		fault, err := nemesis.Targeted(f.Name, f.Targets)
		if err != nil {
			continue // Validate refused it already
		}
		s.at(f.At, label{kind: "fault-start", from: f.Name, a: uint64(i)}, func() {
			cl.rng = rand.New(rand.NewPCG(f.Seed, uint64(i)))
			v, err := fault.Start(cl)
			s.nemesis("start-"+f.Name, v, err)
			s.at(f.For, label{kind: "fault-stop", from: f.Name, a: uint64(i)}, func() {
				v, err := fault.Stop(cl)
				s.nemesis("stop-"+f.Name, v, err)
			})
		})
	}
}

func (s *sim) nemesis(f string, v any, err error) {
	if err != nil {
		v = map[string]any{"value": v, "error": err.Error()}
	}
	s.rec.Nemesis(f, v)
}
