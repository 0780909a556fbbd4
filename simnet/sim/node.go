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
	off     bool // down by power loss: silent, not refusing
	paused  bool
	held    []func() // work that arrived while paused
	replica *rr_seq.Replica
	coord   *rr_seq.Coordinator
	// rec is the recovery of a node that lost its state; nil once the
	// node holds its acknowledged state and acts as a replica.
	rec     *rr_seq.Recovery
	waiters map[rr_seq.OpID]*waiter
	// state mirrors the replica's values, which a write to disk copies:
	// written is what reached the file, durable what was fsynced.
	state, written, durable []nameValue
	syncing                 bool
	acks                    []*peerReq // writes waiting for the next fsync
	version                 uint64     // counts the replica's changes
}

// waiter is a client's call being coordinated here, with its timers.
type waiter struct {
	call   *call
	giveUp timer
	hedge  timer
}

func newNode(s *sim, name string) *node {
	n := &node{s: s, name: name, up: true}
	n.boot(nil, true) // the cluster is bootstrapped before the run
	return n
}

// boot starts the node's process from state. A node that cannot show it
// holds its acknowledged state (ready false: in memory, after a restart)
// recovers from its peers first, as rr_seq's nodes do.
func (n *node) boot(state []nameValue, ready bool) {
	cfg := n.s.cfg
	values := make(map[string]uint64, len(state))
	for _, nv := range state {
		values[nv.name] = nv.value
	}
	n.replica = rr_seq.NewReplica(cfg.WriteRule, values)
	n.coord = rr_seq.NewCoordinator(n.name, n.s.names, cfg.R, cfg.W, rr_seq.FanoutQuorum)
	n.coord.SetLimits(rr_seq.Limits{RoundLife: cfg.RoundLife, ReadFirst: cfg.ReadFirst})
	n.coord.Plant(rr_seq.Planted{TrustCache: cfg.TrustCache, LateJoin: cfg.LateJoin})
	n.waiters = map[rr_seq.OpID]*waiter{}
	n.syncing, n.acks, n.held = false, nil, nil
	n.rec = nil
	if ready {
		return
	}
	rec, out, err := rr_seq.NewRecovery(rr_seq.RecoveryConfig{
		Self: n.name, Peers: n.s.names, W: cfg.W, Cluster: "sim",
		Bootstrap: !cfg.NoBootstrapOnRestart, Wait: rr_seq.RecoveryWait(cfg.RoundLife),
	}, n.s.now)
	if err != nil {
		panic(err) // Config.Validate keeps W in range
	}
	n.rec = rec
	n.recovery(out)
}

// recovery carries out a step of the recovery.
func (n *node) recovery(out rr_seq.RecoveryOutput) {
	for _, m := range out.Msgs {
		n.request(m)
	}
	if out.After > 0 {
		n.after(out.After, label{kind: "recovery-poll"}, func() { n.recovery(n.rec.Poll(n.s.now)) })
	}
	if d := out.Done; d != nil {
		n.replica.Merge(d.Values)
		for _, name := range sortedNames(d.Values) {
			n.setState(name, d.Values[name])
		}
		kind := "recovered"
		if d.Bootstrapped {
			kind = "bootstrapped"
		}
		n.s.note(label{kind: kind, from: n.name, a: uint64(len(d.Values))})
		n.rec = nil
	}
}

// after schedules fn on this node's process: it is dropped if the process
// dies first and held while it is paused.
func (n *node) after(d time.Duration, l label, fn func()) timer {
	l.from = n.name
	return n.s.schedule(event{at: n.s.now + d, l: l, fn: fn, owner: n, epoch: n.epoch})
}

// afterH is after with a handler instead of a closure.
func (n *node) afterH(d time.Duration, l label, h handler, op uint8) timer {
	l.from = n.name
	return n.s.schedule(event{at: n.s.now + d, l: l, h: h, op: op, owner: n, epoch: n.epoch})
}

// reply sends a call's outcome back to its client.
func (n *node) reply(c *call, l label, typ string, from, to uint64, errText string) {
	l.from, l.to = n.name, c.host
	n.s.net.send(l, nil, func() { c.complete(n.s, typ, from, to, n.name, errText) })
}

// allocate starts a client's NextRange here.
func (n *node) allocate(c *call, name string, size, after uint64) {
	if n.rec != nil {
		n.reply(c, label{kind: "fail"}, history.Fail, 0, 0, "unavailable: node is recovering its state")
		return
	}
	id, out, err := n.coord.Start(n.s.now, rr_seq.Request{Name: name, N: size, After: after})
	if err != nil {
		n.reply(c, label{kind: "fail"}, history.Fail, 0, 0, err.Error())
		return
	}
	w := &waiter{call: c}
	n.waiters[id] = w
	// Give up a little before the client does, as the gRPC node does, so
	// the coordinator does not keep abandoned ops.
	margin := min(n.s.cfg.OpTimeout/10, 20*time.Millisecond)
	w.giveUp = n.after(n.s.cfg.OpTimeout-margin, label{kind: "give-up", a: uint64(id)}, func() {
		if n.waiters[id] != w {
			return
		}
		n.end(id, w)
		left := n.coord.Cancel(n.s.now, id)
		n.reply(c, label{kind: "unavailable", a: uint64(id)}, history.Info, 0, 0, "unavailable: no quorum before the deadline")
		n.dispatch(left)
	})
	n.dispatch(out)
}

// end forgets a finished op and cancels its timers.
func (n *node) end(id rr_seq.OpID, w *waiter) {
	delete(n.waiters, id)
	n.s.cancel(w.giveUp)
	n.s.cancel(w.hedge)
}

// dispatch carries out a coordinator step's output.
func (n *node) dispatch(out rr_seq.Output) {
	for _, d := range out.Done {
		w := n.waiters[d.Op]
		if w == nil {
			continue
		}
		n.end(d.Op, w)
		if d.Err != nil {
			n.reply(w.call, label{kind: "fail", a: uint64(d.Op)}, history.Fail, 0, 0, d.Err.Error())
			continue
		}
		from, to := uint64(d.Range.From), uint64(d.Range.To)
		n.reply(w.call, label{kind: "range", a: from, b: to}, history.Ok, from, to, "")
	}
	for _, b := range out.Backoff {
		if w := n.waiters[b.Op]; w != nil {
			n.s.cancel(w.hedge)
		}
		limit := time.Millisecond << min(b.Attempt-1, 16)
		limit = min(limit, n.s.cfg.MaxBackoff)
		d := limit/2 + time.Duration(n.s.rng.Int64N(int64(limit/2)+1))
		n.after(d, label{kind: "retry", a: uint64(b.Op)}, func() { n.dispatch(n.coord.Retry(n.s.now, b.Op)) })
	}
	for _, h := range out.Hedge {
		t := n.after(n.s.cfg.HedgeAfter, label{kind: "hedge", a: uint64(h.Op), b: uint64(h.Round)}, func() {
			n.dispatch(n.coord.Hedge(h.Op, h.Round))
		})
		if w := n.waiters[h.Op]; w != nil {
			n.s.cancel(w.hedge) // a new round: the last one's hedge is moot
			w.hedge = t
		}
	}
	for _, m := range out.Msgs {
		n.request(m)
	}
}

// request sends one peer message and handles its answer or its timeout.
func (n *node) request(m rr_seq.Msg) {
	r := &peerReq{n: n, epoch: n.epoch, m: m}
	if m.To == n.name {
		r.self = true
		n.serve(r)
		return
	}
	peer := n.s.nodes[m.To]
	if !peer.up && !peer.off && !n.s.net.cut[[2]string{n.name, m.To}] {
		// Nothing listens there: the connection is refused after a round
		// trip, as on TCP, rather than timing out.
		rtt := n.s.net.delay(n.name, m.To) + n.s.net.delay(m.To, n.name)
		n.afterH(rtt, label{kind: "refused", to: m.To, a: uint64(m.Op), b: uint64(m.Round)}, r, reqRefused)
		return
	}
	r.peer = peer
	r.key = n.s.net.open(n.name, m.To, r)
	r.timeout = n.afterH(n.s.cfg.PeerTimeout, label{kind: "peer-timeout", to: m.To, a: uint64(m.Op), b: uint64(m.Round)}, r, reqTimeout)
	n.s.net.sendH(label{kind: m.Kind.String(), from: n.name, to: m.To, a: uint64(m.Op), b: uint64(m.Round)}, peer, r, reqArrive)
}

// peerReq is one peer message of a coordinator, from its sending to its
// answer: one allocation per message, where closures would take several.
type peerReq struct {
	n, peer  *node
	epoch    int // the sender's process
	self     bool
	m        rr_seq.Msg
	key      rpcKey
	timeout  timer
	accepted bool
	value    uint64
	refused  bool             // the peer is recovering: no answer to count
	state    rr_seq.PeerState // the answer to a MsgState
}

// The steps of a peerReq.
const (
	reqArrive  uint8 = iota // the message reaches the peer
	reqReply                // the answer reaches the sender
	reqTimeout              // the sender stops waiting
	reqRefused              // nothing listens at the peer
)

func (r *peerReq) handle(op uint8) {
	s := r.n.s
	switch op {
	case reqArrive:
		r.peer.serve(r)
	case reqReply:
		if s.net.close(r.key) {
			s.cancel(r.timeout)
			r.deliver()
		}
	case reqTimeout:
		if s.net.close(r.key) {
			r.fail()
		}
	case reqRefused:
		r.fail()
	}
}

// answer is the peer's answer, sent back (or, to itself, given at once).
func (r *peerReq) answer() {
	if r.self {
		r.deliver()
		return
	}
	m := r.m
	r.n.s.net.sendH(label{kind: "reply", from: m.To, to: r.n.name, a: uint64(m.Op)<<32 | uint64(m.Round), b: r.value}, r.n, r, reqReply)
}

// deliver feeds the answer to the coordinator, or to the recovery.
func (r *peerReq) deliver() {
	n, m := r.n, r.m
	if r.refused {
		r.fail()
		return
	}
	switch m.Kind {
	case rr_seq.MsgGet:
		n.dispatch(n.coord.GetReply(n.s.now, m.Op, m.Round, m.To, r.value))
	case rr_seq.MsgSet:
		n.dispatch(n.coord.SetReply(n.s.now, m.Op, m.Round, m.To, r.accepted, r.value))
	case rr_seq.MsgState:
		if n.rec != nil {
			n.recovery(n.rec.StateReply(n.s.now, m.Round, m.To, r.state))
		}
	}
}

func (r *peerReq) fail() {
	n, m := r.n, r.m
	if m.Kind == rr_seq.MsgState {
		if n.rec != nil {
			n.recovery(n.rec.PeerFailed(n.s.now, m.Round, m.To))
		}
		return
	}
	n.dispatch(n.coord.PeerFailed(n.s.now, m.Op, m.Round, m.To, "no answer"))
}

// broken: a reset or crash broke the connection; the sender hears at once
// if its process lives.
func (r *peerReq) broken() {
	n := r.n
	if n.epoch != r.epoch || !n.up {
		return
	}
	r.n.s.cancel(r.timeout)
	if n.paused {
		n.held = append(n.held, r.fail)
		return
	}
	r.fail()
}

// serve answers a peer message on this node: a read at once, a write once
// it is durable (or at once, with the planted ack-before-sync bug).
func (n *node) serve(r *peerReq) {
	m := r.m
	switch {
	case m.Kind == rr_seq.MsgState:
		r.state = rr_seq.PeerState{}
		if n.rec == nil {
			r.state = rr_seq.PeerState{Initialised: true, Cluster: "sim", Values: n.replica.Snapshot()}
		}
		r.answer()
		return
	case n.rec != nil:
		// A recovering node neither answers reads nor takes writes.
		r.refused = true
		r.answer()
		return
	}
	if m.Kind == rr_seq.MsgGet {
		r.accepted, r.value = true, n.replica.Get(m.Name)
		r.answer()
		return
	}
	ok, cur, changed := n.replica.Set(m.Name, m.Base, m.Value)
	r.accepted, r.value = ok, cur
	if changed {
		n.version++
		n.setState(m.Name, cur)
	}
	if !changed || !n.s.cfg.Persist {
		r.answer()
		return
	}
	if n.s.cfg.AckBeforeSync {
		r.answer()
		n.flush(nil)
		return
	}
	n.flush(r)
}

// flush queues ack for the next group commit, starting one if none is
// running: one fsync serves every write that arrived before it began.
func (n *node) flush(ack *peerReq) {
	if ack != nil {
		n.acks = append(n.acks, ack)
	}
	if n.syncing {
		return
	}
	n.syncing = true
	snap, version := append([]nameValue(nil), n.state...), n.version
	n.after(n.s.cfg.SyncDelay, label{kind: "fsync"}, func() {
		n.written = snap
		if !n.s.cfg.AckBeforeSync {
			n.durable = snap // the bug writes without fsync
		}
		acks := n.acks
		n.acks, n.syncing = nil, false
		for _, a := range acks {
			a.answer()
		}
		if len(n.acks) > 0 || n.version != version {
			n.flush(nil)
		}
	})
}

// nameValue is one sequence's value on a node. A node holds a handful, so
// a slice copies cheaper than a map at every fsync.
type nameValue struct {
	name  string
	value uint64
}

func (n *node) setState(name string, v uint64) {
	for i := range n.state {
		if n.state[i].name == name {
			n.state[i].value = v
			return
		}
	}
	n.state = append(n.state, nameValue{name, v})
}

// crash kills the process. Its kernel resets its connections at once; on
// power loss there is no kernel: peers hear nothing until their timeouts,
// and the disk keeps only what was fsynced.
func (n *node) crash(powerLoss bool) {
	if !n.up {
		return
	}
	n.up = false
	n.epoch++
	n.paused = false
	for _, id := range sortedOps(n.waiters) {
		w := n.waiters[id]
		n.s.cancel(w.giveUp)
		n.s.cancel(w.hedge)
	}
	if powerLoss {
		n.written = n.durable
		n.off = true
		return
	}
	n.s.net.crash(n.name)
}

func (n *node) restart() {
	if n.up {
		return
	}
	if n.off {
		// Back from a power loss: the machine resets the connections it
		// forgot.
		n.s.net.crash(n.name)
		n.off = false
	}
	n.up = true
	n.state = nil
	if n.s.cfg.Persist {
		n.state = append(n.state, n.written...)
	}
	// A node on disk finds its marker and state there; one in memory has
	// neither and must recover.
	n.boot(n.state, n.s.cfg.Persist)
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

// sortedNames returns m's keys in order.
func sortedNames(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sortedOps returns m's keys in order, so that nothing depends on map
// order.
func sortedOps[V any](m map[rr_seq.OpID]V) []rr_seq.OpID {
	keys := make([]rr_seq.OpID, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}
