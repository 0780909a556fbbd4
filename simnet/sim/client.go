package sim

import (
	"math/rand/v2"
	"time"

	"github.com/seqlab/seqlab/checker/history"
	"github.com/seqlab/seqlab/seq"
)

// worker paces one client: it invokes the client's operations one at a
// time, either drawn from its own seeded source at the configured rate or
// taken from an explicit workload. Each worker has a source of its own, so
// that spelling a run's workload out (Config.Ops) leaves every other
// random draw of the run where it was.
type worker struct {
	s        *sim
	index    int
	every    time.Duration
	rng      *rand.Rand
	explicit bool
	plan     []OpSpec
	c        clientKind
}

// clientKind is what a worker drives: it starts one operation and calls
// worker.done once that operation has ended.
type clientKind interface {
	host() string
	invoke(o OpSpec)
}

// first schedules the worker's first operation.
func (w *worker) first() {
	l := label{kind: "first", from: w.c.host()}
	if w.explicit {
		if len(w.plan) > 0 {
			w.s.atH(w.plan[0].At, l, w, 0)
		}
		return
	}
	w.s.atH(time.Duration(w.rng.Int64N(int64(w.every)+1)), l, w, 0)
}

// next invokes the worker's next operation.
func (w *worker) next() {
	s := w.s
	var o OpSpec
	if w.explicit {
		o, w.plan = w.plan[0], w.plan[1:]
	} else if w.index < s.cfg.Clients {
		o.Name = s.cfg.Names[w.rng.IntN(len(s.cfg.Names))]
		o.Node = w.rng.IntN(len(s.names))
	}
	o.Client, o.At = w.index, s.now
	s.workload = append(s.workload, o)
	w.c.invoke(o)
}

// done schedules the operation after the one that just ended.
func (w *worker) done() {
	s := w.s
	l := label{kind: "next", from: w.c.host()}
	if w.explicit {
		if len(w.plan) > 0 {
			s.atH(max(0, w.plan[0].At-s.now), l, w, 0)
		}
		return
	}
	s.atH(w.every/2+time.Duration(w.rng.Int64N(int64(w.every)+1)), l, w, 0)
}

// handle runs the worker's next operation: a worker is its own event
// handler, so that scheduling it allocates nothing.
func (w *worker) handle(uint8, uint64, uint64) { w.next() }

// call is one request from a client to a node: a NextRange of a range
// client, or a fetch of an ID client. It ends once, with the first of its
// answer, its timeout or a broken connection.
type call struct {
	s     *sim
	host  string
	node  string // the node asked
	done  bool
	timer timer
	rpc   rpcKey
	fin   finisher
	// What the call asks of the node it reaches: NextRange(name, n,
	// after) of target's process at the time it arrives.
	target   *Host
	name     string
	n, after uint64
	// ans is the node's first answer (answered: there is one), which the
	// answer's message carries; a later one (a duplicated call answered
	// twice) goes in a closure of its own.
	answered bool
	ans      answer
}

// answer is a node's answer to a call.
type answer struct {
	typ           string
	from, to      uint64
	node, errText string
}

// finisher is told how its call ended.
type finisher interface {
	finish(typ string, from, to uint64, node, errText string)
}

// The steps of a call, run by call.handle.
const (
	callArrive  uint8 = iota // the call reaches the node
	callTimeout              // the client stops waiting
	callRefused              // nothing listens at the node
	callAnswer               // the node's first answer reaches the client
)

func (c *call) handle(op uint8, _, _ uint64) {
	s := c.s
	switch op {
	case callArrive:
		c.target.proc.NextRange(c, c.name, c.n, c.after)
	case callTimeout:
		c.complete(s, history.Info, 0, 0, c.target.name, "deadline exceeded")
	case callRefused:
		c.complete(s, history.Info, 0, 0, c.target.name, "unavailable: connection refused")
	case callAnswer:
		a := &c.ans
		c.complete(s, a.typ, a.from, a.to, a.node, a.errText)
	}
}

// complete ends the call with an outcome, unless it has ended already.
func (c *call) complete(s *sim, typ string, from, to uint64, node, errText string) {
	if c.abort(s) {
		c.fin.finish(typ, from, to, node, errText)
	}
}

// abort ends the call without an outcome; false if it had ended already.
func (c *call) abort(s *sim) bool {
	if c.done {
		return false
	}
	c.done = true
	s.cancel(c.timer)
	s.net.close(c.rpc)
	return true
}

// send carries the call, NextRange(name, n, after), to target and starts
// its timeout. A node where nothing listens refuses it after a round
// trip; a crash or reset breaks it at once; otherwise (a node without
// power included) the node's answer or the timeout ends it.
func (c *call) send(s *sim, target *Host, l label, timeout time.Duration, name string, n, after uint64) {
	c.s, c.target, c.name, c.n, c.after = s, target, name, n, after
	c.timer = s.deadlineH(timeout, label{kind: "client-timeout", from: c.host, to: target.name, a: l.a}, c, callTimeout)
	if !target.up && !target.off && !s.net.isCut(c.host, target.name) && !s.net.isCut(target.name, c.host) {
		rtt := s.net.delay(c.host, target.name) + s.net.delay(target.name, c.host)
		s.atH(rtt, label{kind: "refused", from: c.host, to: target.name, a: l.a}, c, callRefused)
		return
	}
	c.node = target.name
	c.rpc = s.net.open(c.host, target.name, c)
	s.net.sendH(l, target, c, callArrive)
}

// broken: a reset or crash broke the connection, and the client sees the
// error at once.
func (c *call) broken() {
	c.complete(c.s, history.Info, 0, 0, c.node, "unavailable: connection reset")
}

// rangeClient calls NextRange on the nodes directly and records the
// ranges it gets.
type rangeClient struct {
	w     *worker
	name  string
	size  uint64
	proc  int
	hostn string
	after map[string]uint64 // per name, the end of the last range: the hint
}

func (c *rangeClient) host() string { return c.hostn }

func (c *rangeClient) invoke(o OpSpec) {
	s := c.w.s
	target := s.hosts[o.Node]
	op := &rangeOp{c: c, proc: c.proc, v: history.RangeValue{Name: o.Name, N: c.size}}
	op.call.host, op.call.fin = c.hostn, op
	s.rec.Invoke(op.proc, history.NextRange, &op.v)
	op.call.send(s, target, label{kind: "next-range", from: c.hostn, to: target.name, a: uint64(op.proc), b: c.size},
		s.cfg.OpTimeout, o.Name, c.size, c.after[o.Name])
}

// rangeOp is one NextRange of a range client: its call and what its
// outcome records, in one allocation.
type rangeOp struct {
	call
	c    *rangeClient
	proc int
	v    history.RangeValue
}

func (op *rangeOp) finish(typ string, from, to uint64, node, errText string) {
	c, s, v := op.c, op.c.w.s, &op.v
	s.ops++
	switch typ {
	case history.Ok:
		v.From, v.To = from, to
		s.rec.Ok(op.proc, history.NextRange, v, node, "")
		if c.after == nil {
			c.after = map[string]uint64{}
		}
		c.after[v.Name] = max(c.after[v.Name], to)
	case history.Fail:
		s.rec.Fail(op.proc, history.NextRange, v, node, errText)
	default:
		s.rec.Info(op.proc, history.NextRange, v, node, errText)
		c.proc = s.newProc() // a process never invokes after an info
	}
	c.w.done()
}

// idClient is a buffering client's logic (seq.Buffer, as rr_seq.Client
// uses it): it hands out IDs from a buffer it fills with ranges fetched
// one at a time from one node, moving to the next node when a fetch
// fails, each fetch carrying the end of the last range as a hint. A crash
// (the client-crash fault) loses the buffer; a fresh client takes its
// place at once, as the lab's gRPC workload does.
type idClient struct {
	s      *sim
	w      *worker
	hostn  string
	name   string
	rng    *rand.Rand // the start node of each generation
	gen    int
	proc   int // the process doing next-id
	buf    *seq.Buffer
	nextN  int    // the node to fetch from: the next one after a failure
	after  uint64 // the end of the last range fetched: the hint
	busy   bool
	fetch  *call // the fetch in flight
	fproc  int   // the fetch process; -1 after an info retired it
	fnode  string
	waiter *idOp // a next-id waiting for the buffer
}

// idOp is one next-id operation waiting for an ID.
type idOp struct {
	proc  int
	timer timer
}

// fetchPause is how long the client waits after a failed fetch before the
// next, as rr_seq.Client does.
const fetchPause = 10 * time.Millisecond

func newIDClient(s *sim, w *worker, host, name string) *idClient {
	c := &idClient{s: s, w: w, hostn: host, name: name,
		rng: rand.New(rand.NewPCG(uint64(s.cfg.Seed), 0x67656e<<16|uint64(w.index)))}
	c.reset()
	return c
}

// reset makes a fresh client: new process, empty buffer, a random start
// node.
func (c *idClient) reset() {
	c.gen++
	c.proc = c.s.newProc()
	c.buf = seq.NewBuffer(c.s.cfg.IDRangeSize, 1)
	c.nextN = c.rng.IntN(len(c.s.names))
	c.busy, c.fetch, c.fproc, c.waiter, c.after = false, nil, -1, nil, 0
}

func (c *idClient) host() string { return c.hostn }

func (c *idClient) invoke(OpSpec) {
	s := c.s
	s.rec.Invoke(c.proc, history.NextID, history.IDValue{Name: c.name})
	if c.serve(c.proc) {
		return
	}
	op := &idOp{proc: c.proc}
	c.waiter = op
	op.timer = s.at(s.cfg.OpTimeout, label{kind: "id-timeout", from: c.hostn, a: uint64(op.proc)}, func() {
		if c.waiter != op {
			return
		}
		c.waiter = nil
		s.ops++
		s.rec.Info(op.proc, history.NextID, history.IDValue{Name: c.name}, "", "deadline exceeded")
		c.proc = s.newProc()
		c.w.done()
	})
	c.refill()
}

// serve hands an ID to proc if one is buffered, and ends its operation.
func (c *idClient) serve(proc int) bool {
	id, ok := c.buf.Take()
	if !ok {
		return false
	}
	c.s.ops++
	c.s.rec.Ok(proc, history.NextID, history.IDValue{Name: c.name, ID: uint64(id)}, "", "")
	c.refill()
	c.w.done()
	return true
}

// refill starts a fetch when the buffer wants one.
func (c *idClient) refill() {
	if c.busy || !c.buf.Want(0) {
		return
	}
	s := c.s
	c.busy = true
	if c.fproc < 0 {
		c.fproc = s.newProc()
	}
	target := s.hosts[c.nextN%len(s.hosts)]
	if s.cfg.RoundRobin {
		c.nextN++ // the client as it was: round-robin, no hint
	}
	size := s.cfg.IDRangeSize
	hint := c.after
	if s.cfg.RoundRobin {
		hint = 0
	}
	op := &fetchOp{c: c, gen: c.gen, proc: c.fproc, v: history.RangeValue{Name: c.name, N: size, Buffer: true}}
	op.call.host, op.call.fin = c.hostn, op
	s.rec.Invoke(op.proc, history.NextRange, &op.v)
	c.fetch, c.fnode = &op.call, target.name
	op.call.send(s, target, label{kind: "fetch", from: c.hostn, to: target.name, a: uint64(op.proc), b: size},
		s.cfg.OpTimeout, c.name, size, hint)
}

// fetchOp is one fetch of an ID client: its call and what its outcome
// records, in one allocation.
type fetchOp struct {
	call
	c    *idClient
	gen  int
	proc int
	v    history.RangeValue
}

func (op *fetchOp) finish(typ string, from, to uint64, node, errText string) {
	c, s, v := op.c, op.c.s, &op.v
	switch typ {
	case history.Ok:
		v.From, v.To = from, to
		s.rec.Ok(op.proc, history.NextRange, v, node, "")
		c.buf.Add(seq.Range{From: seq.ID(from), To: seq.ID(to)})
		c.after = max(c.after, to)
		c.fetched()
		return
	case history.Fail:
		s.rec.Fail(op.proc, history.NextRange, v, node, errText)
	default:
		s.rec.Info(op.proc, history.NextRange, v, node, errText)
		c.fproc = -1
	}
	if !s.cfg.RoundRobin {
		c.nextN++
	}
	gen := op.gen
	s.at(fetchPause, label{kind: "fetch-pause", from: c.hostn}, func() {
		if c.gen == gen {
			c.fetched()
		}
	})
}

// fetched ends a fetch: a waiting next-id takes an ID, or asks for more.
func (c *idClient) fetched() {
	c.busy, c.fetch = false, nil
	if op := c.waiter; op != nil {
		c.waiter = nil
		if c.serve(op.proc) {
			c.s.cancel(op.timer)
			return
		}
		c.waiter = op // the range was below the last ID: fetch again
		c.refill()
	}
}

// crash kills the client: the fetch in flight ends unknown, a waiting
// next-id fails (the client is closed), the buffer is lost, and a fresh
// client takes over.
func (c *idClient) crash() {
	s := c.s
	if f := c.fetch; f != nil && f.abort(s) {
		s.rec.Info(c.fproc, history.NextRange, history.RangeValue{Name: c.name, N: s.cfg.IDRangeSize, Buffer: true},
			c.fnode, "canceled: client closed")
	}
	op := c.waiter
	c.reset()
	if op != nil {
		s.cancel(op.timer)
		s.ops++
		s.rec.Fail(op.proc, history.NextID, history.IDValue{Name: c.name}, "", "closed")
		c.w.done()
	}
}
