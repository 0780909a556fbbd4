package sim

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/seqlab/seqlab/checker/history"
	"github.com/seqlab/seqlab/nemesis"
	"github.com/seqlab/seqlab/rr_seq"
)

// node is one rr_seq node: the core's replica and coordinator, driven
// directly, with the same timers the gRPC node uses.
type node struct {
	s       *sim
	name    string
	epoch   int // bumped on crash: events of a dead process are dropped
	up      bool
	paused  bool
	held    []func() // work that arrived while paused
	replica *rr_seq.Replica
	coord   *rr_seq.Coordinator
	waiters map[rr_seq.OpID]*call
	// disk: written is what reached the file, durable what was fsynced.
	written, durable map[string]uint64
	syncing          bool
	acks             []func() // waiting for the next fsync
}

// call is a client's NextRange being coordinated.
type call struct {
	c    *client
	proc int
	done bool
}

func newNode(s *sim, name string) *node {
	n := &node{s: s, name: name, up: true}
	n.boot(nil)
	return n
}

func (n *node) boot(values map[string]uint64) {
	cfg := n.s.cfg
	n.replica = rr_seq.NewReplica(cfg.WriteRule, values)
	n.coord = rr_seq.NewCoordinator(n.name, n.s.names, cfg.R, cfg.W, rr_seq.FanoutQuorum)
	n.waiters = map[rr_seq.OpID]*call{}
	n.syncing, n.acks, n.held = false, nil, nil
}

// alive wraps fn so that it runs only if this process still lives, and
// waits while it is paused.
func (n *node) alive(fn func()) func() {
	epoch := n.epoch
	return func() {
		switch {
		case n.epoch != epoch || !n.up:
		case n.paused:
			n.held = append(n.held, fn)
		default:
			fn()
		}
	}
}

// after schedules fn on this node's process.
func (n *node) after(d time.Duration, l label, fn func()) {
	l.from = n.name
	n.s.at(d, l, n.alive(fn))
}

// allocate starts a client's NextRange here.
func (n *node) allocate(c *call, name string, size uint64) {
	id, out, err := n.coord.Start(name, size)
	if err != nil {
		n.s.net.send(label{kind: "fail", from: n.name, to: c.c.host}, func() { c.c.complete(c, history.Fail, 0, 0, n.name, err.Error()) })
		return
	}
	n.waiters[id] = c
	// Give up a little before the client does, as the gRPC node does, so
	// the coordinator does not keep abandoned ops.
	margin := min(n.s.cfg.OpTimeout/10, 20*time.Millisecond)
	n.after(n.s.cfg.OpTimeout-margin, label{kind: "give-up", a: uint64(id)}, func() {
		if w := n.waiters[id]; w != nil {
			delete(n.waiters, id)
			n.coord.Cancel(id)
			n.s.net.send(label{kind: "unavailable", from: n.name, to: w.c.host, a: uint64(id)}, func() { w.c.complete(w, history.Info, 0, 0, n.name, "unavailable: no quorum before the deadline") })
		}
	})
	n.dispatch(out)
}

// dispatch carries out a coordinator step's output.
func (n *node) dispatch(out rr_seq.Output) {
	for _, d := range out.Done {
		w := n.waiters[d.Op]
		if w == nil {
			continue
		}
		delete(n.waiters, d.Op)
		from, to := uint64(d.Range.From), uint64(d.Range.To)
		n.s.net.send(label{kind: "range", from: n.name, to: w.c.host, a: from, b: to}, func() { w.c.complete(w, history.Ok, from, to, n.name, "") })
	}
	for _, b := range out.Backoff {
		limit := time.Millisecond << min(b.Attempt-1, 16)
		limit = min(limit, n.s.cfg.MaxBackoff)
		d := limit/2 + time.Duration(n.s.rng.Int64N(int64(limit/2)+1))
		n.after(d, label{kind: "retry", a: uint64(b.Op)}, func() { n.dispatch(n.coord.Retry(b.Op)) })
	}
	for _, h := range out.Hedge {
		n.after(n.s.cfg.HedgeAfter, label{kind: "hedge", a: uint64(h.Op), b: uint64(h.Round)}, func() { n.dispatch(n.coord.Hedge(h.Op, h.Round)) })
	}
	for _, m := range out.Msgs {
		n.request(m)
	}
}

// request sends one peer message and handles its answer or its timeout.
func (n *node) request(m rr_seq.Msg) {
	failed := func() { n.dispatch(n.coord.PeerFailed(m.Op, m.Round, m.To)) }
	reply := func(accepted bool, value uint64) {
		if m.Kind == rr_seq.MsgGet {
			n.dispatch(n.coord.GetReply(m.Op, m.Round, m.To, value))
		} else {
			n.dispatch(n.coord.SetReply(m.Op, m.Round, m.To, accepted, value))
		}
	}
	if m.To == n.name {
		n.serve(m, func(accepted bool, value uint64) { reply(accepted, value) })
		return
	}
	peer := n.s.nodes[m.To]
	if !peer.up && !n.s.net.cut[[2]string{n.name, m.To}] {
		// Nothing listens there: the connection is refused after a round
		// trip, as on TCP, rather than timing out.
		rtt := n.s.net.delay(n.name, m.To) + n.s.net.delay(m.To, n.name)
		n.after(rtt, label{kind: "refused", to: m.To, a: uint64(m.Op), b: uint64(m.Round)}, failed)
		return
	}
	key := n.s.net.open(n.name, m.To, n.alive(failed))
	n.after(n.s.cfg.PeerTimeout, label{kind: "peer-timeout", to: m.To, a: uint64(m.Op), b: uint64(m.Round)}, func() {
		if n.s.net.close(key) {
			failed()
		}
	})
	n.s.net.send(label{kind: m.Kind.String(), from: n.name, to: m.To, a: uint64(m.Op), b: uint64(m.Round)}, peer.alive(func() {
		peer.serve(m, func(accepted bool, value uint64) {
			n.s.net.send(label{kind: "reply", from: m.To, to: n.name, a: uint64(m.Op)<<32 | uint64(m.Round), b: value}, n.alive(func() {
				if n.s.net.close(key) {
					reply(accepted, value)
				}
			}))
		})
	}))
}

// serve answers a peer message on this node: a read at once, a write once
// it is durable (or at once, with the planted ack-before-sync bug).
func (n *node) serve(m rr_seq.Msg, answer func(bool, uint64)) {
	if m.Kind == rr_seq.MsgGet {
		answer(true, n.replica.Get(m.Name))
		return
	}
	ok, cur, changed := n.replica.Set(m.Name, m.Base, m.Value)
	if !changed || !n.s.cfg.Persist {
		answer(ok, cur)
		return
	}
	if n.s.cfg.AckBeforeSync {
		answer(ok, cur)
		n.flush(nil)
		return
	}
	n.flush(func() { answer(ok, cur) })
}

// flush queues ack for the next group commit, starting one if none is
// running: one fsync serves every write that arrived before it began.
func (n *node) flush(ack func()) {
	if ack != nil {
		n.acks = append(n.acks, ack)
	}
	if n.syncing {
		return
	}
	n.syncing = true
	snap := n.replica.Snapshot()
	n.after(n.s.cfg.SyncDelay, label{kind: "fsync"}, func() {
		n.written = snap
		if !n.s.cfg.AckBeforeSync {
			n.durable = snap // the bug writes without fsync
		}
		acks := n.acks
		n.acks, n.syncing = nil, false
		for _, a := range acks {
			a()
		}
		if len(n.acks) > 0 || !equal(snap, n.replica.Snapshot()) {
			n.flush(nil)
		}
	})
}

func equal(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// crash kills the process; on power loss the disk keeps only what was
// fsynced.
func (n *node) crash(powerLoss bool) {
	if !n.up {
		return
	}
	n.up = false
	n.epoch++
	n.paused = false
	if powerLoss {
		n.written = n.durable
	}
	n.s.net.crash(n.name)
}

func (n *node) restart() {
	if n.up {
		return
	}
	n.up = true
	var values map[string]uint64
	if n.s.cfg.Persist {
		values = n.written
	}
	n.boot(values)
}

// client is one range client process.
type client struct {
	s       *sim
	host    string
	size    uint64
	proc    int
	every   time.Duration
	current *call
	name    string
}

func (c *client) invoke() {
	s := c.s
	c.name = s.cfg.Names[s.rng.IntN(len(s.cfg.Names))]
	target := s.nodes[s.names[s.rng.IntN(len(s.names))]]
	call := &call{c: c, proc: c.proc}
	c.current = call
	s.rec.Invoke(c.proc, history.NextRange, history.RangeValue{Name: c.name, N: c.size})
	name, size := c.name, c.size
	s.net.send(label{kind: "next-range", from: c.host, to: target.name, a: uint64(call.proc), b: size}, target.alive(func() { target.allocate(call, name, size) }))
	s.at(s.cfg.OpTimeout, label{kind: "client-timeout", from: c.host, a: uint64(call.proc)}, func() { c.complete(call, history.Info, 0, 0, target.name, "deadline exceeded") })
}

// complete ends the call once: the first of its answer and its timeout.
func (c *client) complete(call *call, typ string, from, to uint64, node, errText string) {
	if call.done {
		return
	}
	call.done = true
	s := c.s
	s.ops++
	v := history.RangeValue{Name: c.name, N: c.size, From: from, To: to}
	switch typ {
	case history.Ok:
		s.rec.Ok(call.proc, history.NextRange, v, node, "")
	case history.Fail:
		s.rec.Fail(call.proc, history.NextRange, v, node, errText)
	default:
		s.rec.Info(call.proc, history.NextRange, v, node, errText)
		c.proc = s.newProc() // a process never invokes after an info
	}
	wait := c.every/2 + time.Duration(s.rng.Int64N(int64(c.every)+1))
	s.at(wait, label{kind: "next", from: c.host}, c.invoke)
}

// cluster lets nemesis faults act on the simulation.
type cluster struct {
	s   *sim
	rng *rand.Rand
}

var _ nemesis.Cluster = (*cluster)(nil)

func (c *cluster) Nodes() []string      { return append([]string(nil), c.s.names...) }
func (c *cluster) Clients() []string    { return nil }
func (c *cluster) Net() nemesis.Network { return c.s.net }
func (c *cluster) Rand() *rand.Rand     { return c.rng }
func (c *cluster) DefaultLink() nemesis.Link {
	return nemesis.Link{Latency: c.s.cfg.Latency, Jitter: c.s.cfg.Jitter}
}
func (c *cluster) CrashClient(string) error { return nil }

func (c *cluster) Crash(name string, powerLoss, torn bool) error {
	n := c.s.nodes[name]
	if n == nil {
		return fmt.Errorf("no node %q", name)
	}
	n.crash(powerLoss || torn)
	return nil
}

func (c *cluster) Restart(name string) error {
	n := c.s.nodes[name]
	if n == nil {
		return fmt.Errorf("no node %q", name)
	}
	n.restart()
	return nil
}

// sortedKeys returns m's keys in order, so that nothing depends on map
// order.
func sortedKeys[V any](m map[rpcKey]V) []rpcKey {
	keys := make([]rpcKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].id < keys[j].id })
	return keys
}
