package sim

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/seqlab/seqlab/nemesis"
)

// System is a system under test as the simulator drives it: it starts the
// processes of its nodes. The simulator knows nothing else of it; a
// system's adapter lives with the system.
type System interface {
	// Start starts a process of node h: at the run's start (first), or
	// when the node restarts after a crash. disk is what the node's disk
	// held: what earlier processes passed to Host.Written, or, after a
	// power loss, only what they passed to Host.Durable (nil for none).
	Start(h *Host, disk any, first bool) Proc
	// ValidateName returns an error unless the system takes name as a
	// sequence name.
	ValidateName(name string) error
}

// Proc is one process of a node. The simulator calls it from its one
// goroutine, never after the process crashed, and holds its work while
// the node is paused.
type Proc interface {
	// NextRange is a client's call for n IDs of name; after is the end of
	// the client's last range (a hint, 0 for none). The process answers
	// with Host.Answer, or never.
	NextRange(c *Call, name string, n, after uint64)
	// Serve is a peer's request, answered with Request.Answer or
	// Request.Refuse.
	Serve(r *Request)
	// Replied is the answer to r, a request this process sent.
	Replied(r *Request)
	// Failed says r, a request this process sent, got no answer: nothing
	// listened, a reset or crash broke it, it timed out, or the peer
	// refused it.
	Failed(r *Request)
	// Crashed says the process dies now; it cancels its timers.
	Crashed()
}

// Label names an event in the trace: a kind, up to two hosts and two
// numbers. The trace's hash covers every label, so a system that labels
// its events well gets replays that say where two runs part.
type Label struct {
	Kind     string
	From, To string
	A, B     uint64
}

func (l Label) label() label { return label{kind: l.Kind, from: l.From, to: l.To, a: l.A, b: l.B} }

// Timer is a handle on a scheduled event, to cancel it.
type Timer = timer

// Call is a client's call of a node.
type Call = call

// Host is a simulated machine that runs one node: its process, its disk,
// and whether it is up, without power or paused.
type Host struct {
	s      *sim
	name   string
	epoch  int // bumped on crash: events of a dead process are dropped
	up     bool
	off    bool // down by power loss: silent, not refusing
	paused bool
	held   []func() // work that arrived while paused
	proc   Proc
	// written is what the process wrote to disk, durable what it synced.
	written, durable any
	// skews are what clock faults did to the node's clock (see Clock).
	skews []nemesis.Applied
	// faulted: a crash fault took the node down, and only the fault's
	// stop brings it back (not a Reboot's restart).
	faulted bool
}

func newHost(s *sim, name string) *Host {
	h := &Host{s: s, name: name, up: true}
	h.proc = s.sys.Start(h, nil, true)
	return h
}

// Name is the node's name.
func (h *Host) Name() string { return h.name }

// Nodes are every node's name, in order.
func (h *Host) Nodes() []string { return h.s.names }

// Now is the virtual time.
func (h *Host) Now() time.Duration { return h.s.now }

// Rand is the run's source for the nodes' timers: every draw from it is
// part of the run.
func (h *Host) Rand() *rand.Rand { return h.s.rng }

// OpTimeout is how long a client waits for an answer.
func (h *Host) OpTimeout() time.Duration { return h.s.cfg.OpTimeout }

// After schedules fn on this node's process after d: it is dropped if the
// process dies first, and held while the node is paused. The label's
// From is the node.
func (h *Host) After(d time.Duration, l Label, fn func()) Timer {
	l.From = h.name
	return h.s.schedule(&event{at: h.s.now + d, l: l.label(), fn: fn, owner: h, epoch: h.epoch})
}

// Timers is a Proc that takes timers as calls rather than closures
// (Host.Timer): a system that sets timers by the thousand saves
// allocating a closure for each.
type Timers interface {
	// Timer is a timer set with Host.Timer firing: its kind, and the A
	// and B of its label.
	Timer(kind uint8, a, b uint64)
}

// Timer is After without a closure: after d, the node's process, which
// must be a Timers, gets Timer(kind, l.A, l.B), unless it died first;
// while the node is paused it is held. The label's From is the node.
func (h *Host) Timer(d time.Duration, l Label, kind uint8) Timer {
	h.mustTime("Timer")
	return h.afterH(d, l.label(), h, kind)
}

// Deadline is Timer for a timeout: a timer that is likely to be
// cancelled before it fires. It behaves as Timer does in every way, and
// the run is the same with either; the simulator only keeps it more
// cheaply (no place in its heap until it is nearly due).
func (h *Host) Deadline(d time.Duration, l Label, kind uint8) Timer {
	h.mustTime("Deadline")
	return h.set(d, l.label(), h, kind, true)
}

// mustTime panics unless the node's process takes timers as calls.
func (h *Host) mustTime(method string) {
	if _, ok := h.proc.(Timers); !ok && h.proc != nil {
		panic(fmt.Sprintf("sim: %s: Host.%s from a process that is not a Timers", h.name, method))
	}
}

// handle fires a timer set with Timer, on the process that set it (the
// event is dropped if that process died).
func (h *Host) handle(kind uint8, a, b uint64) { h.proc.(Timers).Timer(kind, a, b) }

// afterH is After with a handler instead of a closure.
func (h *Host) afterH(d time.Duration, l label, hd handler, op uint8) timer {
	return h.set(d, l, hd, op, false)
}

// set sets a timer of the node's process: after d, hd.handle(op); a
// deadline (see Sim.deadline) when late.
func (h *Host) set(d time.Duration, l label, hd handler, op uint8, late bool) timer {
	l.from = h.name
	e := &event{at: h.s.now + d, l: l, h: hd, op: op, owner: h, epoch: h.epoch}
	if late {
		return h.s.deadline(e)
	}
	return h.s.schedule(e)
}

// Cancel cancels a timer that has not fired; it does nothing to one that
// fired or was cancelled.
func (h *Host) Cancel(t Timer) { h.s.cancel(t) }

// Note adds an event to the trace.
func (h *Host) Note(l Label) {
	ll := l.label()
	h.s.note(&ll)
}

// Written says the process wrote v to its disk: a kill keeps it, a power
// loss does not.
func (h *Host) Written(v any) { h.written = v }

// Durable says v is on the disk for good: a power loss keeps it.
func (h *Host) Durable(v any) {
	h.durable = v
	h.s.syncs++
}

// Answer sends a call's outcome back to its client: typ is history.Ok
// with [from, to), or history.Fail or history.Info with errText.
func (h *Host) Answer(c *Call, l Label, typ string, from, to uint64, errText string) {
	l.From, l.To = h.name, c.host
	if !c.answered {
		c.answered, c.ans = true, answer{typ: typ, from: from, to: to, node: h.name, errText: errText}
		h.s.net.sendH(l.label(), nil, c, callAnswer)
		return
	}
	h.s.net.send(l.label(), nil, func() { c.complete(h.s, typ, from, to, h.name, errText) })
}

// Request is one message of a node to a peer, from its sending to its
// answer or its failure: one allocation per message, where closures
// would take several.
type Request struct {
	// To is the peer. Kind, A and B label the message in the trace; the
	// answer's label is "reply" with A<<32|B and the number the peer
	// answers with.
	To   string
	Kind string
	A, B uint64
	// Msg is the system's message, Resp the peer's answer.
	Msg, Resp any
	// Refused: the peer turned the message down (Request.Refuse).
	Refused bool
	// Why, when the request failed, says how: "timeout", "connection
	// refused", "connection reset" or "refused by the peer".
	Why string

	n, peer *Host
	epoch   int // the sender's process
	self    bool
	key     rpcKey
	timeout timer
	replyB  uint64
	// What still refers to the request, for Recycler: the queued events
	// and held work that name it, the Serve calls not yet answered or
	// refused, and whether the sender has heard (Replied or Failed).
	pending, serving int32
	heard            bool
	// recycled: handed back to the system, which has not reused it yet.
	recycled bool
}

// Recycler is a System that reuses its requests. The simulator hands a
// request back once nothing will use it again: its sender has heard,
// every Serve of it was answered or refused, and no event names it. A
// request whose peer died while serving it is never handed back (the GC
// takes it). The system may then reuse it for a later Send, setting every
// field (a new Request value), until when the simulator panics if it is
// used.
type Recycler interface {
	Recycle(r *Request)
}

// From is the sender.
func (r *Request) From() string { return r.n.name }

// Send sends r from this node and handles its answer or its timeout: a
// message to the node itself is served at once; one to a node where
// nothing listens is refused after a round trip, as on TCP.
func (h *Host) Send(r *Request, timeout time.Duration) {
	r.n, r.epoch = h, h.epoch
	if r.To == h.name {
		r.self = true
		r.serve(h.proc)
		return
	}
	peer := h.s.host(r.To)
	if peer == nil {
		panic(fmt.Sprintf("sim: %s sends to unknown node %q", h.name, r.To))
	}
	if !peer.up && !peer.off && !h.s.net.isCut(h.name, r.To) {
		rtt := h.s.net.delay(h.name, r.To) + h.s.net.delay(r.To, h.name)
		h.afterH(rtt, label{kind: "refused", to: r.To, a: r.A, b: r.B}, r, reqRefused)
		return
	}
	r.peer = peer
	r.key = h.s.net.open(h.name, r.To, r)
	r.timeout = h.set(timeout, label{kind: "peer-timeout", to: r.To, a: r.A, b: r.B}, r, reqTimeout, true)
	h.s.net.sendH(label{kind: r.Kind, from: h.name, to: r.To, a: r.A, b: r.B}, peer, r, reqArrive)
}

// The steps of a Request.
const (
	reqArrive  uint8 = iota // the message reaches the peer
	reqReply                // the answer reaches the sender
	reqTimeout              // the sender stops waiting
	reqRefused              // nothing listens at the peer
)

func (r *Request) handle(op uint8, _, _ uint64) {
	r.live()
	s := r.n.s
	switch op {
	case reqArrive:
		r.serve(r.peer.proc)
	case reqReply:
		if s.net.close(r.key) {
			s.cancel(r.timeout)
			r.deliver()
		}
	case reqTimeout:
		if s.net.close(r.key) {
			r.fail("timeout")
		}
	case reqRefused:
		r.fail("connection refused")
	}
}

// live panics on a request handed back to its system (Recycler): a bug
// of the simulator's counts, which must not pass unseen.
func (r *Request) live() {
	if r.recycled {
		panic(fmt.Sprintf("sim: %s request %s->%s used after it was recycled", r.Kind, r.n.name, r.To))
	}
}

// serve gives the request to the peer's process p.
func (r *Request) serve(p Proc) {
	r.serving++
	p.Serve(r)
}

// fail tells the sender that the request failed, and why.
func (r *Request) fail(why string) {
	r.Why = why
	r.heard = true
	r.n.proc.Failed(r)
	r.n.s.reclaim(r)
}

// reclaim queues r to go back to its system once nothing refers to it;
// the run hands it back between events, when no code is using it.
func (s *sim) reclaim(r *Request) {
	if s.recycler != nil && r.heard && r.pending == 0 && r.serving == 0 && !r.recycled {
		r.recycled = true
		s.reclaimed = append(s.reclaimed, r)
	}
}

// recycle hands the requests queued by reclaim back to the system.
func (s *sim) recycle() {
	for i, r := range s.reclaimed {
		s.recycler.Recycle(r)
		s.reclaimed[i] = nil
	}
	s.reclaimed = s.reclaimed[:0]
}

// Answer is the peer's answer, with Resp set: sent back, or, to the node
// itself, given at once. b is the answer's number in the trace.
func (r *Request) Answer(b uint64) {
	r.replyB = b
	r.answer()
}

// Refuse turns the message down: the sender hears of a failure.
func (r *Request) Refuse() {
	r.Refused = true
	r.replyB = 0
	r.answer()
}

func (r *Request) answer() {
	r.live()
	r.serving--
	if r.self {
		r.deliver()
		return
	}
	r.n.s.net.sendH(label{kind: "reply", from: r.To, to: r.n.name, a: r.A<<32 | r.B, b: r.replyB}, r.n, r, reqReply)
	r.n.s.reclaim(r)
}

func (r *Request) deliver() {
	if r.Refused {
		r.fail("refused by the peer")
		return
	}
	r.heard = true
	r.n.proc.Replied(r)
	r.n.s.reclaim(r)
}

// broken: a reset or crash broke the connection; the sender hears at once
// if its process lives.
func (r *Request) broken() {
	n := r.n
	if n.epoch != r.epoch || !n.up {
		return
	}
	r.live()
	n.s.cancel(r.timeout)
	if n.paused {
		r.Why = "connection reset"
		n.held = append(n.held, func() { r.fail("connection reset") })
		return
	}
	r.fail("connection reset")
}

// Reboot ends the process as a panic would, just after the work under
// way, and its supervisor starts a new one after d: the kernel resets the
// connections, the disk keeps what was written. It is for a system's
// seed-fired sites; a crash fault that takes the node down meanwhile
// keeps it down until the fault stops.
func (h *Host) Reboot(d time.Duration) {
	s := h.s
	epoch := h.epoch
	s.at(0, label{kind: "reboot", from: h.name, a: uint64(d)}, func() {
		if h.epoch != epoch || !h.up {
			return
		}
		h.crash(false)
		s.at(d, label{kind: "reboot-start", from: h.name}, func() {
			if !h.faulted {
				h.restart()
			}
		})
	})
}

// crash kills the process. Its kernel resets its connections at once; on
// power loss there is no kernel: peers hear nothing until their timeouts,
// and the disk keeps only what was synced.
func (h *Host) crash(powerLoss bool) {
	if !h.up {
		return
	}
	h.up = false
	h.epoch++
	h.paused = false
	h.proc.Crashed()
	if powerLoss {
		h.written = h.durable
		h.off = true
		return
	}
	h.s.net.crash(h.name)
}

func (h *Host) restart() {
	if h.up {
		return
	}
	if h.off {
		// Back from a power loss: the machine resets the connections it
		// forgot.
		h.s.net.crash(h.name)
		h.off = false
	}
	h.up = true
	h.held = nil
	h.proc = h.s.sys.Start(h, h.written, false)
}

// cluster lets nemesis faults act on the simulation.
type cluster struct {
	s   *sim
	rng *rand.Rand
}

var _ nemesis.Cluster = (*cluster)(nil)

func (c *cluster) Nodes() []string      { return append([]string(nil), c.s.names...) }
func (c *cluster) Net() nemesis.Network { return c.s.net }
func (c *cluster) Rand() *rand.Rand     { return c.rng }
func (c *cluster) DefaultLink() nemesis.Link {
	return nemesis.Link{Latency: c.s.cfg.Latency, Jitter: c.s.cfg.Jitter}
}

// Clients are the buffering ID clients, each always alive: a crashed one
// is replaced at once.
func (c *cluster) Clients() []string {
	out := make([]string, len(c.s.idcs))
	for i, k := range c.s.idcs {
		out[i] = k.hostn
	}
	return out
}

func (c *cluster) CrashClient(name string) error {
	for _, k := range c.s.idcs {
		if k.hostn == name {
			k.crash()
			return nil
		}
	}
	return fmt.Errorf("no client %q", name)
}

func (c *cluster) Crash(name string, powerLoss, torn bool) error {
	n := c.s.nodes[name]
	if n == nil {
		return fmt.Errorf("no node %q", name)
	}
	n.faulted = true
	n.crash(powerLoss || torn)
	return nil
}

func (c *cluster) Restart(name string) error {
	n := c.s.nodes[name]
	if n == nil {
		return fmt.Errorf("no node %q", name)
	}
	n.faulted = false
	n.restart()
	return nil
}
