package rrsim

import (
	"sort"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/checker/history"
	"github.com/seqlab/seqlab/rr_seq"
	"github.com/seqlab/seqlab/simnet/sim"
)

// Config is rr_seq's side of a simulated run: the quorums, the write rule,
// the disk, the node's timers, and the planted bugs. Its JSON fields sit
// beside sim.Config's in a run's plan.
type Config struct {
	R             int              `json:"r"` // 0: majority
	W             int              `json:"w"` // 0: majority
	WriteRule     rr_seq.WriteRule `json:"write_rule"`
	Persist       bool             `json:"persist"`         // state on a simulated disk
	AckBeforeSync bool             `json:"ack_before_sync"` // a planted bug
	// TrustCache and LateJoin are planted bugs of the coordinator (see
	// rr_seq.Planted).
	TrustCache bool `json:"trust_cache,omitempty"`
	LateJoin   bool `json:"late_join,omitempty"`
	// RejoinEmpty is the planted bug of a node that lost its state and
	// acts as a replica without recovering (rr_seq.Planted.RejoinEmpty).
	RejoinEmpty bool `json:"rejoin_empty,omitempty"`
	// ShunReset is the planted liveness bug of a coordinator that never
	// asks a peer again after a connection to it was reset or refused
	// (rr_seq.Planted.ShunReset).
	ShunReset bool `json:"shun_reset,omitempty"`
	// ReadFirst runs the protocol from before write-only rounds and
	// coalescing (rr_seq.Limits.ReadFirst).
	ReadFirst   bool          `json:"read_first,omitempty"`
	SyncDelay   time.Duration `json:"sync_delay_ns"` // one fsync
	PeerTimeout time.Duration `json:"peer_timeout_ns"`
	HedgeAfter  time.Duration `json:"hedge_after_ns"`
	MaxBackoff  time.Duration `json:"max_backoff_ns"`
	// RoundLife is the coordinators' rr_seq.Limits.RoundLife; default
	// twice PeerTimeout. A node in memory that restarts waits it out
	// before it recovers from its peers.
	RoundLife time.Duration `json:"round_life_ns"`
	// NoBootstrapOnRestart restarts nodes without the bootstrap flag: a
	// cluster that lost every node's state then stays unavailable
	// instead of starting over at 1.
	NoBootstrapOnRestart bool `json:"no_bootstrap_on_restart,omitempty"`
	// Buggify enables seed-fired sites in the nodes (see Sites); nil, as
	// in every catalogued run, enables none.
	Buggify *Buggify `json:"buggify,omitempty"`
}

// WithDefaults fills unset fields, for a cluster of nodes nodes.
func (c Config) WithDefaults(nodes int) Config {
	if c.R == 0 {
		c.R = nodes/2 + 1
	}
	if c.W == 0 {
		c.W = nodes/2 + 1
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
	if c.RoundLife == 0 {
		c.RoundLife = 2 * c.PeerTimeout
	}
	return c
}

// Validate reports a configuration that cannot run on nodes nodes.
func (c Config) Validate(nodes int) error {
	if c.R < 1 || c.R > nodes || c.W < 1 || c.W > nodes {
		return errors.Errorf("rrsim: quorums R=%d W=%d outside 1..%d", c.R, c.W, nodes)
	}
	if c.SyncDelay < 0 || c.PeerTimeout <= 0 || c.HedgeAfter <= 0 || c.MaxBackoff <= 0 || c.RoundLife <= 0 {
		return errors.New("rrsim: bad timing (negative sync delay, or a timer not positive)")
	}
	return c.Buggify.Validate()
}

// System is rr_seq as the simulator runs it. It serves one run at a time:
// what its nodes share (the last restart of a seed-fired site) starts
// over when the run starts its first node.
type System struct {
	cfg Config
	// restarted is when a SiteRestartAfterAck last fired; restarts
	// whether one has.
	restarted time.Duration
	restarts  bool
	// procs are the nodes' live processes, by name: nil while a node is
	// down.
	procs map[string]*node
	// free are peer messages the simulator handed back, for reuse: a
	// seed sends tens of thousands.
	free []*peerMsg
	// noReuse keeps recycled messages out of use, so that the
	// simulator's check on a recycled request sees any use of one.
	noReuse bool
}

// Recycle implements sim.Recycler.
func (s *System) Recycle(r *sim.Request) {
	if !s.noReuse {
		s.free = append(s.free, r.Msg.(*peerMsg))
	}
}

var _ sim.System = (*System)(nil)

// New returns rr_seq with cfg (defaults filled) for a cluster of nodes.
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
func (s *System) ValidateName(name string) error { return rr_seq.ValidateName(name) }

// Start implements sim.System. The cluster is bootstrapped before the
// run. A node on disk finds its marker and state there when it restarts;
// one in memory has neither and must recover.
func (s *System) Start(h *sim.Host, disk any, first bool) sim.Proc {
	if first && h.Name() == h.Nodes()[0] {
		s.restarts, s.procs = false, map[string]*node{} // a new run
	}
	n := &node{h: h, sys: s, cfg: s.cfg, bug: newSites(s.cfg.Buggify, h)}
	s.procs[h.Name()] = n
	var state []nameValue
	if s.cfg.Persist && disk != nil {
		state = append(state, disk.([]nameValue)...)
	}
	n.state = state
	n.boot(state, first || s.cfg.Persist || s.cfg.RejoinEmpty)
	return n
}

// node is one process of an rr_seq node: the core's replica, coordinator
// and recovery, driven directly, with the same timers the gRPC node uses.
type node struct {
	h       *sim.Host
	sys     *System
	cfg     Config
	replica *rr_seq.Replica
	coord   *rr_seq.Coordinator
	// rec is the recovery of a node that lost its state; nil once the
	// node holds its acknowledged state and acts as a replica.
	rec     *rr_seq.Recovery
	waiters map[rr_seq.OpID]*waiter
	// state mirrors the replica's values, which a write to disk copies.
	state   []nameValue
	syncing bool
	acks    []*sim.Request // writes waiting for the next fsync
	version uint64         // counts the replica's changes
	bug     *sites         // the enabled seed-fired sites; nil for none
}

// waiter is a client's call being coordinated here, with its timers.
type waiter struct {
	call   *sim.Call
	giveUp sim.Timer
	hedge  sim.Timer
}

// msg is a peer message and the peer's answer to it.
type msg struct {
	m        rr_seq.Msg
	accepted bool
	value    uint64
	state    rr_seq.PeerState // the answer to a MsgState
}

// boot starts the node's process from state. A node that cannot show it
// holds its acknowledged state (ready false: in memory, after a restart)
// recovers from its peers first, as rr_seq's nodes do.
func (n *node) boot(state []nameValue, ready bool) {
	cfg := n.cfg
	values := make(map[string]uint64, len(state))
	for _, nv := range state {
		values[nv.name] = nv.value
	}
	n.replica = rr_seq.NewReplica(cfg.WriteRule, values)
	n.coord = rr_seq.NewCoordinator(n.h.Name(), n.h.Nodes(), cfg.R, cfg.W, rr_seq.FanoutQuorum)
	n.coord.SetLimits(rr_seq.Limits{RoundLife: cfg.RoundLife, ReadFirst: cfg.ReadFirst})
	n.coord.Plant(rr_seq.Planted{TrustCache: cfg.TrustCache, LateJoin: cfg.LateJoin, ShunReset: cfg.ShunReset})
	n.waiters = map[rr_seq.OpID]*waiter{}
	if ready {
		return
	}
	rec, out, err := rr_seq.NewRecovery(rr_seq.RecoveryConfig{
		Self: n.h.Name(), Peers: n.h.Nodes(), W: cfg.W, Cluster: "sim",
		Bootstrap: !cfg.NoBootstrapOnRestart, Wait: rr_seq.RecoveryWait(cfg.RoundLife),
	}, n.h.Now())
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
		n.h.After(out.After, sim.Label{Kind: "recovery-poll"}, func() { n.recovery(n.rec.Poll(n.h.Now())) })
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
		n.h.Note(sim.Label{Kind: kind, From: n.h.Name(), A: uint64(len(d.Values))})
		n.rec = nil
	}
}

// NextRange implements sim.Proc: a client's NextRange, coordinated here.
func (n *node) NextRange(c *sim.Call, name string, size, after uint64) {
	if n.rec != nil {
		n.h.Answer(c, sim.Label{Kind: "fail"}, history.Fail, 0, 0, "unavailable: node is recovering its state")
		return
	}
	id, out, err := n.coord.Start(n.h.Now(), rr_seq.Request{Name: name, N: size, After: after})
	if err != nil {
		n.h.Answer(c, sim.Label{Kind: "fail"}, history.Fail, 0, 0, err.Error())
		return
	}
	w := &waiter{call: c}
	n.waiters[id] = w
	// Give up a little before the client does, as the gRPC node does, so
	// the coordinator does not keep abandoned ops.
	margin := min(n.h.OpTimeout()/10, 20*time.Millisecond)
	w.giveUp = n.h.Deadline(n.h.OpTimeout()-margin, sim.Label{Kind: "give-up", A: uint64(id)}, timerGiveUp)
	n.dispatch(out)
}

// The node's timers (sim.Timers): each kind's label carries the op in A
// and, for a hedge, the round in B.
const (
	timerGiveUp uint8 = iota
	timerHedge
	timerRetry
)

// Timer implements sim.Timers.
func (n *node) Timer(kind uint8, a, b uint64) {
	id := rr_seq.OpID(a)
	switch kind {
	case timerGiveUp:
		w := n.waiters[id]
		if w == nil {
			return
		}
		n.end(id, w)
		left := n.coord.Cancel(n.h.Now(), id)
		n.h.Answer(w.call, sim.Label{Kind: "unavailable", A: uint64(id)}, history.Info, 0, 0, "unavailable: no quorum before the deadline")
		n.dispatch(left)
	case timerHedge:
		n.dispatch(n.coord.Hedge(id, uint32(b)))
	case timerRetry:
		n.dispatch(n.coord.Retry(n.h.Now(), id))
	}
}

// end forgets a finished op and cancels its timers.
func (n *node) end(id rr_seq.OpID, w *waiter) {
	delete(n.waiters, id)
	n.h.Cancel(w.giveUp)
	n.h.Cancel(w.hedge)
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
			n.h.Answer(w.call, sim.Label{Kind: "fail", A: uint64(d.Op)}, history.Fail, 0, 0, d.Err.Error())
			continue
		}
		from, to := uint64(d.Range.From), uint64(d.Range.To)
		n.h.Answer(w.call, sim.Label{Kind: "range", A: from, B: to}, history.Ok, from, to, "")
	}
	for _, b := range out.Backoff {
		if w := n.waiters[b.Op]; w != nil {
			n.h.Cancel(w.hedge)
		}
		limit := time.Millisecond << min(b.Attempt-1, 16)
		limit = min(limit, n.cfg.MaxBackoff)
		d := limit/2 + time.Duration(n.h.Rand().Int64N(int64(limit/2)+1))
		if n.bug.fire(SiteBackoffLong, uint64(b.Op), uint64(b.Attempt)) {
			d = n.cfg.MaxBackoff
		}
		n.h.Timer(d, sim.Label{Kind: "retry", A: uint64(b.Op)}, timerRetry)
	}
	for _, hd := range out.Hedge {
		if n.bug.fire(SiteHedgeDrop, uint64(hd.Op), uint64(hd.Round)) {
			continue
		}
		t := n.h.Deadline(n.cfg.HedgeAfter, sim.Label{Kind: "hedge", A: uint64(hd.Op), B: uint64(hd.Round)}, timerHedge)
		if w := n.waiters[hd.Op]; w != nil {
			n.h.Cancel(w.hedge) // a new round: the last one's hedge is moot
			w.hedge = t
		}
	}
	for _, m := range out.Msgs {
		n.request(m)
	}
}

// request sends one peer message.
func (n *node) request(m rr_seq.Msg) {
	var p *peerMsg
	if k := len(n.sys.free); k > 0 {
		p, n.sys.free = n.sys.free[k-1], n.sys.free[:k-1]
		p.msg = msg{m: m}
	} else {
		p = &peerMsg{msg: msg{m: m}}
	}
	p.req = sim.Request{To: m.To, Kind: m.Kind.String(), A: uint64(m.Op), B: uint64(m.Round), Msg: p}
	n.h.Send(&p.req, n.cfg.PeerTimeout)
}

// peerMsg is a request and its message in one allocation; the request's
// Msg is the peerMsg.
type peerMsg struct {
	req sim.Request
	msg
}

// Replied implements sim.Proc: the answer goes to the coordinator, or to
// the recovery.
func (n *node) Replied(r *sim.Request) {
	p := &r.Msg.(*peerMsg).msg
	m := p.m
	switch m.Kind {
	case rr_seq.MsgGet:
		n.dispatch(n.coord.GetReply(n.h.Now(), m.Op, m.Round, m.To, p.value))
	case rr_seq.MsgSet:
		n.dispatch(n.coord.SetReply(n.h.Now(), m.Op, m.Round, m.To, p.accepted, p.value))
	case rr_seq.MsgState:
		if n.rec != nil {
			n.recovery(n.rec.StateReply(n.h.Now(), m.Round, m.To, p.state))
		}
	}
}

// Failed implements sim.Proc.
func (n *node) Failed(r *sim.Request) {
	m := r.Msg.(*peerMsg).m
	if m.Kind == rr_seq.MsgState {
		if n.rec != nil {
			n.recovery(n.rec.PeerFailed(n.h.Now(), m.Round, m.To))
		}
		return
	}
	n.dispatch(n.coord.PeerFailed(n.h.Now(), m.Op, m.Round, m.To, r.Why))
}

// Serve implements sim.Proc: a read at once, a write once it is durable
// (or at once, with the planted ack-before-sync bug).
func (n *node) Serve(r *sim.Request) {
	p := &r.Msg.(*peerMsg).msg
	m := p.m
	switch {
	case m.Kind == rr_seq.MsgState:
		p.state = rr_seq.PeerState{}
		if n.rec == nil {
			p.state = rr_seq.PeerState{Initialised: true, Cluster: "sim", Values: n.replica.Snapshot()}
		}
		n.answer(r, 0)
		return
	case n.rec != nil:
		// A recovering node neither answers reads nor takes writes.
		r.Refuse()
		return
	}
	if n.bug.fire(SiteRefuse, uint64(m.Op), uint64(m.Round)) {
		r.Refuse()
		return
	}
	if m.Kind == rr_seq.MsgGet {
		p.accepted, p.value = true, n.replica.Get(m.Name)
		n.answer(r, p.value)
		return
	}
	ok, cur, changed := n.replica.Set(m.Name, m.Base, m.Value)
	p.accepted, p.value = ok, cur
	if changed {
		n.version++
		n.setState(m.Name, cur)
	}
	if !changed || !n.cfg.Persist {
		n.answer(r, p.value)
		if changed {
			n.restartAfterAck(m)
		}
		return
	}
	if n.cfg.AckBeforeSync {
		n.answer(r, p.value)
		n.flush(nil)
		return
	}
	n.flush(r)
}

// answer answers a peer's request with v, at once, or later where the
// reply-delay site fires.
func (n *node) answer(r *sim.Request, v uint64) {
	if n.bug.fire(SiteReplyDelay, r.A, r.B) {
		d := time.Millisecond + time.Duration(n.bug.draw(int64(n.cfg.PeerTimeout/2)))
		n.h.After(d, sim.Label{Kind: "delayed-reply", To: r.From(), A: r.A, B: r.B}, func() { r.Answer(v) })
		return
	}
	r.Answer(v)
}

// restartAfterAck is SiteRestartAfterAck, reached once a write is
// answered.
func (n *node) restartAfterAck(m rr_seq.Msg) {
	if n.bug == nil || (n.sys.restarts && n.h.Now()-n.sys.restarted < RestartSpacing) || !n.sys.whole() || !n.bug.b.calm(n.h.Now()) {
		return
	}
	if n.bug.fire(SiteRestartAfterAck, uint64(m.Op), uint64(m.Round)) {
		n.sys.restarts, n.sys.restarted = true, n.h.Now()
		n.h.Reboot(time.Millisecond + time.Duration(n.bug.draw(int64(49*time.Millisecond))))
	}
}

// whole reports whether every node is up and holds its state: a node
// restarted then loses no more than one node's state at a time.
func (s *System) whole() bool {
	for _, p := range s.procs {
		if p == nil || p.rec != nil {
			return false
		}
	}
	return len(s.procs) > 0
}

// flush queues ack for the next group commit, starting one if none is
// running: one fsync serves every write that arrived before it began.
func (n *node) flush(ack *sim.Request) {
	if ack != nil {
		n.acks = append(n.acks, ack)
	}
	if n.syncing {
		return
	}
	n.syncing = true
	snap, version := append([]nameValue(nil), n.state...), n.version
	d := n.cfg.SyncDelay
	if n.bug.fire(SiteFsyncSlow, version, 0) {
		d *= time.Duration(5 + n.bug.draw(46))
	}
	n.h.After(d, sim.Label{Kind: "fsync"}, func() {
		n.h.Written(snap)
		if !n.cfg.AckBeforeSync {
			n.h.Durable(snap) // the bug writes without fsync
		}
		acks := n.acks
		n.acks, n.syncing = nil, false
		for _, a := range acks {
			n.answer(a, a.Msg.(*peerMsg).value)
		}
		if len(acks) > 0 {
			n.restartAfterAck(acks[len(acks)-1].Msg.(*peerMsg).m)
		}
		if len(n.acks) > 0 || n.version != version {
			n.flush(nil)
		}
	})
}

// Crashed implements sim.Proc: the waiters' timers go with the process.
func (n *node) Crashed() {
	if n.sys.procs[n.h.Name()] == n {
		n.sys.procs[n.h.Name()] = nil
	}
	for _, id := range sortedOps(n.waiters) {
		w := n.waiters[id]
		n.h.Cancel(w.giveUp)
		n.h.Cancel(w.hedge)
	}
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
