package raft_seq

import (
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/pkg/errors"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/seqlab/seqlab/rr_seq"
	"github.com/seqlab/seqlab/seq"
)

// This file is the core of raft_seq: a synchronous state machine with no
// goroutines, clocks or I/O around a raft.RawNode. The gRPC node (node.go)
// and the lab's deterministic simulator drive it: they feed it client
// requests, peer messages, the time and durability notices, and carry out
// what it returns (messages to send, records to make durable, replies).

// Errors of a Reply. ErrUnknown is the only one whose request may have
// allocated IDs; after any other, it certainly did not.
var (
	// ErrNotLeader: this node is a follower and forwards nothing (see
	// Config.Redirect). The error is a *NotLeaderError naming the leader.
	ErrNotLeader = errors.New("raft_seq: not the leader")
	// ErrNoLeader: no leader is known here, so nothing was proposed.
	ErrNoLeader = errors.New("raft_seq: no leader known")
	// ErrDropped: the proposal was refused or lost, and another entry
	// committed in its place: its IDs were not allocated.
	ErrDropped = errors.New("raft_seq: proposal dropped, nothing allocated")
	// ErrUnknown: the request was proposed but its entry was not seen to
	// commit before the request timed out. It may still commit, and then
	// its IDs are a gap; they are never handed out to anyone else.
	ErrUnknown = errors.New("raft_seq: outcome unknown")
	// ErrBusy: too many requests in progress, or too many names.
	ErrBusy = errors.New("raft_seq: too busy")
	// ErrDuplicateRequest: the driver reused the ID of a pending request.
	// The earlier request stays pending.
	ErrDuplicateRequest = errors.New("raft_seq: request ID already pending")
	// ErrBroken: raft hit an invariant it cannot continue from (a panic
	// inside raft, recovered). The core refuses everything from then on;
	// restart the node from its durable state.
	ErrBroken = errors.New("raft_seq: core stopped after an internal error")
)

// brokenPending is the error of a request in progress when the core
// broke: it was proposed, and may commit on the other nodes, so it is
// ErrUnknown as well as ErrBroken.
type brokenPending struct{ err error }

func (e brokenPending) Error() string {
	return e.err.Error() + "; the request was proposed: " + ErrUnknown.Error()
}

func (e brokenPending) Is(target error) bool { return target == ErrUnknown || errors.Is(e.err, target) }

// NotLeaderError is the error of a follower that redirects: Leader is the
// raft ID of the leader it knows.
type NotLeaderError struct{ Leader uint64 }

func (e *NotLeaderError) Error() string {
	return fmt.Sprintf("raft_seq: not the leader; the leader is %d", e.Leader)
}

// Is makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// Indefinite reports whether a reply's error leaves the outcome open: the
// request's IDs may have been allocated (and then are a gap).
func Indefinite(err error) bool { return errors.Is(err, ErrUnknown) }

// Config configures a Core. Zero optional fields get defaults.
type Config struct {
	// ID is this node's raft ID, one of Peers. IDs are not 0.
	ID uint64
	// Peers lists the raft ID of every voter, ID included. Membership is
	// static: every node and every data dir of the cluster has the same.
	Peers []uint64
	// Seed seeds the election timeouts. The core mixes in ID, so nodes
	// given one seed still draw differently.
	Seed uint64
	// Incarnation must differ from one start of the node to the next (the
	// node draws it at random, a simulator from its seed). It tags this
	// start's proposals, so that an entry proposed before a restart is
	// never taken for a request of after it.
	Incarnation uint64
	// TickInterval is raft's tick: the leader sends heartbeats every tick.
	// Default 100ms.
	TickInterval time.Duration
	// ElectionTimeout is the least time without a leader after which a
	// node campaigns; each node draws its timeout from [ElectionTimeout,
	// 2*ElectionTimeout) with its seed. Default 1s. Use the same on every
	// node.
	ElectionTimeout time.Duration
	// RequestTimeout is how long a proposed request waits for its entry to
	// commit before it is answered ErrUnknown. Default 5s.
	RequestTimeout time.Duration
	// SnapshotEvery is how many applied entries make a snapshot, after
	// which the log before it can be dropped. Default 10,000.
	SnapshotEvery uint64
	// Redirect makes a follower refuse requests with a *NotLeaderError
	// instead of forwarding them to the leader.
	Redirect bool
	// MaxRange bounds one request's n; default rr_seq.DefaultMaxRange.
	MaxRange uint64
	// MaxNames bounds the names a request may add, checked against this
	// node's state when it is proposed (so the bound is approximate: it
	// is admission control, not part of the replicated state). Default
	// 100,000.
	MaxNames int
	// MaxPending bounds the requests in progress; default 4096.
	MaxPending int
	// Logger receives raft's and the core's logs; default discards them.
	Logger *slog.Logger
}

// WithDefaults returns c with unset optional fields filled in.
func (c Config) WithDefaults() Config {
	if c.TickInterval <= 0 {
		c.TickInterval = 100 * time.Millisecond
	}
	if c.ElectionTimeout <= 0 {
		c.ElectionTimeout = time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = 10_000
	}
	if c.MaxRange == 0 {
		c.MaxRange = rr_seq.DefaultMaxRange
	}
	if c.MaxNames <= 0 {
		c.MaxNames = 100_000
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 4096
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate returns an error unless c (after WithDefaults) is usable.
func (c Config) Validate() error {
	seen := map[uint64]bool{}
	for _, p := range c.Peers {
		if p == 0 {
			return errors.Wrap(seq.ErrInvalidArgument, "core: raft ID 0 in Peers")
		}
		if seen[p] {
			return errors.Wrapf(seq.ErrInvalidArgument, "core: raft ID %d listed twice", p)
		}
		seen[p] = true
	}
	switch {
	case !seen[c.ID]:
		return errors.Wrapf(seq.ErrInvalidArgument, "core: ID %d is not in Peers %v", c.ID, c.Peers)
	case c.ElectionTimeout < 2*c.TickInterval:
		return errors.Wrapf(seq.ErrInvalidArgument, "core: ElectionTimeout %v is under two ticks of %v", c.ElectionTimeout, c.TickInterval)
	}
	return nil
}

// State is a node's durable raft state, as its write-ahead log holds it:
// what NewCore starts from.
type State struct {
	// HardState is the last durable term, vote and commit index; nil none.
	HardState *raftpb.HardState
	// Snapshot is the last durable snapshot. Every state has one: a new
	// cluster's starts from Bootstrap's.
	Snapshot *raftpb.Snapshot
	// Entries are the log entries after the snapshot, in order.
	Entries []*raftpb.Entry
}

// LastIndex returns the index of the state's last entry (or snapshot).
func (s State) LastIndex() uint64 {
	if n := len(s.Entries); n > 0 {
		return s.Entries[n-1].GetIndex()
	}
	return s.Snapshot.GetMetadata().GetIndex()
}

// Apply applies a durable write to s, as the WAL does: a driver that
// models a disk in memory keeps each node's State this way, and starts
// the node from it after a crash. It checks the write first and changes
// nothing if it does not fit.
func (s *State) Apply(w Write) error { return applyWrite(s, w) }

// Fresh reports whether the state is still Bootstrap's: no vote cast, no
// term past the first, no entry after the bootstrap snapshot. Nothing can
// depend on a fresh node's past, so a node with no state may start a new
// cluster beside it (see the package doc).
func (s State) Fresh() bool {
	return s.HardState.GetTerm() <= 1 && s.HardState.GetVote() == 0 && s.LastIndex() <= 1
}

// Bootstrap returns the initial state of every node of a new cluster of
// the given voters: a snapshot at index 1, term 1, of no values.
func Bootstrap(peers []uint64) State {
	voters := slices.Clone(peers)
	slices.Sort(voters)
	return State{
		HardState: &raftpb.HardState{Term: new(uint64(1)), Commit: new(uint64(1))},
		Snapshot: &raftpb.Snapshot{
			Data: encodeValues(nil),
			Metadata: &raftpb.SnapshotMetadata{
				Index:     new(uint64(1)),
				Term:      new(uint64(1)),
				ConfState: &raftpb.ConfState{Voters: voters},
			},
		},
	}
}

// Request is one client request: n IDs of the sequence Name. ID is the
// driver's, unique among the requests pending at once.
type Request struct {
	ID   uint64
	Name string
	N    uint64
}

// Reply ends a request: a range, or why there is none.
type Reply struct {
	ID    uint64
	Range seq.Range
	Err   error
}

// Write is a record to make durable. Its parts apply in this order:
// Snapshot (entries at or before its index are obsolete), Entries (the
// first replaces every entry at and after its index), HardState.
type Write struct {
	// Seq numbers writes from 1, in the order they must become durable.
	Seq       uint64
	Snapshot  *raftpb.Snapshot
	Entries   []*raftpb.Entry
	HardState *raftpb.HardState
}

// Never is the Wake of a core that has nothing left to tick: one that
// stopped with ErrBroken.
const Never = time.Duration(math.MaxInt64)

// Output is what the driver carries out after a step:
//   - send Msgs now, in order (each names its recipient in To); raft
//     tolerates their loss, duplication and reordering;
//   - make Writes durable in order, and call Durable with the Seq of the
//     last one that is; messages that depend on a write are not in Msgs,
//     the core holds them until that call;
//   - give Replies;
//   - call Tick at Wake (a time on the same clock as now). The latest
//     Output's Wake replaces every earlier one.
type Output struct {
	Msgs    []*raftpb.Message
	Writes  []Write
	Replies []Reply
	Wake    time.Duration
}

// held is a write the driver has not yet made durable, and the messages
// raft wants delivered once it is.
type held struct {
	w         Write
	responses []*raftpb.Message
	local     bool // a snapshot the core made itself, already in storage
}

// request is a request in progress.
type request struct {
	Request
	deadline time.Duration
	// index is where its entry is in the log, once seen (0 until then).
	// An entry is proposed once, so it can only ever be at that index.
	index uint64
}

// Core is one raft_seq node's consensus and state machine.
//
// Elections are the core's own, drawn from its seed: raft's ElectionTick
// is so large that raft never campaigns by itself (its jitter comes from
// crypto/rand), and the core calls Campaign once it has heard from no
// leader for its drawn timeout. CheckQuorum is off, since with the large
// ElectionTick it would make followers ignore every vote; the core does its
// two jobs on its own clock instead (see the package doc).
type Core struct {
	cfg    Config
	log    *slog.Logger
	rn     *raft.RawNode
	ms     *raft.MemoryStorage
	conf   *raftpb.ConfState
	rng    *rand.Rand
	broken error

	values    map[string]uint64
	applied   uint64
	snapIndex uint64

	nextTick    time.Duration
	heard       time.Duration // last sign of a live leader, a vote cast, a campaign, or the start
	timeout     time.Duration // this node's current election timeout
	state       raft.StateType
	lead        uint64
	leaderSince time.Duration
	peerHeard   map[uint64]time.Duration

	seq      uint64
	inflight []held

	pending map[uint64]*request
}

// hugeElectionTick keeps raft from ever campaigning on its own.
const hugeElectionTick = 1 << 30

// NewCore starts a core at time now from a node's durable state.
func NewCore(cfg Config, st State, now time.Duration) (*Core, Output, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, Output{}, err
	}
	if st.Snapshot == nil || st.Snapshot.GetMetadata() == nil {
		return nil, Output{}, errors.Wrap(seq.ErrInvalidArgument, "core: state without a snapshot (a new node starts from Bootstrap)")
	}
	voters := slices.Clone(st.Snapshot.GetMetadata().GetConfState().GetVoters())
	slices.Sort(voters)
	want := slices.Clone(cfg.Peers)
	slices.Sort(want)
	if !slices.Equal(voters, want) {
		return nil, Output{}, errors.Wrapf(seq.ErrInvalidArgument, "core: the state's voters %v are not the configured peers %v", voters, want)
	}
	values, err := decodeValues(st.Snapshot.GetData())
	if err != nil {
		return nil, Output{}, err
	}
	c := &Core{
		cfg:       cfg,
		log:       cfg.Logger.With("raft_id", cfg.ID),
		ms:        raft.NewMemoryStorage(),
		conf:      st.Snapshot.GetMetadata().GetConfState(),
		rng:       rand.New(rand.NewPCG(cfg.Seed, cfg.ID^0x9e3779b97f4a7c15)),
		values:    values,
		applied:   st.Snapshot.GetMetadata().GetIndex(),
		snapIndex: st.Snapshot.GetMetadata().GetIndex(),
		peerHeard: map[uint64]time.Duration{},
		pending:   map[uint64]*request{},
		nextTick:  now + cfg.TickInterval,
		heard:     now,
	}
	c.timeout = c.drawTimeout()
	var out Output
	err = c.guard(func() {
		if err := c.ms.ApplySnapshot(st.Snapshot); err != nil {
			panic(err)
		}
		if hs := st.HardState; hs != nil {
			// Commit is not made durable before entries are applied, so a
			// snapshot may lie past the durable commit index; raft insists
			// that commit covers the snapshot.
			hs = &raftpb.HardState{Term: new(hs.GetTerm()), Vote: new(hs.GetVote()), Commit: new(max(hs.GetCommit(), c.applied))}
			if err := c.ms.SetHardState(hs); err != nil {
				panic(err)
			}
		}
		if err := c.ms.Append(st.Entries); err != nil {
			panic(err)
		}
		c.rn = c.newRawNode()
		c.drain(now, &out)
	})
	if err != nil {
		return nil, Output{}, errors.Wrap(err, "core: start raft")
	}
	out.Wake = c.wake()
	return c, out, nil
}

func (c *Core) newRawNode() *raft.RawNode {
	rn, err := raft.NewRawNode(&raft.Config{
		ID:                        c.cfg.ID,
		ElectionTick:              hugeElectionTick,
		HeartbeatTick:             1,
		Storage:                   c.ms,
		Applied:                   c.applied,
		AsyncStorageWrites:        true,
		MaxSizePerMsg:             1 << 20,
		MaxCommittedSizePerReady:  4 << 20,
		MaxUncommittedEntriesSize: 64 << 20,
		MaxInflightMsgs:           256,
		CheckQuorum:               false,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		Logger:                    raftLogger{c.log},
	})
	if err != nil {
		panic(err)
	}
	c.state, c.lead = raft.StateFollower, 0
	return rn
}

// drawTimeout draws an election timeout from [ElectionTimeout,
// 2*ElectionTimeout).
func (c *Core) drawTimeout() time.Duration {
	et := c.cfg.ElectionTimeout
	return et + time.Duration(c.rng.Int64N(int64(et)))
}

// guard runs f, turning a panic inside raft into ErrBroken: nothing a peer
// sends may bring the process down.
func (c *Core) guard(f func()) (err error) {
	if c.broken != nil {
		return c.broken
	}
	defer func() {
		if r := recover(); r != nil {
			c.broken = errors.Wrapf(ErrBroken, "%v", r)
			c.log.Error("raft stopped", "err", c.broken.Error())
			err = c.broken
		}
	}()
	f()
	return nil
}

// step runs f under guard and collects what raft has ready; if raft
// broke, every pending request is answered.
func (c *Core) step(now time.Duration, f func(out *Output)) Output {
	var out Output
	if err := c.guard(func() {
		f(&out)
		c.drain(now, &out)
	}); err != nil {
		c.failAll(&out, err)
	}
	out.Wake = c.wake()
	return out
}

func (c *Core) failAll(out *Output, err error) {
	for _, id := range c.pendingIDs() {
		out.Replies = append(out.Replies, Reply{ID: id, Err: brokenPending{err}})
		delete(c.pending, id)
	}
}

// pendingIDs returns the pending requests' IDs in order: replies built by
// walking the map must not depend on its order.
func (c *Core) pendingIDs() []uint64 {
	ids := make([]uint64, 0, len(c.pending))
	for id := range c.pending {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (c *Core) wake() time.Duration {
	if c.broken != nil {
		// Nothing ticks in a broken core, so its tick time never moves:
		// waking the driver at it would wake it again at once, forever.
		return Never
	}
	w := c.nextTick
	if c.state != raft.StateLeader {
		w = min(w, c.heard+c.timeout)
	}
	return w
}

// Request starts a client request at time now. A follower forwards it to
// the leader (or, with Config.Redirect, refuses it). Bad input is
// answered at once with an error and changes nothing.
func (c *Core) Request(now time.Duration, r Request) Output {
	if c.broken != nil {
		return Output{Replies: []Reply{{ID: r.ID, Err: c.broken}}, Wake: c.wake()}
	}
	refuse := func(err error) Output { return Output{Replies: []Reply{{ID: r.ID, Err: err}}, Wake: c.wake()} }
	if err := rr_seq.ValidateRangeRequest(r.Name, r.N, c.cfg.MaxRange); err != nil {
		return refuse(err)
	}
	if _, dup := c.pending[r.ID]; dup {
		return refuse(errors.Wrapf(ErrDuplicateRequest, "request %d", r.ID))
	}
	if len(c.pending) >= c.cfg.MaxPending {
		return refuse(errors.Wrapf(ErrBusy, "%d requests in progress, the limit", len(c.pending)))
	}
	if _, ok := c.values[r.Name]; !ok && len(c.values) >= c.cfg.MaxNames {
		return refuse(errors.Wrapf(ErrBusy, "%d sequence names, the limit", len(c.values)))
	}
	if c.state != raft.StateLeader {
		switch {
		case c.lead == 0:
			return refuse(errors.Wrap(ErrNoLeader, "no leader elected yet or lost: nothing proposed"))
		case c.cfg.Redirect:
			return refuse(&NotLeaderError{Leader: c.lead})
		}
	}
	data := command{origin: c.cfg.ID, inc: c.cfg.Incarnation, req: r.ID, n: r.N, name: r.Name}.encode()
	return c.step(now, func(out *Output) {
		if err := c.rn.Propose(data); err != nil {
			out.Replies = append(out.Replies, Reply{ID: r.ID, Err: errors.Wrapf(ErrDropped, "raft refused the proposal: %v", err)})
			return
		}
		c.pending[r.ID] = &request{Request: r, deadline: now + c.cfg.RequestTimeout}
	})
}

// Cancel forgets a request whose caller gave up. If its entry commits
// later, its IDs are a gap.
func (c *Core) Cancel(now time.Duration, id uint64) Output {
	delete(c.pending, id)
	return Output{Wake: c.wake()}
}

// networkMsg lists the raft messages a peer may send: everything this
// cluster's nodes send each other, nothing local, and no leadership
// transfer or read index, which raft_seq never uses.
var networkMsg = map[raftpb.MessageType]bool{
	raftpb.MessageType_MsgProp: true, raftpb.MessageType_MsgApp: true, raftpb.MessageType_MsgAppResp: true,
	raftpb.MessageType_MsgVote: true, raftpb.MessageType_MsgVoteResp: true, raftpb.MessageType_MsgSnap: true,
	raftpb.MessageType_MsgHeartbeat: true, raftpb.MessageType_MsgHeartbeatResp: true,
	raftpb.MessageType_MsgPreVote: true, raftpb.MessageType_MsgPreVoteResp: true,
}

// ValidateMessage returns an error unless m is a message a peer of this
// node may send it.
func (c *Core) ValidateMessage(m *raftpb.Message) error {
	switch {
	case m == nil:
		return errors.Wrap(seq.ErrInvalidArgument, "nil message")
	case !networkMsg[m.GetType()]:
		return errors.Wrapf(seq.ErrInvalidArgument, "message type %v is not one peers send", m.GetType())
	case m.GetTo() != c.cfg.ID:
		return errors.Wrapf(seq.ErrInvalidArgument, "message for %d, this node is %d", m.GetTo(), c.cfg.ID)
	case m.GetFrom() == c.cfg.ID && m.GetType() != raftpb.MessageType_MsgProp:
		// A proposal keeps its origin's From when raft forwards it, so
		// during a leader change this node's own proposal can come back
		// through a peer that took this node for the leader; raft takes it
		// like any other.
		return errors.Wrapf(seq.ErrInvalidArgument, "message from %d, this node", m.GetFrom())
	case !slices.Contains(c.cfg.Peers, m.GetFrom()):
		return errors.Wrapf(seq.ErrInvalidArgument, "message from %d, not a peer", m.GetFrom())
	case m.GetType() != raftpb.MessageType_MsgProp && m.GetTerm() == 0:
		return errors.Wrap(seq.ErrInvalidArgument, "message without a term")
	}
	if s := m.GetSnapshot(); s != nil {
		if _, err := decodeValues(s.GetData()); err != nil {
			return errors.Wrap(seq.ErrInvalidArgument, err.Error())
		}
		voters := slices.Clone(s.GetMetadata().GetConfState().GetVoters())
		slices.Sort(voters)
		want := slices.Clone(c.cfg.Peers)
		slices.Sort(want)
		if !slices.Equal(voters, want) {
			return errors.Wrapf(seq.ErrInvalidArgument, "snapshot of voters %v, not %v", voters, want)
		}
	}
	for _, e := range m.GetEntries() {
		if e.GetType() != raftpb.EntryType_EntryNormal {
			return errors.Wrapf(seq.ErrInvalidArgument, "entry of type %v: membership is static", e.GetType())
		}
		if m.GetType() == raftpb.MessageType_MsgProp {
			cmd, err := decodeCommand(e.GetData())
			if err != nil {
				return err
			}
			if cmd.origin != m.GetFrom() {
				return errors.Wrapf(seq.ErrInvalidArgument, "proposal of %d forwarded by %d", cmd.origin, m.GetFrom())
			}
		}
	}
	return nil
}

// Step feeds a message from a peer, at time now. A message that fails
// ValidateMessage is refused with an error and changes nothing.
func (c *Core) Step(now time.Duration, m *raftpb.Message) (Output, error) {
	if err := c.ValidateMessage(m); err != nil {
		return Output{Wake: c.wake()}, err
	}
	if c.broken != nil {
		return Output{Wake: c.wake()}, c.broken
	}
	t := m.GetType()
	if (t == raftpb.MessageType_MsgVote || t == raftpb.MessageType_MsgPreVote) && m.GetTerm() > c.rn.BasicStatus().GetTerm() && c.inLease(now) {
		// What CheckQuorum would do, on the core's clock: while this node
		// hears from a leader, a vote for a later term is ignored, so a
		// node that was cut off cannot depose a leader the others follow.
		return Output{Wake: c.wake()}, nil
	}
	out := c.step(now, func(*Output) {
		_ = c.rn.Step(m) // raft drops what it cannot use; it returns no error worth a caller's attention
		st := c.rn.BasicStatus()
		if m.GetTerm() == st.GetTerm() {
			c.peerHeard[m.GetFrom()] = now
		}
		switch t {
		case raftpb.MessageType_MsgApp, raftpb.MessageType_MsgHeartbeat, raftpb.MessageType_MsgSnap:
			if st.Lead == m.GetFrom() && st.GetTerm() == m.GetTerm() {
				c.heard = now
			}
		case raftpb.MessageType_MsgVote:
			if st.GetVote() == m.GetFrom() && st.GetTerm() == m.GetTerm() {
				c.heard = now // as raft does: a vote cast restarts the election timer
			}
		}
	})
	return out, nil
}

// inLease reports whether this node has a leader it heard from within the
// election timeout, or is a leader that heard from a quorum within it.
func (c *Core) inLease(now time.Duration) bool {
	switch {
	case c.state == raft.StateLeader:
		return c.quorumActive(now)
	case c.lead != 0:
		return now-c.heard < c.cfg.ElectionTimeout
	}
	return false
}

// quorumActive reports whether a quorum (this node included) was heard
// from within the election timeout.
func (c *Core) quorumActive(now time.Duration) bool {
	n := 1
	for _, p := range c.cfg.Peers {
		if p != c.cfg.ID {
			if t, ok := c.peerHeard[p]; ok && now-t < c.cfg.ElectionTimeout {
				n++
			}
		}
	}
	return n > len(c.cfg.Peers)/2
}

// Unreachable reports that a message to peer could not be sent.
func (c *Core) Unreachable(now time.Duration, peer uint64) Output {
	return c.step(now, func(*Output) { c.rn.ReportUnreachable(peer) })
}

// SnapshotSent reports whether a MsgSnap to peer was delivered.
func (c *Core) SnapshotSent(now time.Duration, peer uint64, ok bool) Output {
	st := raft.SnapshotFinish
	if !ok {
		st = raft.SnapshotFailure
	}
	return c.step(now, func(*Output) { c.rn.ReportSnapshot(peer, st) })
}

// Tick advances the core to time now: raft's ticks (heartbeats), this
// node's campaign if its election timeout passed, a leader's step-down
// if it lost its quorum, and the requests that timed out.
func (c *Core) Tick(now time.Duration) Output {
	return c.step(now, func(out *Output) {
		if iv := c.cfg.TickInterval; now-c.nextTick > 3*iv {
			c.nextTick += (now - c.nextTick) / iv * iv // a driver that fell behind gets a few ticks, not a burst
			c.nextTick -= 2 * iv
		}
		for c.nextTick <= now {
			c.rn.Tick()
			c.nextTick += c.cfg.TickInterval
		}
		switch {
		case c.state != raft.StateLeader && now >= c.heard+c.timeout:
			c.log.Debug("campaigning", "term", c.rn.BasicStatus().GetTerm(), "silent_for", now-c.heard)
			_ = c.rn.Campaign()
			c.heard = now
			c.timeout = c.drawTimeout()
		case c.state == raft.StateLeader && now-c.leaderSince >= c.cfg.ElectionTimeout && !c.quorumActive(now) && len(c.inflight) == 0:
			c.stepDown(now)
		}
		for _, id := range c.pendingIDs() {
			if p := c.pending[id]; p.deadline <= now {
				out.Replies = append(out.Replies, Reply{ID: id, Err: errors.Wrapf(ErrUnknown, "not seen to commit within %v", c.cfg.RequestTimeout)})
				delete(c.pending, id)
			}
		}
	})
}

// stepDown makes a leader that has heard from no quorum for an election
// timeout a follower, as CheckQuorum would. RawNode has no call for it, so
// the core starts raft afresh from its storage: what a restart does, with
// nothing lost, since no write is in flight.
func (c *Core) stepDown(now time.Duration) {
	c.log.Warn("stepping down: no quorum heard from within the election timeout", "term", c.rn.BasicStatus().GetTerm())
	c.rn = c.newRawNode()
	c.heard = now
	c.timeout = c.drawTimeout()
}

// Durable reports that every write up to and including Seq seq is
// durable. The core releases the messages that waited for them.
func (c *Core) Durable(now time.Duration, seq uint64) Output {
	return c.step(now, func(out *Output) {
		for len(c.inflight) > 0 && c.inflight[0].w.Seq <= seq {
			h := c.inflight[0]
			c.inflight = c.inflight[1:]
			if !h.local {
				c.stable(now, h.w, out)
			}
			for _, m := range h.responses {
				c.deliver(m, out)
			}
		}
	})
}

// stable puts a durable write into raft's storage.
func (c *Core) stable(now time.Duration, w Write, out *Output) {
	if s := w.Snapshot; s != nil {
		values, err := decodeValues(s.GetData())
		if err != nil {
			panic(errors.Wrap(err, "snapshot from the leader"))
		}
		if err := c.ms.ApplySnapshot(s); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
			panic(err)
		}
		if idx := s.GetMetadata().GetIndex(); idx > c.applied {
			c.values, c.applied, c.snapIndex = values, idx, idx
			c.conf = s.GetMetadata().GetConfState()
			// Requests whose entries the snapshot covers may have
			// allocated, but the range is folded into the snapshot.
			for _, id := range c.pendingIDs() {
				if p := c.pending[id]; p.index != 0 && p.index <= idx {
					out.Replies = append(out.Replies, Reply{ID: id, Err: errors.Wrap(ErrUnknown, "its entry came in a snapshot")})
					delete(c.pending, id)
				}
			}
		}
	}
	if err := c.ms.Append(w.Entries); err != nil {
		panic(err)
	}
	if w.HardState != nil {
		if err := c.ms.SetHardState(w.HardState); err != nil {
			panic(err)
		}
	}
}

// deliver hands a message raft produced to its recipient: this node's
// raft, or the driver.
func (c *Core) deliver(m *raftpb.Message, out *Output) {
	if m.GetTo() == c.cfg.ID || raft.IsLocalMsgTarget(m.GetTo()) {
		_ = c.rn.Step(m)
		return
	}
	out.Msgs = append(out.Msgs, m)
}

// drain takes what raft has ready: soft state changes, messages, writes
// (held until durable) and committed entries (applied at once).
func (c *Core) drain(now time.Duration, out *Output) {
	for c.rn.HasReady() {
		rd := c.rn.Ready()
		if ss := rd.SoftState; ss != nil {
			if ss.RaftState == raft.StateLeader && c.state != raft.StateLeader {
				c.leaderSince = now
				c.log.Info("became leader", "term", c.rn.BasicStatus().GetTerm())
			}
			if ss.Lead != c.lead && ss.Lead != 0 && ss.Lead != c.cfg.ID {
				c.heard = now
			}
			c.state, c.lead = ss.RaftState, ss.Lead
		}
		for _, m := range rd.Messages {
			switch m.GetTo() {
			case raft.LocalAppendThread:
				c.hold(m, out)
			case raft.LocalApplyThread:
				c.apply(now, m.GetEntries(), out)
				for _, r := range m.GetResponses() {
					c.deliver(r, out)
				}
			default:
				c.deliver(m, out)
			}
		}
	}
}

// hold turns a MsgStorageAppend into a Write, keeping its responses until
// the driver says it is durable.
func (c *Core) hold(m *raftpb.Message, out *Output) {
	c.seq++
	w := Write{Seq: c.seq, Entries: m.GetEntries(), Snapshot: m.GetSnapshot()}
	if m.Term != nil { // raft sets the hard state fields only when it changed
		w.HardState = &raftpb.HardState{Term: new(m.GetTerm()), Vote: new(m.GetVote()), Commit: new(m.GetCommit())}
	}
	for _, e := range w.Entries {
		if cmd, ok := c.own(e); ok {
			if p := c.pending[cmd.req]; p != nil {
				p.index = e.GetIndex()
			}
		}
	}
	c.inflight = append(c.inflight, held{w: w, responses: m.GetResponses()})
	out.Writes = append(out.Writes, w)
}

// own decodes e if it is a command of this start of this node.
func (c *Core) own(e *raftpb.Entry) (command, bool) {
	if e.GetType() != raftpb.EntryType_EntryNormal || len(e.GetData()) == 0 {
		return command{}, false
	}
	cmd, err := decodeCommand(e.GetData())
	if err != nil || cmd.origin != c.cfg.ID || cmd.inc != c.cfg.Incarnation {
		return command{}, false
	}
	return cmd, true
}

// apply applies committed entries to the state machine, answering this
// node's requests among them, and the requests whose index another entry
// took.
func (c *Core) apply(now time.Duration, ents []*raftpb.Entry, out *Output) {
	for _, e := range ents {
		if e.GetIndex() <= c.applied {
			continue // covered by a snapshot
		}
		c.applied = e.GetIndex()
		if e.GetType() != raftpb.EntryType_EntryNormal || len(e.GetData()) == 0 {
			continue // a new leader's empty entry
		}
		cmd, err := decodeCommand(e.GetData())
		if err != nil {
			c.log.Error("skipping an entry that does not decode", "index", e.GetIndex(), "err", err.Error())
			continue // every node skips it alike
		}
		r, err := allocate(c.values, cmd.name, cmd.n)
		if cmd.origin != c.cfg.ID || cmd.inc != c.cfg.Incarnation {
			continue
		}
		if p := c.pending[cmd.req]; p != nil && p.Name == cmd.name && p.N == cmd.n {
			out.Replies = append(out.Replies, Reply{ID: cmd.req, Range: r, Err: err})
			delete(c.pending, cmd.req)
		}
	}
	for _, id := range c.pendingIDs() {
		if p := c.pending[id]; p.index != 0 && p.index <= c.applied {
			out.Replies = append(out.Replies, Reply{ID: id, Err: errors.Wrapf(ErrDropped, "another entry committed at its index %d", p.index)})
			delete(c.pending, id)
		}
	}
	if c.applied-c.snapIndex >= c.cfg.SnapshotEvery {
		c.snapshot(out)
	}
}

// snapshot snapshots the state at the applied index, keeps a few entries
// for followers a little behind, and asks the driver to make it durable so
// that the log before it can go.
func (c *Core) snapshot(out *Output) {
	snap, err := c.ms.CreateSnapshot(c.applied, c.conf, encodeValues(c.values))
	if err != nil {
		panic(err)
	}
	c.snapIndex = c.applied
	if keep := c.cfg.SnapshotEvery / 4; c.applied > keep+1 {
		if err := c.ms.Compact(c.applied - keep); err != nil && !errors.Is(err, raft.ErrCompacted) {
			panic(err)
		}
	}
	c.seq++
	w := Write{Seq: c.seq, Snapshot: snap}
	c.inflight = append(c.inflight, held{w: w, local: true})
	out.Writes = append(out.Writes, w)
}

// Status is what a core says of itself.
type Status struct {
	ID        uint64
	Term      uint64
	Vote      uint64
	Leader    uint64 // 0: none known
	State     string // follower, candidate, pre-candidate or leader
	Commit    uint64
	LastIndex uint64
	Applied   uint64
	Pending   int // requests in progress
	Inflight  int // writes not yet durable
	Broken    error
}

// Status returns the core's status.
func (c *Core) Status() Status {
	s := Status{ID: c.cfg.ID, Applied: c.applied, Pending: len(c.pending), Inflight: len(c.inflight), Broken: c.broken,
		Leader: c.lead, State: stateName(c.state)}
	if c.rn != nil {
		bs := c.rn.BasicStatus()
		s.Term, s.Vote, s.Commit = bs.GetTerm(), bs.GetVote(), bs.GetCommit()
		s.LastIndex, _ = c.ms.LastIndex()
		if len(c.inflight) > 0 {
			for _, h := range c.inflight {
				if n := len(h.w.Entries); n > 0 {
					s.LastIndex = max(s.LastIndex, h.w.Entries[n-1].GetIndex())
				}
			}
		}
	}
	return s
}

func stateName(s raft.StateType) string {
	switch s {
	case raft.StateFollower:
		return "follower"
	case raft.StateCandidate:
		return "candidate"
	case raft.StatePreCandidate:
		return "pre-candidate"
	case raft.StateLeader:
		return "leader"
	}
	return s.String()
}

// Fresh reports whether the node is still as Bootstrap left it, counting
// what it has not yet made durable (see State.Fresh).
func (s Status) Fresh() bool { return s.Term <= 1 && s.Vote == 0 && s.LastIndex <= 1 }

// Values returns a copy of the applied state: each name's next ID.
func (c *Core) Values() map[string]uint64 {
	out := make(map[string]uint64, len(c.values))
	for k, v := range c.values {
		out[k] = v
	}
	return out
}

// DescribeMessage is a raft message's one text form, as in traces.
func DescribeMessage(m *raftpb.Message) string { return raft.DescribeMessage(m, formatEntry) }

// raftLogger sends raft's logs to slog. Raft's Info is chatty (every
// election, every term), so it goes to Debug. Fatal and Panic panic, and
// Core.guard recovers them: raft must never exit the process.
type raftLogger struct{ l *slog.Logger }

func (r raftLogger) Debug(v ...any)                 { r.l.Debug("raft: " + fmt.Sprint(v...)) }
func (r raftLogger) Debugf(format string, v ...any) { r.l.Debug("raft: " + fmt.Sprintf(format, v...)) }
func (r raftLogger) Info(v ...any)                  { r.l.Debug("raft: " + fmt.Sprint(v...)) }
func (r raftLogger) Infof(format string, v ...any)  { r.l.Debug("raft: " + fmt.Sprintf(format, v...)) }
func (r raftLogger) Warning(v ...any)               { r.l.Warn("raft: " + fmt.Sprint(v...)) }
func (r raftLogger) Warningf(format string, v ...any) {
	r.l.Warn("raft: " + fmt.Sprintf(format, v...))
}
func (r raftLogger) Error(v ...any)                 { r.l.Error("raft: " + fmt.Sprint(v...)) }
func (r raftLogger) Errorf(format string, v ...any) { r.l.Error("raft: " + fmt.Sprintf(format, v...)) }
func (r raftLogger) Fatal(v ...any)                 { panic("raft: " + fmt.Sprint(v...)) }
func (r raftLogger) Fatalf(format string, v ...any) { panic("raft: " + fmt.Sprintf(format, v...)) }
func (r raftLogger) Panic(v ...any)                 { panic("raft: " + fmt.Sprint(v...)) }
func (r raftLogger) Panicf(format string, v ...any) { panic("raft: " + fmt.Sprintf(format, v...)) }
