package rr_seq

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/seq"
)

// This file is the core of rr_seq: a synchronous state machine with no
// goroutines, clocks, contexts or I/O. The gRPC node (node.go) and the lab's
// deterministic simulator both drive it: they feed it requests, peer replies
// and peer failures, and carry out what it returns (messages to send, values
// to persist, replies to give).

// MaxNameLen is the longest sequence name a node accepts, in bytes.
const MaxNameLen = 256

// WriteRule is the condition under which a replica accepts the conditional
// write Set(name, base, value).
type WriteRule int

const (
	// SetIfUnchanged accepts when the replica's current value is at most
	// base, the value the coordinator read. Two coordinators that read the
	// same base compete for the same replicas and at most one of them can
	// win a majority. This is the default and it is safe.
	SetIfUnchanged WriteRule = iota
	// SetIfGreater accepts when the replica's current value is below the new
	// value. It is the original design's rule and it is unsafe: see the
	// package documentation for the interleaving that hands out one range
	// twice.
	SetIfGreater
)

// String returns the rule's flag form.
func (r WriteRule) String() string {
	switch r {
	case SetIfUnchanged:
		return "set-if-unchanged"
	case SetIfGreater:
		return "set-if-greater"
	}
	return fmt.Sprintf("write-rule(%d)", int(r))
}

// ParseWriteRule parses the flag form of a write rule.
func ParseWriteRule(s string) (WriteRule, error) {
	switch s {
	case "set-if-unchanged", "":
		return SetIfUnchanged, nil
	case "set-if-greater":
		return SetIfGreater, nil
	}
	return 0, errors.Wrapf(seq.ErrInvalidArgument, "unknown write rule %q (want set-if-unchanged or set-if-greater)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (r WriteRule) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *WriteRule) UnmarshalText(b []byte) error {
	v, err := ParseWriteRule(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// ValidateName returns an error unless name is a usable sequence name.
func ValidateName(name string) error {
	switch {
	case name == "":
		return errors.Wrap(seq.ErrInvalidArgument, "sequence name is empty")
	case len(name) > MaxNameLen:
		return errors.Wrapf(seq.ErrInvalidArgument, "sequence name is %d bytes, the limit is %d", len(name), MaxNameLen)
	case strings.ContainsAny(name, "\x00\n"):
		return errors.Wrap(seq.ErrInvalidArgument, "sequence name contains NUL or newline")
	case !utf8.ValidString(name):
		return errors.Wrap(seq.ErrInvalidArgument, "sequence name is not valid UTF-8")
	}
	return nil
}

// DefaultMaxRange is the largest range one request may ask for unless the
// node is configured otherwise: a client that wants more asks again.
const DefaultMaxRange = 1 << 20

// ValidateRangeRequest returns an error unless a range of n IDs of name may
// be asked for, with at most maxRange IDs in one request (0: no limit but
// the ID space).
func ValidateRangeRequest(name string, n, maxRange uint64) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if n == 0 {
		return errors.Wrap(seq.ErrInvalidArgument, "range size n must be at least 1")
	}
	if maxRange > 0 && n > maxRange {
		return errors.Wrapf(seq.ErrInvalidArgument, "range size %d is over the limit of %d IDs per request", n, maxRange)
	}
	if n > math.MaxUint64-uint64(seq.FirstID) {
		return errors.Wrapf(seq.ErrInvalidArgument, "range size %d overflows the ID space", n)
	}
	return nil
}

// Replica is one node's state: for each sequence name, the lowest ID it has
// not seen allocated. A missing name is at seq.FirstID.
type Replica struct {
	rule     WriteRule
	values   map[string]uint64
	maxNames int
}

// LimitNames bounds the names the replica holds: a write that would add a
// name past n is refused (Full reports it). 0 is no bound.
func (r *Replica) LimitNames(n int) { r.maxNames = n }

// Full reports whether a write of name would be refused because the
// replica holds as many names as it may.
func (r *Replica) Full(name string) bool {
	if r.maxNames <= 0 || len(r.values) < r.maxNames {
		return false
	}
	_, ok := r.values[name]
	return !ok
}

// Len returns the number of names the replica holds.
func (r *Replica) Len() int { return len(r.values) }

// NewReplica returns a replica that applies rule, starting from values
// (which it copies; nil is empty).
func NewReplica(rule WriteRule, values map[string]uint64) *Replica {
	r := &Replica{rule: rule, values: make(map[string]uint64, len(values))}
	for k, v := range values {
		r.values[k] = v
	}
	return r
}

// Get returns the current value of name.
func (r *Replica) Get(name string) uint64 {
	if v, ok := r.values[name]; ok {
		return v
	}
	return uint64(seq.FirstID)
}

// Set applies the conditional write and reports whether it was accepted,
// the value after the call, and whether the value changed (and so must be
// made durable before the acceptance is acknowledged).
func (r *Replica) Set(name string, base, value uint64) (accepted bool, current uint64, changed bool) {
	cur := r.Get(name)
	if value <= base || r.Full(name) {
		return false, cur, false // not a valid write, or no room; never accept
	}
	switch r.rule {
	case SetIfGreater:
		accepted = cur < value
	default:
		accepted = cur <= base
	}
	if !accepted {
		return false, cur, false
	}
	r.values[name] = value
	return true, value, true
}

// Merge raises each of values' names to at least its value, as a
// recovering node does with the states of its peers. It ignores the name
// bound: a recovering node must hold what its peers hold.
func (r *Replica) Merge(values map[string]uint64) {
	for k, v := range values {
		if v > r.Get(k) {
			r.values[k] = v
		}
	}
}

// Snapshot returns a copy of every value.
func (r *Replica) Snapshot() map[string]uint64 {
	out := make(map[string]uint64, len(r.values))
	for k, v := range r.values {
		out[k] = v
	}
	return out
}

// Quorum is the shape of a cluster: N peers, read quorum R, write quorum W.
type Quorum struct {
	N, R, W int
}

// DefaultQuorum returns majority read and write quorums for n nodes.
func DefaultQuorum(n int) Quorum { return Quorum{N: n, R: n/2 + 1, W: n/2 + 1} }

// Validate returns an error unless q is usable. Unless unsafe is set it also
// insists on R+W > N (reads see the latest completed write) and W > N/2
// (two concurrent writes with the same base cannot both win).
func (q Quorum) Validate(unsafe bool) error {
	switch {
	case q.N < 1:
		return errors.Wrap(seq.ErrInvalidArgument, "a cluster needs at least one node")
	case q.R < 1 || q.R > q.N:
		return errors.Wrapf(seq.ErrInvalidArgument, "R=%d is outside 1..N=%d", q.R, q.N)
	case q.W < 1 || q.W > q.N:
		return errors.Wrapf(seq.ErrInvalidArgument, "W=%d is outside 1..N=%d", q.W, q.N)
	case unsafe:
		return nil
	case q.R+q.W <= q.N:
		return errors.Wrapf(seq.ErrInvalidArgument, "R+W=%d <= N=%d: reads can miss the latest write and hand out an ID twice (set the unsafe option to allow it)", q.R+q.W, q.N)
	case 2*q.W <= q.N:
		return errors.Wrapf(seq.ErrInvalidArgument, "W=%d is not a majority of N=%d: two concurrent writes can both succeed (set the unsafe option to allow it)", q.W, q.N)
	}
	return nil
}

// String returns e.g. "N=3 R=2 W=2".
func (q Quorum) String() string { return fmt.Sprintf("N=%d R=%d W=%d", q.N, q.R, q.W) }

// OpID names one NextRange operation of a coordinator.
type OpID uint64

// MsgKind is the kind of a peer message.
type MsgKind int

const (
	// MsgGet asks a peer for its current value.
	MsgGet MsgKind = iota + 1
	// MsgSet asks a peer for the conditional write.
	MsgSet
)

func (k MsgKind) String() string {
	switch k {
	case MsgGet:
		return "get"
	case MsgSet:
		return "set"
	case MsgState:
		return "state"
	}
	return fmt.Sprintf("msg(%d)", int(k))
}

// Msg is a request the coordinator wants sent to a peer. The reply, or the
// failure to get one, goes back to the coordinator tagged with Op, Round
// and To.
type Msg struct {
	Op    OpID
	Round uint32
	To    string
	Kind  MsgKind
	Name  string
	Base  uint64 // MsgSet only
	Value uint64 // MsgSet only
}

// String is the message's one text form, used in logs and traces.
func (m Msg) String() string {
	switch m.Kind {
	case MsgSet:
		return fmt.Sprintf("op%d.%d %s set(%q, base=%d, value=%d)", m.Op, m.Round, m.To, m.Name, m.Base, m.Value)
	case MsgState:
		return fmt.Sprintf("recovery.%d %s state()", m.Round, m.To)
	}
	return fmt.Sprintf("op%d.%d %s get(%q)", m.Op, m.Round, m.To, m.Name)
}

// Done reports the end of an operation: a range, or why there is none.
type Done struct {
	Op    OpID
	Range seq.Range
	Err   error
}

// Output is what the driver must carry out after a step: send Msgs, wait
// and then call Retry for each op in Backoff, call Hedge for each entry of
// Hedge if its round is still running after the hedge delay, and give the
// replies in Done.
type Output struct {
	Msgs    []Msg
	Backoff []Backoff
	Hedge   []Hedge
	Done    []Done
}

// Hedge asks the driver to call Hedge(Op, Round) after the hedge delay: the
// round went to a quorum only, and if some of them are slow or gone the
// other peers are asked too.
type Hedge struct {
	Op    OpID
	Round uint32
}

// Backoff asks the driver to call Retry(Op) after a pause that grows with
// Attempt.
type Backoff struct {
	Op      OpID
	Attempt int
	// Unreachable is true when the round failed because too few peers
	// answered, false when it lost to a concurrent write.
	Unreachable bool
}

func (o *Output) merge(p Output) {
	o.Msgs = append(o.Msgs, p.Msgs...)
	o.Backoff = append(o.Backoff, p.Backoff...)
	o.Hedge = append(o.Hedge, p.Hedge...)
	o.Done = append(o.Done, p.Done...)
}

type phase int

const (
	phaseRead phase = iota
	phaseWrite
	phaseBackoff
)

type op struct {
	name     string
	n        uint64
	round    uint32
	phase    phase
	attempt  int
	replied  []string // peers that answered this round: a few, so a slice
	sent     int      // peers[:sent] of the op's peer order have the round's message
	order    []string
	ok, fail int
	max      uint64        // read phase: highest value seen
	base     uint64        // write phase: the base being written
	wstart   time.Duration // write phase: when the round began
}

// Coordinator runs the NextRange protocol for one node: read R values, keep
// the highest, write base+n to W peers with the conditional write, and
// retry with fresh reads when a round cannot succeed.
//
// A round first goes to just enough peers for its quorum, the coordinator
// itself first (its answer is local and cheap), the others in an order that
// rotates from op to op to spread the load. Each failure or refusal brings
// in one more peer, and a Hedge brings in all the rest. With FanoutAll
// every round goes to every peer at once.
type Coordinator struct {
	self   string
	peers  []string
	all    bool
	q      Quorum
	limits Limits
	next   OpID
	ops    map[OpID]*op
}

// DefaultRoundLife is the default of Limits.RoundLife.
const DefaultRoundLife = 2 * time.Second

// Limits bound what a coordinator takes on.
type Limits struct {
	// RoundLife bounds a write round: an acceptance that arrives more than
	// RoundLife after the round began is not counted, and the op starts
	// over with fresh reads. It is what lets a node that lost its state
	// recover safely: once it has waited out RoundLife (see RecoveryWait),
	// no coordinator still counts an acceptance it gave before it lost
	// its state. Default DefaultRoundLife.
	RoundLife time.Duration
	// MaxRange bounds the size of one request; default DefaultMaxRange.
	MaxRange uint64
}

// WithDefaults fills the unset limits.
func (l Limits) WithDefaults() Limits {
	if l.RoundLife <= 0 {
		l.RoundLife = DefaultRoundLife
	}
	if l.MaxRange == 0 {
		l.MaxRange = DefaultMaxRange
	}
	return l
}

// Fanout says how many peers a round is first sent to.
type Fanout int

const (
	// FanoutQuorum sends a round to R (or W) peers, more on failure or
	// hedge. It halves the messages of a healthy cluster.
	FanoutQuorum Fanout = iota
	// FanoutAll sends every round to every peer.
	FanoutAll
)

// NewCoordinator returns the coordinator of node self over peers (every
// node of the cluster, self included) with read and write quorums r and w.
// It does not validate the quorum: the node's Config does.
func NewCoordinator(self string, peers []string, r, w int, fanout Fanout) *Coordinator {
	return &Coordinator{
		self:   self,
		peers:  append([]string(nil), peers...),
		all:    fanout == FanoutAll,
		q:      Quorum{N: len(peers), R: r, W: w},
		limits: Limits{}.WithDefaults(),
		ops:    map[OpID]*op{},
	}
}

// SetLimits replaces the coordinator's limits (unset ones get defaults).
func (c *Coordinator) SetLimits(l Limits) { c.limits = l.WithDefaults() }

// Limits returns the coordinator's limits.
func (c *Coordinator) Limits() Limits { return c.limits }

// Start begins allocating n IDs of name. An invalid request is refused with
// an error and changes nothing.
func (c *Coordinator) Start(name string, n uint64) (OpID, Output, error) {
	if err := ValidateRangeRequest(name, n, c.limits.MaxRange); err != nil {
		return 0, Output{}, err
	}
	c.next++
	id := c.next
	o := &op{name: name, n: n, order: c.order(id)}
	c.ops[id] = o
	return id, c.read(id, o), nil
}

// order returns the order in which op id contacts peers: self first, then
// the others rotated by id.
func (c *Coordinator) order(id OpID) []string {
	out := make([]string, 0, len(c.peers))
	var others []string
	for _, p := range c.peers {
		if p == c.self {
			out = append(out, p)
		} else {
			others = append(others, p)
		}
	}
	if k := len(others); k > 0 {
		r := int(uint64(id) % uint64(k))
		out = append(out, others[r:]...)
		out = append(out, others[:r]...)
	}
	return out
}

// begin starts a round of kind k: it sends to a quorum (or everyone).
func (c *Coordinator) begin(id OpID, o *op, k MsgKind, need int) Output {
	o.round++
	o.ok, o.fail, o.sent = 0, 0, 0
	o.replied = o.replied[:0]
	first := need
	if c.all {
		first = len(o.order)
	}
	out := Output{Msgs: c.send(id, o, k, first)}
	if o.sent < len(o.order) {
		out.Hedge = []Hedge{{Op: id, Round: o.round}}
	}
	return out
}

// send sends the round's message to the next k peers not yet asked.
func (c *Coordinator) send(id OpID, o *op, kind MsgKind, k int) []Msg {
	k = min(k, len(o.order)-o.sent)
	if k <= 0 {
		return nil
	}
	msgs := make([]Msg, 0, k)
	for ; k > 0 && o.sent < len(o.order); k-- {
		m := Msg{Op: id, Round: o.round, To: o.order[o.sent], Kind: kind, Name: o.name}
		if kind == MsgSet {
			m.Base, m.Value = o.base, o.base+o.n
		}
		msgs = append(msgs, m)
		o.sent++
	}
	return msgs
}

func (o *op) kind() MsgKind {
	if o.phase == phaseWrite {
		return MsgSet
	}
	return MsgGet
}

// Hedge sends the round to every peer not asked yet, if the round is still
// running.
func (c *Coordinator) Hedge(id OpID, round uint32) Output {
	o := c.ops[id]
	if o == nil || o.round != round || o.phase == phaseBackoff {
		return Output{}
	}
	return Output{Msgs: c.send(id, o, o.kind(), len(o.order))}
}

// Pending returns the number of operations in progress.
func (c *Coordinator) Pending() int { return len(c.ops) }

func (c *Coordinator) read(id OpID, o *op) Output {
	o.phase = phaseRead
	o.max = 0
	return c.begin(id, o, MsgGet, c.q.R)
}

func (c *Coordinator) write(now time.Duration, id OpID, o *op) Output {
	base := max(o.max, uint64(seq.FirstID))
	if base > math.MaxUint64-o.n {
		delete(c.ops, id)
		return Output{Done: []Done{{Op: id, Err: errors.Wrapf(seq.ErrOverflow, "range of %d IDs from %d would run past the last ID", o.n, base)}}}
	}
	o.phase = phaseWrite
	o.base = base
	o.wstart = now
	return c.begin(id, o, MsgSet, c.q.W)
}

// current returns the op a reply is for, or nil if the reply is stale (the
// op is gone or has moved to another round) or a duplicate.
func (c *Coordinator) current(id OpID, round uint32, from string) *op {
	o := c.ops[id]
	if o == nil || o.round != round || o.phase == phaseBackoff || slices.Contains(o.replied, from) {
		return nil
	}
	o.replied = append(o.replied, from)
	return o
}

// GetReply feeds a peer's answer to a MsgGet, at time now (any monotonic
// clock the driver keeps; only differences matter).
func (c *Coordinator) GetReply(now time.Duration, id OpID, round uint32, from string, value uint64) Output {
	o := c.current(id, round, from)
	if o == nil || o.phase != phaseRead {
		return Output{}
	}
	o.ok++
	o.max = max(o.max, value)
	if o.ok >= c.q.R {
		return c.write(now, id, o)
	}
	return Output{}
}

// SetReply feeds a peer's answer to a MsgSet, at time now. An answer that
// arrives more than Limits.RoundLife after its round began ends the round
// uncounted: the op backs off and starts over.
func (c *Coordinator) SetReply(now time.Duration, id OpID, round uint32, from string, accepted bool, current uint64) Output {
	o := c.current(id, round, from)
	if o == nil || o.phase != phaseWrite {
		return Output{}
	}
	if now-o.wstart > c.limits.RoundLife {
		return c.backoff(id, o, true)
	}
	if !accepted {
		o.fail++
		return c.checkLost(id, o, false)
	}
	o.ok++
	if o.ok >= c.q.W {
		delete(c.ops, id)
		return Output{Done: []Done{{Op: id, Range: seq.Range{From: seq.ID(o.base), To: seq.ID(o.base + o.n)}}}}
	}
	return Output{}
}

// PeerFailed reports that a message of the given round got no answer.
func (c *Coordinator) PeerFailed(id OpID, round uint32, from string) Output {
	o := c.current(id, round, from)
	if o == nil {
		return Output{}
	}
	o.fail++
	return c.checkLost(id, o, true)
}

// checkLost backs the op off once its round can no longer reach quorum.
func (c *Coordinator) checkLost(id OpID, o *op, unreachable bool) Output {
	need := c.q.R
	if o.phase == phaseWrite {
		need = c.q.W
	}
	if len(c.peers)-o.fail >= need {
		// Still possible: bring in one more peer for the one lost.
		return Output{Msgs: c.send(id, o, o.kind(), 1)}
	}
	return c.backoff(id, o, unreachable)
}

func (c *Coordinator) backoff(id OpID, o *op, unreachable bool) Output {
	o.phase = phaseBackoff
	o.attempt++
	return Output{Backoff: []Backoff{{Op: id, Attempt: o.attempt, Unreachable: unreachable}}}
}

// Retry starts a fresh round of reads for an op that was backed off.
func (c *Coordinator) Retry(id OpID) Output {
	o := c.ops[id]
	if o == nil || o.phase != phaseBackoff {
		return Output{}
	}
	return c.read(id, o)
}

// Cancel forgets an op (its caller gave up). Later replies are ignored.
func (c *Coordinator) Cancel(id OpID) { delete(c.ops, id) }
