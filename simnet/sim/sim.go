package sim

import (
	"bytes"
	"container/heap"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"math/rand/v2"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/checker/history"
	"github.com/seqlab/seqlab/nemesis"
	"github.com/seqlab/seqlab/rr_seq"
)

// Config is one simulated run: the cluster, the workload and the fault
// plan. Together with Seed it fixes the run bit for bit.
type Config struct {
	Seed int64 `json:"seed"`

	Nodes         int              `json:"nodes"`
	R             int              `json:"r"` // 0: majority
	W             int              `json:"w"` // 0: majority
	WriteRule     rr_seq.WriteRule `json:"write_rule"`
	Persist       bool             `json:"persist"`         // state on a simulated disk
	AckBeforeSync bool             `json:"ack_before_sync"` // the planted bug
	Latency       time.Duration    `json:"latency_ns"`
	Jitter        time.Duration    `json:"jitter_ns"`
	SyncDelay     time.Duration    `json:"sync_delay_ns"` // one fsync
	PeerTimeout   time.Duration    `json:"peer_timeout_ns"`
	HedgeAfter    time.Duration    `json:"hedge_after_ns"`
	MaxBackoff    time.Duration    `json:"max_backoff_ns"`
	// Dup is the share of messages delivered twice.
	Dup float64 `json:"dup"`

	// Clients call NextRange on a random node at Rate per second each,
	// with range sizes from Sizes in turn; an operation with no answer
	// after OpTimeout is info and its process is replaced.
	Clients   int           `json:"clients"`
	Sizes     []uint64      `json:"sizes"`
	Rate      float64       `json:"rate"`
	OpTimeout time.Duration `json:"op_timeout_ns"`
	Names     []string      `json:"names"`

	TimeLimit time.Duration `json:"time_limit_ns"`
	// Faults is the plan: each a registered nemesis fault, started and
	// stopped at fixed virtual times, its targets drawn from its own seed.
	Faults []FaultSpec `json:"faults"`
}

// FaultSpec is one fault of the plan.
type FaultSpec struct {
	Name string        `json:"name"`
	At   time.Duration `json:"at_ns"`
	For  time.Duration `json:"for_ns"`
	Seed uint64        `json:"seed"`
}

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.Nodes == 0 {
		c.Nodes = 3
	}
	if c.R == 0 {
		c.R = c.Nodes/2 + 1
	}
	if c.W == 0 {
		c.W = c.Nodes/2 + 1
	}
	if c.Latency == 0 {
		c.Latency = time.Millisecond
	}
	if c.SyncDelay == 0 {
		c.SyncDelay = time.Millisecond
	}
	if c.PeerTimeout == 0 {
		c.PeerTimeout = 250 * time.Millisecond
	}
	if c.HedgeAfter == 0 {
		c.HedgeAfter = 5 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 100 * time.Millisecond
	}
	if c.Clients == 0 {
		c.Clients = 5
	}
	if len(c.Sizes) == 0 {
		c.Sizes = []uint64{1, 3, 10}
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

// Validate reports a configuration that cannot run.
func (c Config) Validate() error {
	if c.Nodes < 1 || c.Nodes > 9 {
		return errors.Errorf("sim: %d nodes (want 1..9)", c.Nodes)
	}
	if c.R < 1 || c.R > c.Nodes || c.W < 1 || c.W > c.Nodes {
		return errors.Errorf("sim: quorums R=%d W=%d outside 1..%d", c.R, c.W, c.Nodes)
	}
	if c.Clients < 0 || c.Clients > 200 || c.Rate <= 0 || c.OpTimeout <= 0 || c.TimeLimit <= 0 || c.TimeLimit > time.Hour {
		return errors.New("sim: bad workload (clients 0..200, positive rate, timeout and time limit up to 1h)")
	}
	if c.Latency < 0 || c.Jitter < 0 || c.Dup < 0 || c.Dup > 1 {
		return errors.New("sim: bad network (negative delay, or dup outside 0..1)")
	}
	for _, n := range c.Sizes {
		if n == 0 {
			return errors.New("sim: range size 0")
		}
	}
	for _, f := range c.Faults {
		if _, err := nemesis.Lookup(f.Name); err != nil {
			return err
		}
		if f.At < 0 || f.For < 0 {
			return errors.Errorf("sim: fault %s at negative time", f.Name)
		}
	}
	return nil
}

// Plan draws a fault plan like nemesis.Schedule does: after a quiet
// interval (plus seeded jitter) a fault picked at random from names stays
// on for dur; nothing starts after until.
func Plan(seed int64, names []string, interval, dur, jitter, until time.Duration) []FaultSpec {
	if len(names) == 0 || interval <= 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x706c616e))
	var out []FaultSpec
	at := time.Duration(0)
	for {
		at += interval
		if jitter > 0 {
			at += time.Duration(rng.Int64N(int64(jitter) + 1))
		}
		if at >= until {
			return out
		}
		f := FaultSpec{Name: names[rng.IntN(len(names))], At: at, For: min(dur, until-at), Seed: rng.Uint64()}
		out = append(out, f)
		at += f.For
	}
}

// Result is what a run produced.
type Result struct {
	// Hash is a SHA-256 over the trace: every event with its virtual time,
	// and every line of the history.
	Hash    string
	History []byte
	Events  int // simulator events processed
	SimTime time.Duration
	Ops     int // client completions
	// Trace holds the trace's lines when Run was asked to keep them.
	Trace []string
}

// Run plays cfg to the end. It reads no clock, starts no goroutine and
// draws every random number from cfg.Seed, so the same cfg gives the same
// Result. keepTrace keeps every trace line (to find where two runs part).
func Run(cfg Config, keepTrace bool) (*Result, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := newSim(cfg, keepTrace)
	s.start()
	for s.q.Len() > 0 {
		e := heap.Pop(&s.q).(*event)
		if e.at > cfg.TimeLimit {
			break
		}
		s.now = e.at
		s.events++
		s.note(e.l)
		fn := e.fn
		*e = event{}
		s.free = append(s.free, e)
		fn()
	}
	s.now = cfg.TimeLimit
	if err := s.rec.Err(); err != nil {
		return nil, err
	}
	s.hash.Write(s.hist.Bytes())
	binary.Write(s.hash, binary.BigEndian, s.trh)
	return &Result{Hash: hex.EncodeToString(s.hash.Sum(nil)), History: s.hist.Bytes(), Events: s.events,
		SimTime: s.now, Ops: s.ops, Trace: s.trace}, nil
}

// label names an event for the trace without formatting anything: a
// kind, up to two hosts and two numbers.
type label struct {
	kind     string
	from, to string
	a, b     uint64
}

func (l label) String() string { return fmt.Sprintf("%s %s->%s %d %d", l.kind, l.from, l.to, l.a, l.b) }

// event is one entry of the queue.
type event struct {
	at  time.Duration
	tie uint64 // seeded: orders events due at the same time
	seq uint64
	l   label
	fn  func()
}

type queue []*event

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	if q[i].tie != q[j].tie {
		return q[i].tie < q[j].tie
	}
	return q[i].seq < q[j].seq
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *queue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}

type sim struct {
	cfg    Config
	now    time.Duration
	q      queue
	free   []*event // events done with, for reuse
	seq    uint64
	rng    *rand.Rand
	events int
	ops    int
	hash   hash.Hash
	trh    uint64 // FNV-1a of the trace
	trace  []string
	keep   bool
	hist   bytes.Buffer
	rec    *history.Recorder
	names  []string
	nodes  map[string]*node
	net    *network
	procs  int
}

func newSim(cfg Config, keep bool) *sim {
	s := &sim{cfg: cfg, trh: 14695981039346656037, rng: rand.New(rand.NewPCG(uint64(cfg.Seed), 0x73696d)), hash: sha256.New(), keep: keep,
		nodes: map[string]*node{}}
	// Two lines of about 150 bytes per expected operation.
	s.hist.Grow(int(min(float64(cfg.Clients)*cfg.Rate*cfg.TimeLimit.Seconds()*300, 1<<28)))
	s.rec = history.NewRecorder(&s.hist, func() time.Duration { return s.now })
	s.net = &network{s: s, cut: map[[2]string]bool{}, hosts: map[string]LinkDelay{}, inflight: map[rpcKey]*rpc{}}
	for i := range cfg.Nodes {
		name := fmt.Sprintf("n%d", i+1)
		s.names = append(s.names, name)
	}
	for _, name := range s.names {
		s.nodes[name] = newNode(s, name)
	}
	return s
}

// at schedules fn after d.
func (s *sim) at(d time.Duration, l label, fn func()) {
	s.seq++
	var e *event
	if k := len(s.free); k > 0 {
		e, s.free = s.free[k-1], s.free[:k-1]
	} else {
		e = new(event)
	}
	*e = event{at: s.now + d, tie: s.rng.Uint64(), seq: s.seq, l: l, fn: fn}
	heap.Push(&s.q, e)
}

// note adds an event to the trace: to its hash (FNV-1a over the time and
// the label's fields, no formatting) and, when kept, to its lines.
func (s *sim) note(l label) {
	h := s.trh
	mix := func(x uint64) {
		for range 8 {
			h ^= x & 0xff
			h *= 1099511628211
			x >>= 8
		}
	}
	str := func(x string) {
		for i := 0; i < len(x); i++ {
			h ^= uint64(x[i])
			h *= 1099511628211
		}
		h ^= 0xff
		h *= 1099511628211
	}
	mix(uint64(s.now))
	str(l.kind)
	str(l.from)
	str(l.to)
	mix(l.a)
	mix(l.b)
	s.trh = h
	if s.keep {
		s.trace = append(s.trace, fmt.Sprintf("%d %s", s.now, l))
	}
}

func (s *sim) newProc() int {
	s.procs++
	return s.procs - 1
}

func (s *sim) start() {
	for i := range s.cfg.Clients {
		c := &client{s: s, host: fmt.Sprintf("c%d", i+1), size: s.cfg.Sizes[i%len(s.cfg.Sizes)], proc: s.newProc()}
		every := time.Duration(float64(time.Second) / s.cfg.Rate)
		c.every = every
		s.at(time.Duration(s.rng.Int64N(int64(every)+1)), label{kind: "first", from: c.host}, c.invoke)
	}
	cl := &cluster{s: s}
	for i, f := range s.cfg.Faults {
		fault, err := nemesis.Lookup(f.Name)
		if err != nil {
			continue // Validate refused it already
		}
		f := f
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
