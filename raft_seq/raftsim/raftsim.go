package raftsim

import (
	"slices"
	"strings"
	"time"

	"github.com/pkg/errors"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/seqlab/seqlab/checker/history"
	"github.com/seqlab/seqlab/raft_seq"
	"github.com/seqlab/seqlab/rr_seq"
	"github.com/seqlab/seqlab/seq"
	"github.com/seqlab/seqlab/simnet/sim"
)

// Config is raft_seq's side of a simulated run: the disk, the core's
// timers, and the planted bugs. Its JSON fields sit beside sim.Config's in
// a run's plan, under "raft".
//
// The timers left at zero are derived from the run's client timeout
// (sim.Config.OpTimeout) when the nodes start, so that a plan that
// changes the timeout keeps elections and request timeouts in proportion:
// ElectionTimeout a quarter of it (a leader's crash costs at most half an
// operation's wait) and at most 500ms (a few elections fit in the lab's
// live bound of 3s), TickInterval a fifth of ElectionTimeout, and
// RequestTimeout the client's timeout less a small margin, so that the
// node answers "unknown" itself and forgets the request just before the
// client gives up.
type Config struct {
	// Persist keeps each node's log, hard state and snapshots on its
	// simulated disk, as the node's WAL does: a kill keeps what was
	// written, a power loss only what was fsynced. Without it a node
	// keeps its state in memory, and a restarted node has none: it asks
	// its peers and stays out, refusing clients, unless all of them are
	// fresh too (see the package doc).
	Persist bool `json:"persist"`
	// SyncDelay is one fsync; writes that arrive during one wait for the
	// next (group commit), as in the node's WAL. Default 1ms.
	SyncDelay time.Duration `json:"sync_delay_ns"`
	// TickInterval is raft's tick, and the leader's heartbeat.
	TickInterval time.Duration `json:"tick_interval_ns,omitempty"`
	// ElectionTimeout is the least silence after which a node campaigns
	// (raft_seq.Config.ElectionTimeout).
	ElectionTimeout time.Duration `json:"election_timeout_ns,omitempty"`
	// RequestTimeout is how long a proposed request waits for its entry
	// to commit before the node answers that its outcome is unknown.
	RequestTimeout time.Duration `json:"request_timeout_ns,omitempty"`
	// PeerTimeout is how long a node waits for a peer to take a message
	// before it reports the peer unreachable to raft; default
	// ElectionTimeout.
	PeerTimeout time.Duration `json:"peer_timeout_ns,omitempty"`
	// SnapshotEvery is raft_seq.Config.SnapshotEvery. The default, 200,
	// is small, so that runs of seconds compact their logs and catch
	// lagging nodes up from snapshots.
	SnapshotEvery uint64 `json:"snapshot_every,omitempty"`
	// Redirect makes followers refuse clients with the leader's name
	// instead of forwarding (raft_seq.Config.Redirect). The simulated
	// clients do not follow redirects, so it costs availability.
	Redirect bool `json:"redirect,omitempty"`

	// UnsafeNoSync is a planted bug: a node tells raft its writes are
	// durable once they are written, never fsynced, as the node's
	// NodeConfig.UnsafeNoSync does. A follower then acknowledges entries,
	// and a node grants votes, that a power loss takes back: after
	// power-loss-all every node starts again from the bootstrap state and
	// hands out IDs it handed out before (unique fails); lose-unsynced
	// lets a forgetful majority overwrite committed entries.
	UnsafeNoSync bool `json:"unsafe_no_sync,omitempty"`
	// RejoinEmpty is a planted bug: a node that lost its state (in
	// memory, restarted) joins the cluster again from the bootstrap state
	// without asking its peers, forgetting its votes and the entries it
	// acknowledged. crash-majority then gives a majority of forgetful
	// nodes that elect one of their own and overwrite what the cluster
	// committed (unique fails).
	RejoinEmpty bool `json:"rejoin_empty,omitempty"`
}

// Defaults of Config.
const (
	DefaultSyncDelay     = time.Millisecond
	DefaultSnapshotEvery = 200
)

// WithDefaults fills unset fields, for a cluster of nodes nodes. The
// timers derived from the client timeout stay zero until the run starts.
func (c Config) WithDefaults(nodes int) Config {
	if c.SyncDelay == 0 {
		c.SyncDelay = DefaultSyncDelay
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = DefaultSnapshotEvery
	}
	return c
}

// Validate reports a configuration that cannot run on nodes nodes.
func (c Config) Validate(nodes int) error {
	switch {
	case nodes < 1:
		return errors.Errorf("raftsim: %d nodes", nodes)
	case c.SyncDelay < 0 || c.TickInterval < 0 || c.ElectionTimeout < 0 || c.RequestTimeout < 0 || c.PeerTimeout < 0:
		return errors.New("raftsim: bad timing (a negative delay or timeout)")
	case c.TickInterval > 0 && c.ElectionTimeout > 0 && c.ElectionTimeout < 2*c.TickInterval:
		return errors.Errorf("raftsim: election timeout %v is under two ticks of %v", c.ElectionTimeout, c.TickInterval)
	case c.UnsafeNoSync && !c.Persist:
		return errors.New("raftsim: unsafe_no_sync plants a bug of the disk, and needs persist")
	case c.RejoinEmpty && c.Persist:
		return errors.New("raftsim: rejoin_empty plants a bug of nodes without a disk, and cannot go with persist")
	}
	return nil
}

// maxElectionTimeout caps the derived election timeout: a few elections
// must fit in the lab's live bound (checker.DefaultLiveWithin, 3s) after
// the last fault heals, whatever the clients' timeout.
const maxElectionTimeout = 500 * time.Millisecond

// forRun derives the unset timers from the client timeout.
func (c Config) forRun(opTimeout time.Duration) Config {
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = max(min(opTimeout/4, maxElectionTimeout), 2*c.TickInterval, 2*time.Millisecond)
	}
	if c.TickInterval == 0 {
		c.TickInterval = max(c.ElectionTimeout/5, time.Millisecond)
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = max(opTimeout-min(opTimeout/10, 20*time.Millisecond), time.Millisecond)
	}
	if c.PeerTimeout == 0 {
		c.PeerTimeout = c.ElectionTimeout
	}
	return c
}

// System is raft_seq as the simulator runs it.
type System struct {
	cfg   Config
	nodes int
}

var _ sim.System = (*System)(nil)

// New returns raft_seq with cfg (defaults filled) for a cluster of nodes.
func New(cfg Config, nodes int) (*System, error) {
	cfg = cfg.WithDefaults(nodes)
	if err := cfg.Validate(nodes); err != nil {
		return nil, err
	}
	return &System{cfg: cfg, nodes: nodes}, nil
}

// Config returns the system's configuration, defaults filled.
func (s *System) Config() Config { return s.cfg }

// ValidateName implements sim.System.
func (s *System) ValidateName(name string) error { return rr_seq.ValidateName(name) }

// Start implements sim.System. The cluster is bootstrapped before the
// run: at the first start every node holds raft_seq.Bootstrap's state,
// durably. A node that restarts finds on its disk what it wrote (Persist)
// or nothing.
func (s *System) Start(h *sim.Host, d any, first bool) sim.Proc {
	n := &node{h: h, cfg: s.cfg.forRun(h.OpTimeout()), names: h.Nodes(), calls: map[uint64]*sim.Call{}}
	n.id = uint64(slices.Index(n.names, h.Name()) + 1)
	for i := range n.names {
		n.ids = append(n.ids, uint64(i+1))
	}
	switch img, _ := d.(*disk); {
	case first:
		n.boot(raft_seq.Bootstrap(n.ids), true)
	case img != nil:
		st, err := img.state()
		if err != nil {
			n.stayOut("its disk does not load: " + err.Error())
			return n
		}
		n.boot(st, false)
	case n.cfg.RejoinEmpty:
		n.boot(raft_seq.Bootstrap(n.ids), true) // the bug: no questions asked
	default:
		n.why = "it has no state, and is asking its peers whether they are fresh too"
		n.probe()
	}
	return n
}

// node is one process of a raft_seq node: the core, driven directly, with
// the node's group-commit disk and its transport.
type node struct {
	h     *sim.Host
	cfg   Config
	id    uint64
	ids   []uint64
	names []string

	core *raft_seq.Core // nil while the node has no state
	why  string         // why it refuses clients, while core is nil

	calls   map[uint64]*sim.Call // requests in the core, by ID
	nextReq uint64
	// seen holds the calls that arrived lately, when, to drop the
	// network's duplicates (sim.Config.Dup): a gRPC call over TCP arrives
	// once, and a second copy would allocate a second range.
	seen      map[*sim.Call]time.Duration
	seenPrune time.Duration

	wake    sim.Timer
	wakeAt  time.Duration
	wakeSet bool
	wakeGen uint64 // a held timer of a paused node may fire after its cancel

	// The disk, with Persist: base and the writes after it (log). The
	// first synced of them are fsynced; durable is the state they give.
	base    raft_seq.State
	log     []raft_seq.Write
	synced  int
	durable raft_seq.State
	syncing bool

	// The probe of a node without state. lived: a peer showed the
	// cluster lived, so this node is never fresh again.
	lived        bool
	probeRound   uint64
	probeAttempt int
	probeWait    int
	probeLived   []string
	probeMissing []string
}

// disk is what a node's simulated disk holds: a state and the writes
// after it, in order. A disk handed to the host never changes: its base
// is never written to again, and its writes are a clipped prefix of the
// node's log, which only grows past it. So the host can hold one disk for
// what was written and an older one for what was synced, at no copy.
type disk struct {
	base   raft_seq.State
	writes []raft_seq.Write
}

// state replays the disk, as the WAL's open does.
func (d *disk) state() (raft_seq.State, error) {
	st := cloneState(d.base)
	for _, w := range d.writes {
		if err := st.Apply(w); err != nil {
			return raft_seq.State{}, errors.Wrapf(err, "write %d", w.Seq)
		}
	}
	return st, nil
}

func cloneState(st raft_seq.State) raft_seq.State {
	st.Entries = slices.Clone(st.Entries)
	return st
}

// image is the disk with the first k writes of the log.
func (n *node) image(k int) *disk { return &disk{base: n.base, writes: n.log[:k:k]} }

// boot starts the core from st. With Persist, st is what the disk holds:
// a new state (init) is written and synced first, as the WAL's Init does;
// a state read back is left as the host has it, synced or not, until the
// next fsync, which flushes the whole file, old pages and new.
func (n *node) boot(st raft_seq.State, init bool) {
	if n.cfg.Persist {
		n.base, n.durable, n.log, n.synced = st, cloneState(st), nil, 0
		if init {
			img := n.image(0)
			n.h.Written(img)
			n.h.Durable(img)
		}
	}
	// Every start draws its own election seed and incarnation from the
	// run's source: a restart campaigns on other timeouts than the
	// process it replaces, and never takes that process's entries for
	// its own requests.
	cfg := raft_seq.Config{
		ID: n.id, Peers: n.ids, Seed: n.h.Rand().Uint64(), Incarnation: n.h.Rand().Uint64(),
		TickInterval: n.cfg.TickInterval, ElectionTimeout: n.cfg.ElectionTimeout, RequestTimeout: n.cfg.RequestTimeout,
		SnapshotEvery: n.cfg.SnapshotEvery, Redirect: n.cfg.Redirect,
	}
	c, out, err := raft_seq.NewCore(cfg, st, n.h.Now())
	if err != nil {
		n.stayOut("raft does not start: " + err.Error())
		return
	}
	n.core, n.why = c, ""
	s := c.Status()
	n.h.Note(sim.Label{Kind: "raft-start", From: n.h.Name(), A: s.Term, B: s.Applied})
	n.carry(out)
}

// stayOut leaves the node without a core for good, refusing clients.
func (n *node) stayOut(why string) {
	n.why = why
	n.h.Note(sim.Label{Kind: "raft-out", From: n.h.Name()})
}

// carry carries out a core output: messages go out, writes to the disk,
// replies to their clients, and the wake timer is set.
func (n *node) carry(out raft_seq.Output) {
	for {
		for _, m := range out.Msgs {
			n.send(m)
		}
		for _, r := range out.Replies {
			n.reply(r)
		}
		n.setWake(out.Wake)
		if len(out.Writes) == 0 {
			return
		}
		if n.cfg.Persist {
			n.write(out.Writes)
			return
		}
		// In memory, a write is durable once made.
		out = n.core.Durable(n.h.Now(), out.Writes[len(out.Writes)-1].Seq)
	}
}

// write puts writes on the disk (the page cache: a kill keeps them) and
// starts an fsync unless one is running; one fsync serves every write made
// before it starts.
func (n *node) write(ws []raft_seq.Write) {
	n.log = append(n.log, ws...)
	n.h.Written(n.image(len(n.log)))
	if !n.syncing {
		n.fsync()
	}
}

func (n *node) fsync() {
	n.syncing = true
	upto := len(n.log)
	last := n.log[upto-1].Seq
	n.h.After(n.cfg.SyncDelay, sim.Label{Kind: "raft-fsync", A: last}, func() {
		if !n.cfg.UnsafeNoSync { // the bug: the writes stay in the page cache
			n.h.Durable(n.image(upto))
		}
		for _, w := range n.log[n.synced:upto] {
			if err := n.durable.Apply(w); err != nil {
				panic(errors.Wrapf(err, "raftsim: %s: write %d does not fit the disk", n.h.Name(), w.Seq))
			}
		}
		n.synced = upto
		n.compact()
		n.syncing = false
		if len(n.log) > n.synced {
			n.fsync()
		}
		n.carry(n.core.Durable(n.h.Now(), last))
	})
}

// compact folds the synced writes into the disk's base once there are
// many, so that a restart replays few: the WAL's rewrite.
func (n *node) compact() {
	if n.synced < 256 {
		return
	}
	n.base = cloneState(n.durable)
	n.log = slices.Clone(n.log[n.synced:])
	n.synced = 0
}

// setWake sets the timer for the core's next Tick.
func (n *node) setWake(at time.Duration) {
	if n.wakeSet && n.wakeAt == at {
		return
	}
	n.h.Cancel(n.wake)
	n.wakeGen++
	if n.wakeSet = false; at == raft_seq.Never {
		return
	}
	gen := n.wakeGen
	n.wakeAt, n.wakeSet = at, true
	n.wake = n.h.After(max(0, at-n.h.Now()), sim.Label{Kind: "raft-tick"}, func() {
		if gen != n.wakeGen {
			return
		}
		n.wakeSet = false
		n.carry(n.core.Tick(n.h.Now()))
	})
}

// NextRange implements sim.Proc: a client's request goes to the core,
// which proposes it, forwards it to the leader, or refuses it.
func (n *node) NextRange(c *sim.Call, name string, size, after uint64) {
	if n.duplicate(c) {
		return
	}
	if n.core == nil {
		n.h.Answer(c, sim.Label{Kind: "not-serving"}, history.Fail, 0, 0, "unavailable: "+n.h.Name()+" is not serving: "+n.why)
		return
	}
	if err := n.core.Status().Broken; err != nil {
		// A broken core proposes nothing more: a certain failure, where
		// the requests it had proposed got ErrUnknown.
		n.h.Answer(c, sim.Label{Kind: "not-serving"}, history.Fail, 0, 0, "unavailable: "+n.h.Name()+" is not serving: "+err.Error())
		return
	}
	n.nextReq++
	id := n.nextReq
	n.calls[id] = c
	n.carry(n.core.Request(n.h.Now(), raft_seq.Request{ID: id, Name: name, N: size}))
}

// duplicate reports whether c arrived before. A copy arrives within the
// network's delay of the first, far less than the client's timeout, so a
// call is forgotten after two of them.
func (n *node) duplicate(c *sim.Call) bool {
	now := n.h.Now()
	if _, dup := n.seen[c]; dup {
		return true
	}
	if n.seen == nil {
		n.seen = map[*sim.Call]time.Duration{}
	}
	if keep := 2 * n.h.OpTimeout(); now-n.seenPrune > keep {
		for k, at := range n.seen { // deletes only: the order does not matter
			if now-at > keep {
				delete(n.seen, k)
			}
		}
		n.seenPrune = now
	}
	n.seen[c] = now
	return false
}

// reply answers a request's client. Only the errors that say nothing was
// allocated are failures; any other (ErrUnknown above all) leaves the
// outcome open.
func (n *node) reply(r raft_seq.Reply) {
	c := n.calls[r.ID]
	if c == nil {
		return
	}
	delete(n.calls, r.ID)
	if r.Err == nil {
		from, to := uint64(r.Range.From), uint64(r.Range.To)
		n.h.Answer(c, sim.Label{Kind: "range", A: from, B: to}, history.Ok, from, to, "")
		return
	}
	if Definite(r.Err) {
		n.h.Answer(c, sim.Label{Kind: "fail", A: r.ID}, history.Fail, 0, 0, r.Err.Error())
		return
	}
	n.h.Answer(c, sim.Label{Kind: "unknown", A: r.ID}, history.Info, 0, 0, r.Err.Error())
}

// Definite reports whether a reply's error says for certain that the
// request allocated nothing: the history's fail, where every other error
// is info. It names the certain failures rather than the uncertain ones,
// so that an error it does not know is never taken for a failure.
func Definite(err error) bool {
	for _, d := range []error{raft_seq.ErrNotLeader, raft_seq.ErrNoLeader, raft_seq.ErrBusy, raft_seq.ErrDropped,
		raft_seq.ErrDuplicateRequest, seq.ErrInvalidArgument, seq.ErrOverflow} {
		if errors.Is(err, d) {
			return !raft_seq.Indefinite(err)
		}
	}
	return false
}

// wire is a raft message on its way: a deep copy, as the node's stream
// decodes one, so that sender and receiver share nothing.
type wire struct {
	m      *raftpb.Message
	to     uint64
	snap   bool
	served bool
}

// probeMsg asks a peer whether it is fresh.
type probeMsg struct {
	round uint64
	fresh bool
}

// send sends one raft message to its peer.
func (n *node) send(m *raftpb.Message) {
	c := proto.Clone(m).(*raftpb.Message)
	n.h.Send(&sim.Request{To: n.names[m.GetTo()-1], Kind: msgKind(m.GetType()), A: m.GetTerm(), B: m.GetIndex(),
		Msg: &wire{m: c, to: m.GetTo(), snap: m.GetType() == raftpb.MessageType_MsgSnap}}, n.cfg.PeerTimeout)
}

// msgKind labels a raft message in the trace.
func msgKind(t raftpb.MessageType) string {
	switch t {
	case raftpb.MessageType_MsgProp:
		return "raft-prop"
	case raftpb.MessageType_MsgApp:
		return "raft-app"
	case raftpb.MessageType_MsgAppResp:
		return "raft-app-resp"
	case raftpb.MessageType_MsgVote:
		return "raft-vote"
	case raftpb.MessageType_MsgVoteResp:
		return "raft-vote-resp"
	case raftpb.MessageType_MsgPreVote:
		return "raft-prevote"
	case raftpb.MessageType_MsgPreVoteResp:
		return "raft-prevote-resp"
	case raftpb.MessageType_MsgHeartbeat:
		return "raft-heartbeat"
	case raftpb.MessageType_MsgHeartbeatResp:
		return "raft-heartbeat-resp"
	case raftpb.MessageType_MsgSnap:
		return "raft-snap"
	}
	return "raft-" + strings.ToLower(strings.TrimPrefix(t.String(), "Msg"))
}

// Serve implements sim.Proc: a raft message goes to the core, a probe
// gets this node's freshness.
func (n *node) Serve(r *sim.Request) {
	switch p := r.Msg.(type) {
	case *probeMsg:
		// As the node's Probe: a node without state is fresh, unless it
		// learnt that the cluster lived. (Else the last node with the
		// cluster's state, crashing in its turn, would find every peer
		// fresh and start the cluster over.)
		p.fresh = n.core == nil && !n.lived || n.core != nil && n.core.Status().Fresh()
		r.Answer(b2u(p.fresh))
	case *wire:
		// The node's transport is a stream over TCP, which delivers a
		// message once: the network's duplicates stop here. (A duplicated
		// proposal would commit twice, a gap no real network makes.)
		if p.served {
			return
		}
		p.served = true
		r.Answer(0)
		if n.core == nil {
			return // the node drops what it cannot step
		}
		m := p.m
		out, err := n.core.Step(n.h.Now(), m)
		if err != nil && !errors.Is(err, raft_seq.ErrBroken) {
			panic(errors.Wrapf(err, "raftsim: %s refused %s", n.h.Name(), raft_seq.DescribeMessage(m)))
		}
		n.carry(out)
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// Replied implements sim.Proc: a peer took a message, or answered a
// probe.
func (n *node) Replied(r *sim.Request) {
	switch p := r.Msg.(type) {
	case *probeMsg:
		if p.round == n.probeRound && n.core == nil {
			if !p.fresh {
				n.probeLived = append(n.probeLived, r.To)
			}
			n.probeAnswered()
		}
	case *wire:
		if p.snap && n.core != nil {
			n.carry(n.core.SnapshotSent(n.h.Now(), p.to, true))
		}
	}
}

// Failed implements sim.Proc: a peer did not take a message, which raft
// hears as the peer being unreachable.
func (n *node) Failed(r *sim.Request) {
	switch p := r.Msg.(type) {
	case *probeMsg:
		if p.round == n.probeRound && n.core == nil {
			n.probeMissing = append(n.probeMissing, r.To)
			n.probeAnswered()
		}
	case *wire:
		if n.core == nil {
			return
		}
		n.carry(n.core.Unreachable(n.h.Now(), p.to))
		if p.snap {
			n.carry(n.core.SnapshotSent(n.h.Now(), p.to, false))
		}
	}
}

// Crashed implements sim.Proc. The host drops the process's timers.
func (n *node) Crashed() {}

// probe asks every peer whether it is fresh, as the node with no state
// does before it bootstraps: only a cluster whose every node is fresh may
// start anew.
func (n *node) probe() {
	n.probeRound++
	n.probeWait = len(n.names) - 1
	n.probeLived, n.probeMissing = nil, nil
	if n.probeWait == 0 {
		n.probeDone()
		return
	}
	for _, peer := range n.names {
		if peer != n.h.Name() {
			n.h.Send(&sim.Request{To: peer, Kind: "raft-probe", A: n.probeRound, Msg: &probeMsg{round: n.probeRound}}, n.cfg.PeerTimeout)
		}
	}
}

func (n *node) probeAnswered() {
	if n.probeWait--; n.probeWait == 0 {
		n.probeDone()
	}
}

// probeDone decides on a probe's answers: stay out if a peer holds state,
// ask again if one did not answer, else bootstrap.
func (n *node) probeDone() {
	switch {
	case len(n.probeLived) > 0:
		n.lived = true
		slices.Sort(n.probeLived)
		n.stayOut("it has no state but the cluster lived (" + strings.Join(n.probeLived, ", ") + " hold state); " +
			"a node that lost its state cannot rejoin safely")
	case len(n.probeMissing) > 0:
		slices.Sort(n.probeMissing)
		n.why = "it has no state, and waits for every peer to answer before it bootstraps (" + strings.Join(n.probeMissing, ", ") + " did not)"
		wait := min(50*time.Millisecond<<min(n.probeAttempt, 4), time.Second)
		n.probeAttempt++
		n.h.After(wait, sim.Label{Kind: "raft-probe-wait", A: uint64(n.probeAttempt)}, n.probe)
	default:
		n.h.Note(sim.Label{Kind: "raft-bootstrap", From: n.h.Name()})
		n.boot(raft_seq.Bootstrap(n.ids), true)
	}
}
