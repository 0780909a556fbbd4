package flakesim

import (
	"math/rand/v2"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/checker/history"
	"github.com/seqlab/seqlab/flake_seq"
	"github.com/seqlab/seqlab/seq"
	"github.com/seqlab/seqlab/simnet/sim"
)

// Config is flake_seq's side of a simulated run: the high-water mark's
// reservation, the disk, how long a call waits for the clock, and the
// planted bug. Its JSON fields sit under "flake" in a run's plan.
type Config struct {
	// Reserve and RenewAhead are the cores' (flake_seq.Config): how far
	// ahead a node reserves timestamps on disk, and how close to the mark
	// it renews. Defaults 1s and Reserve/2.
	Reserve    time.Duration `json:"reserve_ns"`
	RenewAhead time.Duration `json:"renew_ahead_ns"`
	// SyncDelay is one fsync of the mark. Default 1ms.
	SyncDelay time.Duration `json:"sync_delay_ns"`
	// MaxWait is how long a call waits for the node's clock to move on,
	// or for a renewal to be durable, before the node refuses it (a
	// fail). Default 20ms.
	MaxWait time.Duration `json:"max_wait_ns"`
	// ClockRollback is the planted bug flake-clock-rollback
	// (flake_seq.Planted): nodes keep no high-water mark.
	ClockRollback bool `json:"clock_rollback,omitempty"`
}

// WithDefaults fills unset fields, for a cluster of nodes nodes.
func (c Config) WithDefaults(nodes int) Config {
	core := c.core(0).WithDefaults()
	c.Reserve, c.RenewAhead = core.Reserve, core.RenewAhead
	if c.SyncDelay == 0 {
		c.SyncDelay = time.Millisecond
	}
	if c.MaxWait == 0 {
		c.MaxWait = 20 * time.Millisecond
	}
	return c
}

// Validate reports a configuration that cannot run on nodes nodes.
func (c Config) Validate(nodes int) error {
	if nodes < 1 || nodes-1 > flake_seq.MaxNodeID {
		return errors.Errorf("flakesim: %d nodes (want 1..%d)", nodes, flake_seq.MaxNodeID+1)
	}
	if c.SyncDelay < 0 || c.MaxWait < 0 {
		return errors.New("flakesim: negative sync delay or wait")
	}
	return errors.Wrap(c.core(nodes-1).Validate(), "flakesim")
}

func (c Config) core(nodeID int) flake_seq.Config {
	return flake_seq.Config{NodeID: nodeID, Reserve: c.Reserve, RenewAhead: c.RenewAhead,
		Planted: flake_seq.Planted{ClockRollback: c.ClockRollback}}
}

// System is flake_seq as the simulator runs it.
type System struct{ cfg Config }

var _ sim.System = (*System)(nil)

// New returns flake_seq with cfg (defaults filled) for a cluster of nodes.
func New(cfg Config, nodes int) (*System, error) {
	cfg = cfg.WithDefaults(nodes)
	if err := cfg.Validate(nodes); err != nil {
		return nil, err
	}
	return &System{cfg: cfg}, nil
}

// Config returns the system's configuration, defaults filled.
func (s *System) Config() Config { return s.cfg }

// ValidateName implements sim.System.
func (s *System) ValidateName(name string) error { return flake_seq.ValidateName(name) }

// Start implements sim.System. A node's ID is its index among the nodes;
// its disk holds its high-water mark (an int64), and it reserves one
// before it hands out anything.
func (s *System) Start(h *sim.Host, disk any, first bool) sim.Proc {
	id := 0
	for i, name := range h.Nodes() {
		if name == h.Name() {
			id = i
		}
	}
	var mark int64
	if disk != nil {
		mark = disk.(int64)
	}
	core, err := flake_seq.NewCore(s.cfg.core(id), mark)
	if err != nil {
		panic(err) // Validate checked the configuration, and marks come from cores
	}
	n := &node{h: h, cfg: s.cfg, core: core}
	n.h.Note(sim.Label{Kind: "flake-start", A: uint64(mark)})
	n.renew()
	return n
}

// node is one process of a flake node: the core, its calls waiting for
// the clock or a renewal, and the fsync of its mark.
type node struct {
	h       *sim.Host
	cfg     Config
	core    *flake_seq.Core
	waiting []*waiter
	poll    sim.Timer
	polling bool
}

// waiter is a call that waits until its deadline (virtual time).
type waiter struct {
	c        *sim.Call
	name     string
	n        uint64
	deadline time.Duration
	err      error
}

// NextRange implements sim.Proc. The hint is of no use to a node that
// coordinates with no one.
func (p *node) NextRange(c *sim.Call, name string, n, after uint64) {
	w := &waiter{c: c, name: name, n: n, deadline: p.h.Now() + p.cfg.MaxWait}
	if !p.try(w) {
		p.waiting = append(p.waiting, w)
		p.schedulePoll()
	}
	p.renew()
}

// try serves w if the core can; it reports whether w is done.
func (p *node) try(w *waiter) bool {
	clock := p.h.Clock()
	r, err := p.core.NextRange(clock, w.name, w.n)
	switch {
	case err == nil:
		kind := "range"
		if ts, _, _ := flake_seq.Unpack(r.From); clock < time.Duration(ts)*time.Millisecond {
			kind = "range-kept" // the clock is behind: the last timestamp, kept
		}
		p.h.Answer(w.c, sim.Label{Kind: kind, A: uint64(r.From), B: uint64(r.To)}, history.Ok, uint64(r.From), uint64(r.To), "")
		return true
	case errors.Is(err, seq.ErrInvalidArgument) || errors.Is(err, seq.ErrOverflow):
		p.h.Answer(w.c, sim.Label{Kind: "fail"}, history.Fail, 0, 0, err.Error())
		return true
	case p.h.Now() >= w.deadline:
		p.h.Answer(w.c, sim.Label{Kind: "unavailable"}, history.Fail, 0, 0, "unavailable: "+err.Error())
		return true
	}
	w.err = err
	return false
}

// schedulePoll retries the waiting calls in a millisecond, the clock's
// grain.
func (p *node) schedulePoll() {
	if p.polling {
		return
	}
	p.polling = true
	p.poll = p.h.After(time.Millisecond, sim.Label{Kind: "flake-poll", A: uint64(len(p.waiting))}, func() {
		p.polling = false
		p.retry()
	})
}

// retry tries the waiting calls in the order they came.
func (p *node) retry() {
	left := p.waiting[:0]
	for _, w := range p.waiting {
		if !p.try(w) {
			left = append(left, w)
		}
	}
	clear(p.waiting[len(left):])
	p.waiting = left
	if len(p.waiting) > 0 {
		p.schedulePoll()
	}
	p.renew()
}

// renew persists the high-water mark the core asks for: written at once,
// durable after an fsync, and only then the core's to use.
func (p *node) renew() {
	mark, ok := p.core.Renewal(p.h.Clock())
	if !ok {
		return
	}
	p.h.Written(mark)
	p.h.After(p.cfg.SyncDelay, sim.Label{Kind: "fsync-mark", A: uint64(mark)}, func() {
		p.h.Durable(mark)
		p.core.Persisted(mark)
		p.retry()
	})
}

// Serve implements sim.Proc: flake nodes have no peers.
func (p *node) Serve(r *sim.Request) { r.Refuse() }

// Replied implements sim.Proc.
func (p *node) Replied(r *sim.Request) {}

// Failed implements sim.Proc.
func (p *node) Failed(r *sim.Request) {}

// Crashed implements sim.Proc: the waiting calls get no answer.
func (p *node) Crashed() {
	p.h.Cancel(p.poll)
	p.waiting = nil
}

// RollbackSchedule is a schedule (one fault at a time, as a scenario
// draws them) that catches the planted bug flake-clock-rollback: a clock
// offset (500ms ahead or behind, for 200ms) and then, 100 to 150ms after
// it ends, every node crashes for 200ms, in turn. A clock that was ahead
// leaves its node with timestamps ahead of the clock when it steps back;
// the crash comes, and the restart, before the clock has caught up. The
// real system keeps its promises under it.
var RollbackSchedule = sim.Schedule{Faults: []string{"clock-offset", "crash-all"}, InTurn: true,
	Interval: 100 * time.Millisecond, Duration: 200 * time.Millisecond, Jitter: 50 * time.Millisecond}

// RollbackPlan is a fault plan that catches the planted bug
// flake-clock-rollback, up to until: from 1s on, every 3.5s, one random
// node's clock steps back (clock-step-back: 2s, for 2.5s), and half a
// second into it every node crashes for half a second (crash-all), so that
// the stepped node restarts with its clock behind timestamps it used. The
// two faults overlap, which a Schedule (one fault at a time) cannot
// draw. The real system keeps its promises under it.
func RollbackPlan(seed int64, until time.Duration) []sim.FaultSpec {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x726f6c6c))
	var out []sim.FaultSpec
	for at := time.Second; at+time.Second < until; at += 3500 * time.Millisecond {
		out = append(out,
			sim.FaultSpec{Name: "clock-step-back", At: at, For: min(2500*time.Millisecond, until-at), Seed: rng.Uint64()},
			sim.FaultSpec{Name: "crash-all", At: at + 500*time.Millisecond, For: 500 * time.Millisecond, Seed: rng.Uint64()})
	}
	return out
}
