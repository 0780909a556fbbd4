package rr_seq

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/seq"
)

// This file is the core of rr_seq: a synchronous state machine with no
// goroutines, clocks, contexts or I/O. The gRPC node (node.go) and the lab's
// deterministic simulator both drive it: they feed it requests, peer replies
// and peer failures, and carry out what it returns (messages to send, values
// to persist, replies to give).

// MaxNameLen is the longest sequence name a node accepts, in bytes.
const MaxNameLen = seq.MaxNameLen

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
func ValidateName(name string) error { return seq.ValidateName(name) }

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
	values   map[string]*uint64
	maxNames int
	// last is the name the last lookup found, and lastV its value: most
	// calls name the sequence the one before did.
	last  string
	lastV *uint64
}

// cell is name's value, nil if the replica does not hold the name.
func (r *Replica) cell(name string) *uint64 {
	if r.lastV != nil && name == r.last {
		return r.lastV
	}
	p := r.values[name]
	if p != nil {
		r.last, r.lastV = name, p
	}
	return p
}

// put sets name's value, adding the name if it is new.
func (r *Replica) put(name string, p *uint64, v uint64) {
	if p == nil {
		p = new(uint64)
		r.values[name] = p
		r.last, r.lastV = name, p
	}
	*p = v
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
	return r.cell(name) == nil
}

// Len returns the number of names the replica holds.
func (r *Replica) Len() int { return len(r.values) }

// NewReplica returns a replica that applies rule, starting from values
// (which it copies; nil is empty).
func NewReplica(rule WriteRule, values map[string]uint64) *Replica {
	r := &Replica{rule: rule, values: make(map[string]*uint64, len(values))}
	for k, v := range values {
		r.put(k, nil, v)
	}
	return r
}

// Get returns the current value of name.
func (r *Replica) Get(name string) uint64 {
	if p := r.cell(name); p != nil {
		return *p
	}
	return uint64(seq.FirstID)
}

// Set applies the conditional write and reports whether it was accepted,
// the value after the call, and whether the value changed (and so must be
// made durable before the acceptance is acknowledged).
func (r *Replica) Set(name string, base, value uint64) (accepted bool, current uint64, changed bool) {
	p := r.cell(name)
	cur := uint64(seq.FirstID)
	if p != nil {
		cur = *p
	}
	if value <= base || p == nil && r.maxNames > 0 && len(r.values) >= r.maxNames {
		return false, cur, false // not a valid write, or no room (Full); never accept
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
	r.put(name, p, value)
	return true, value, true
}

// Merge raises each of values' names to at least its value, as a
// recovering node does with the states of its peers. It ignores the name
// bound: a recovering node must hold what its peers hold.
func (r *Replica) Merge(values map[string]uint64) {
	for k, v := range values {
		if p := r.cell(k); p == nil || v > *p {
			if p == nil && v <= uint64(seq.FirstID) {
				continue // as low as a name it does not hold
			}
			r.put(k, p, v)
		}
	}
}

// Snapshot returns a copy of every value.
func (r *Replica) Snapshot() map[string]uint64 {
	out := make(map[string]uint64, len(r.values))
	for k, p := range r.values {
		out[k] = *p
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

// merge appends p to o. It may take p's slices rather than copy them, so
// p must be a step's fresh Output that nothing else keeps.
func (o *Output) merge(p Output) {
	o.Msgs = appendOrTake(o.Msgs, p.Msgs)
	o.Backoff = appendOrTake(o.Backoff, p.Backoff)
	o.Hedge = appendOrTake(o.Hedge, p.Hedge)
	o.Done = appendOrTake(o.Done, p.Done)
}

// appendOrTake returns append(a, b...), or b itself when a is empty: b is
// then no longer its caller's.
func appendOrTake[T any](a, b []T) []T {
	if len(a) == 0 && len(b) > 0 {
		return b
	}
	return append(a, b...)
}

// slab hands out the slices of Outputs, cut from one larger allocation so
// that a step does not allocate each of them. A slice is filled before it
// is handed out and never written again, and its capacity ends at its
// length (so an append copies it): the drivers are re-entrant, and an
// Output must stay valid and unchanged whatever the coordinator does next.
// A slab the coordinator has moved past is collected once no Output that
// was cut from it is kept.
type slab[T any] struct{ free []T }

// slabLen is how many elements a slab takes at a time: a few hundred bytes
// to a few kilobytes, a few dozen steps' worth.
const slabLen = 64

// take returns a slice of n zero elements that no one else holds.
func (s *slab[T]) take(n int) []T {
	if n > len(s.free) {
		s.free = make([]T, max(n, slabLen))
	}
	out := s.free[:n:n]
	s.free = s.free[n:]
	return out
}

type phase int

const (
	phaseRead    phase = iota
	phaseWrite         // the write is sent: no request may join any more
	phaseBackoff       // waiting to start over with a read
	phaseWait          // ready to write, while another batch of the name writes
)

// member is one request of a batch.
type member struct {
	id OpID
	n  uint64
}

// op is a batch: the requests for one name that share one allocation. Its
// OpID is its first request's.
type op struct {
	id      OpID
	name    string
	members []member // in join order; each gets its sub-range in turn
	n       uint64   // the members' sizes summed: the size written
	hint    uint64   // the highest usable hint of a member (0: none)
	round   uint32
	phase   phase
	attempt int
	// replied has bit i set if the coordinator's peers[i] answered this
	// round; repliedOther holds the others that did (a peer past the 64th,
	// or a name that is none of the peers).
	replied      uint64
	repliedOther []string
	sent         int      // peers[:sent] of the op's peer order have the round's message
	order        []string // shared with other ops: read-only
	ok, fail     int
	max          uint64        // read phase: highest value seen
	base         uint64        // write phase: the base being written
	wstart       time.Duration // write phase: when the round began
	guessed      int           // write rounds since the last read
	cached       bool          // write phase: base came from what the coordinator knew, not from a read
	current      uint64        // write phase: highest current value among refusals

	unreachable bool              // the last round failed for want of peers
	failures    map[string]string // why peers failed, for the caller's error
}

// nameState is what a coordinator keeps per sequence name.
type nameState struct {
	// known is the highest value the coordinator has seen replicas hold
	// or take for the name: from reads, refusals and its own winning
	// writes. Replica values only go up, so it is a lower bound on the
	// name's current value, and the base of the next write-only round.
	known   uint64
	writing OpID   // the batch in its write phase, 0 if none
	batches []OpID // the name's batches, oldest first
}

// Planted are deliberate protocol bugs, for the lab's own tests: each
// must be caught. None is ever right to set in production.
type Planted struct {
	// TrustCache: a write-only round whose base came from the
	// coordinator's cache counts refusals as acceptances, as a
	// coordinator that trusted its cache and wrote unconditionally would.
	TrustCache bool
	// LateJoin lets a request join a batch whose write was already sent:
	// its sub-range then lies past what the write claimed.
	LateJoin bool
	// RejoinEmpty lets a node that lost its state (in memory, after a
	// restart) act as a replica at once instead of recovering: the bug
	// the lab found in rr_seq, which a plain hunt catches on few seeds.
	RejoinEmpty bool
	// ShunReset: a coordinator never asks a peer again once a connection
	// to it was reset or refused, so a node whose peers crashed, or whose
	// links were reset, stays unavailable after every fault healed. It
	// breaks liveness, not safety.
	ShunReset bool
}

// Coordinator runs the NextRange protocol for one node.
//
// The full protocol reads R values, keeps the highest, and writes base+n
// to W peers with the conditional write. Most allocations need only the
// write: the coordinator remembers, per name, the highest value it has
// seen (its last winning write, or the current value a refusal carries),
// and starts with a write-only round from there. A refusal carries the
// replica's current value, and the op retries write-only once from the
// highest of those; after that it backs off and starts over with reads.
//
// Concurrent requests for one name coalesce: a request joins the name's
// batch that has not sent its write yet, and the batch allocates the sum
// of its members' sizes in one write, each member getting its own
// sub-range. A name has at most one batch writing at a coordinator; a
// batch that is ready meanwhile waits, taking joiners, and writes from
// the winner's value as soon as it is done.
//
// A round first goes to just enough peers for its quorum, the coordinator
// itself first (its answer is local and cheap), the others in an order that
// rotates from op to op to spread the load. Each failure or refusal brings
// in one more peer, and a Hedge brings in all the rest. With FanoutAll
// every round goes to every peer at once.
type Coordinator struct {
	self    string
	peers   []string
	all     bool
	q       Quorum
	limits  Limits
	planted Planted
	next    OpID
	shunned map[string]bool // the ShunReset bug's peers
	ops     map[OpID]*op    // batches by their OpID
	batchOf map[OpID]OpID   // each request's batch
	names   map[string]*nameState
	// lastName is the name the last lookup of names found, and lastNS its
	// state: most steps are about the name the one before was.
	lastName string
	lastNS   *nameState

	// orders[r] is the peer order of the ops whose id is r modulo the
	// number of other peers not shunned, built on first use and shared
	// read-only by those ops. A change to shunned resets orders (the ops
	// under way keep theirs).
	orders [][]string
	spare  []*op // dropped batches, to reuse
	// The slices of Outputs are cut from these.
	msgs     slab[Msg]
	hedges   slab[Hedge]
	backoffs slab[Backoff]
	dones    slab[Done]
}

// DefaultRoundLife is the default of Limits.RoundLife.
const DefaultRoundLife = 2 * time.Second

// maxIdleNames bounds the names a coordinator remembers with no request
// in progress; past it, it forgets them all (and reads them afresh).
const maxIdleNames = 1 << 16

// Limits bound what a coordinator takes on.
type Limits struct {
	// RoundLife bounds a write round: an acceptance that arrives more than
	// RoundLife after the round began is not counted, and the op starts
	// over with fresh reads. It is what lets a node that lost its state
	// recover safely: once it has waited out RoundLife (see RecoveryWait),
	// no coordinator still counts an acceptance it gave before it lost
	// its state. Default DefaultRoundLife.
	RoundLife time.Duration
	// MaxRange bounds the size of one request, and of one batch of
	// coalesced requests; default DefaultMaxRange.
	MaxRange uint64
	// ReadFirst turns off write-only rounds and coalescing: every request
	// is its own op, which reads before it writes (the protocol before
	// both existed, kept to measure against).
	ReadFirst bool
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
		self:    self,
		peers:   append([]string(nil), peers...),
		all:     fanout == FanoutAll,
		q:       Quorum{N: len(peers), R: r, W: w},
		limits:  Limits{}.WithDefaults(),
		ops:     map[OpID]*op{},
		batchOf: map[OpID]OpID{},
		names:   map[string]*nameState{},
	}
}

// SetLimits replaces the coordinator's limits (unset ones get defaults).
func (c *Coordinator) SetLimits(l Limits) { c.limits = l.WithDefaults() }

// Limits returns the coordinator's limits.
func (c *Coordinator) Limits() Limits { return c.limits }

// Plant turns on deliberate bugs (see Planted).
func (c *Coordinator) Plant(p Planted) { c.planted = p }

// Request is one NextRange request.
type Request struct {
	Name string
	N    uint64
	// After is a hint from the caller: the end of the last range it got
	// for Name (0: none). It is untrusted. The coordinator uses it as a
	// write-only round's base only when it lies above what the
	// coordinator has seen, by at most Limits.MaxRange: a hint can burn
	// no more IDs than a request of MaxRange IDs could.
	After uint64
}

// Start begins allocating req.N IDs of req.Name at time now. An invalid
// request is refused with an error and changes nothing. The request may
// join a batch already under way, in which case Output is empty.
func (c *Coordinator) Start(now time.Duration, req Request) (OpID, Output, error) {
	if err := ValidateRangeRequest(req.Name, req.N, c.limits.MaxRange); err != nil {
		return 0, Output{}, err
	}
	c.next++
	id := c.next
	ns := c.nameState(req.Name)
	hint := c.usableHint(ns, req.After)
	if o := c.joinable(ns, req.N); o != nil {
		o.members = append(o.members, member{id, req.N})
		o.n += req.N
		o.hint = max(o.hint, hint)
		c.batchOf[id] = o.id
		return id, Output{}, nil
	}
	o := c.newOp()
	o.id, o.name, o.n, o.hint, o.order = id, req.Name, req.N, hint, c.order(id)
	o.members = append(o.members, member{id, req.N})
	c.ops[id] = o
	c.batchOf[id] = id
	ns.batches = append(ns.batches, id)
	return id, c.proceed(now, o), nil
}

func (c *Coordinator) nameState(name string) *nameState {
	if ns := c.nameOf(name); ns != nil {
		return ns
	}
	if len(c.names) >= maxIdleNames {
		for k, ns := range c.names {
			if len(ns.batches) == 0 {
				delete(c.names, k) // all of them: the outcome does not depend on map order
			}
		}
		c.lastNS = nil
	}
	ns := &nameState{}
	c.names[name] = ns
	return ns
}

// nameOf is c.names[name], through the last name looked up.
func (c *Coordinator) nameOf(name string) *nameState {
	if c.lastNS != nil && name == c.lastName {
		return c.lastNS
	}
	ns := c.names[name]
	if ns != nil {
		c.lastName, c.lastNS = name, ns
	}
	return ns
}

// usableHint returns the caller's hint if the coordinator may write from
// it, else 0.
func (c *Coordinator) usableHint(ns *nameState, after uint64) uint64 {
	if c.limits.ReadFirst || ns.known == 0 || after <= ns.known || after-ns.known > c.limits.MaxRange {
		return 0
	}
	return after
}

// joinable returns the name's newest batch that a request of n IDs may
// join: one that has not sent its write, with room for n more IDs.
func (c *Coordinator) joinable(ns *nameState, n uint64) *op {
	if c.limits.ReadFirst || len(ns.batches) == 0 {
		return nil
	}
	o := c.ops[ns.batches[len(ns.batches)-1]]
	if o.phase == phaseWrite && !c.planted.LateJoin {
		return nil
	}
	if o.n > c.limits.MaxRange-n {
		return nil
	}
	return o
}

// proceed takes a batch that is not in a round (new, backed off or
// waiting) to its next round: a wait while another batch of its name
// writes, else a write-only round if the coordinator knows a value to
// write from, else a read.
func (c *Coordinator) proceed(now time.Duration, o *op) Output {
	ns := c.nameOf(o.name)
	if !c.limits.ReadFirst && ns.writing != 0 && ns.writing != o.id {
		o.phase = phaseWait
		return Output{}
	}
	if base := max(ns.known, o.hint, o.max); !c.limits.ReadFirst && base > 0 && o.guessed < 2 {
		o.guessed++
		o.cached = o.max < base
		return c.write(now, o, base)
	}
	return c.read(o)
}

// newOp returns a zero op, a dropped one if there is one. Its members
// slice is empty, with room kept from its last use.
func (c *Coordinator) newOp() *op {
	if n := len(c.spare); n > 0 {
		o := c.spare[n-1]
		c.spare = c.spare[:n-1]
		return o
	}
	return &op{}
}

// order returns the order in which op id contacts peers: self first, then
// the others rotated by id. The slice is shared: it must not be changed.
func (c *Coordinator) order(id OpID) []string {
	if c.orders == nil {
		k := 0
		for _, p := range c.peers {
			if p != c.self && !c.shunned[p] {
				k++
			}
		}
		c.orders = make([][]string, max(k, 1))
	}
	r := int(uint64(id) % uint64(len(c.orders)))
	if c.orders[r] == nil {
		c.orders[r] = c.rotation(r)
	}
	return c.orders[r]
}

// rotation returns self, then the other peers not shunned from the r-th
// on, wrapping around.
func (c *Coordinator) rotation(r int) []string {
	out := make([]string, 0, len(c.peers))
	var others []string
	for _, p := range c.peers {
		switch {
		case p == c.self:
			out = append(out, p)
		case !c.shunned[p]:
			others = append(others, p)
		}
	}
	if len(others) > 0 {
		out = append(out, others[r:]...)
		out = append(out, others[:r]...)
	}
	return out
}

// begin starts a round of kind k: it sends to a quorum (or everyone).
func (c *Coordinator) begin(o *op, k MsgKind, need int) Output {
	o.round++
	o.ok, o.fail, o.sent = 0, 0, 0
	o.replied, o.repliedOther = 0, o.repliedOther[:0]
	first := need
	if c.all {
		first = len(o.order)
	}
	out := Output{Msgs: c.send(o, k, first)}
	if o.sent < len(o.order) {
		out.Hedge = c.hedges.take(1)
		out.Hedge[0] = Hedge{Op: o.id, Round: o.round}
	}
	return out
}

// send sends the round's message to the next k peers not yet asked.
func (c *Coordinator) send(o *op, kind MsgKind, k int) []Msg {
	k = min(k, len(o.order)-o.sent)
	if k <= 0 {
		return nil
	}
	msgs := c.msgs.take(k)
	for i := range msgs {
		m := Msg{Op: o.id, Round: o.round, To: o.order[o.sent], Kind: kind, Name: o.name}
		if kind == MsgSet {
			m.Base, m.Value = o.base, o.base+o.n
		}
		msgs[i] = m
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
	if o == nil || o.round != round || (o.phase != phaseRead && o.phase != phaseWrite) {
		return Output{}
	}
	return Output{Msgs: c.send(o, o.kind(), len(o.order))}
}

// Pending returns the number of requests in progress.
func (c *Coordinator) Pending() int { return len(c.batchOf) }

func (c *Coordinator) read(o *op) Output {
	o.phase = phaseRead
	o.max = 0
	o.guessed = 0
	return c.begin(o, MsgGet, c.q.R)
}

func (c *Coordinator) write(now time.Duration, o *op, base uint64) Output {
	base = max(base, uint64(seq.FirstID))
	if base > math.MaxUint64-o.n {
		err := errors.Wrapf(seq.ErrOverflow, "range of %d IDs from %d would run past the last ID", o.n, base)
		return c.finish(now, o, err)
	}
	o.phase = phaseWrite
	o.base = base
	o.wstart = now
	o.current = 0
	c.nameOf(o.name).writing = o.id
	return c.begin(o, MsgSet, c.q.W)
}

// finish ends batch o, giving each member still waiting its Done: err if
// there is one, else its sub-range of the write from o.base, and lets the
// name's next batch go on.
func (c *Coordinator) finish(now time.Duration, o *op, err error) Output {
	waiting := 0
	for _, m := range o.members {
		if c.batchOf[m.id] == o.id {
			waiting++
		}
	}
	var out Output
	if waiting > 0 {
		out.Done = c.dones.take(waiting)
	}
	i, from := 0, o.base
	for _, m := range o.members {
		if c.batchOf[m.id] != o.id {
			continue // gave up
		}
		delete(c.batchOf, m.id)
		if err != nil {
			out.Done[i] = Done{Op: m.id, Err: err}
		} else {
			// The members still waiting take their sub-ranges in turn;
			// what members that gave up after the write was sent would
			// have had is left at the end, a gap.
			out.Done[i] = Done{Op: m.id, Range: seq.Range{From: seq.ID(from), To: seq.ID(from + m.n)}}
			from += m.n
		}
		i++
	}
	name := o.name
	c.drop(o)
	out.merge(c.wake(now, name))
	return out
}

// drop forgets batch o and keeps it for reuse: o must not be used after.
func (c *Coordinator) drop(o *op) {
	delete(c.ops, o.id)
	ns := c.nameOf(o.name)
	ns.batches = slices.DeleteFunc(ns.batches, func(id OpID) bool { return id == o.id })
	if ns.writing == o.id {
		ns.writing = 0
	}
	*o = op{members: o.members[:0]}
	c.spare = append(c.spare, o)
}

// wake lets the oldest batch of name that waits to write go on, once no
// batch of the name writes.
func (c *Coordinator) wake(now time.Duration, name string) Output {
	ns := c.nameOf(name)
	if ns == nil || ns.writing != 0 {
		return Output{}
	}
	for _, id := range ns.batches {
		if o := c.ops[id]; o.phase == phaseWait {
			return c.proceed(now, o)
		}
	}
	return Output{}
}

// current returns the op a reply is for, or nil if the reply is stale (the
// op is gone or has moved to another round) or a duplicate.
func (c *Coordinator) current(id OpID, round uint32, from string) *op {
	o := c.ops[id]
	if o == nil || o.round != round || (o.phase != phaseRead && o.phase != phaseWrite) || !c.firstReply(o, from) {
		return nil
	}
	return o
}

// firstReply records that peer from answered o's round, and reports
// whether it is its first answer.
func (c *Coordinator) firstReply(o *op, from string) bool {
	if i := slices.Index(c.peers, from); i >= 0 && i < 64 {
		bit := uint64(1) << i
		if o.replied&bit != 0 {
			return false
		}
		o.replied |= bit
		return true
	}
	if slices.Contains(o.repliedOther, from) {
		return false
	}
	o.repliedOther = append(o.repliedOther, from)
	return true
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
	if o.ok < c.q.R {
		return Output{}
	}
	ns := c.nameOf(o.name)
	ns.known = max(ns.known, o.max)
	if ns.writing != 0 && !c.limits.ReadFirst {
		o.phase = phaseWait // writes from max(o.max, known) once the writer is done
		return Output{}
	}
	o.guessed, o.cached = 1, false
	return c.write(now, o, max(o.max, o.hint))
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
		return c.backoff(now, o, true)
	}
	ns := c.nameOf(o.name)
	if !accepted && c.planted.TrustCache && o.cached {
		accepted = true // the planted bug
	}
	if !accepted {
		o.fail++
		o.current = max(o.current, current)
		ns.known = max(ns.known, current)
		return c.checkLost(now, o, false)
	}
	o.ok++
	if o.ok < c.q.W {
		return Output{}
	}
	ns.known = max(ns.known, o.base+o.n)
	return c.finish(now, o, nil)
}

// PeerFailed reports, at time now, that a message of the given round got
// no answer, and why (for the caller's error, should the op fail).
func (c *Coordinator) PeerFailed(now time.Duration, id OpID, round uint32, from, why string) Output {
	o := c.current(id, round, from)
	if o == nil {
		return Output{}
	}
	if o.failures == nil {
		o.failures = map[string]string{}
	}
	o.failures[from] = why
	if c.planted.ShunReset && (strings.Contains(why, "reset") || strings.Contains(why, "refused")) {
		if c.shunned == nil {
			c.shunned = map[string]bool{}
		}
		if !c.shunned[from] {
			c.shunned[from] = true // the planted bug
			c.orders = nil
		}
	}
	o.fail++
	return c.checkLost(now, o, true)
}

// checkLost backs the op off once its round can no longer reach quorum. A
// write round lost to refusals retries write-only at once from the highest
// current value they carried, if it has not done so already.
func (c *Coordinator) checkLost(now time.Duration, o *op, unreachable bool) Output {
	need := c.q.R
	if o.phase == phaseWrite {
		need = c.q.W
	}
	if len(o.order)-o.fail >= need {
		// Still possible: bring in one more peer for the one lost.
		return Output{Msgs: c.send(o, o.kind(), 1)}
	}
	if o.phase == phaseWrite && !unreachable && !c.limits.ReadFirst && o.guessed < 2 && o.current > o.base {
		o.guessed++
		o.cached = true
		return c.write(now, o, o.current)
	}
	return c.backoff(now, o, unreachable)
}

func (c *Coordinator) backoff(now time.Duration, o *op, unreachable bool) Output {
	wasWriting := o.phase == phaseWrite
	o.phase = phaseBackoff
	o.attempt++
	o.unreachable = unreachable
	o.guessed = 2 // start over with a read
	out := Output{Backoff: c.backoffs.take(1)}
	out.Backoff[0] = Backoff{Op: o.id, Attempt: o.attempt, Unreachable: unreachable}
	if wasWriting {
		c.nameOf(o.name).writing = 0
		out.merge(c.wake(now, o.name))
	}
	return out
}

// Retry starts over an op that was backed off.
func (c *Coordinator) Retry(now time.Duration, id OpID) Output {
	o := c.ops[id]
	if o == nil || o.phase != phaseBackoff {
		return Output{}
	}
	return c.proceed(now, o)
}

// Cancel forgets a request (its caller gave up). A batch left with no
// member is dropped, and later replies to it are ignored. A member that
// leaves before the write keeps its IDs out of it; after, its sub-range is
// a gap.
func (c *Coordinator) Cancel(now time.Duration, id OpID) Output {
	bid, ok := c.batchOf[id]
	if !ok {
		return Output{}
	}
	delete(c.batchOf, id)
	o := c.ops[bid]
	waiting := slices.ContainsFunc(o.members, func(m member) bool { return c.batchOf[m.id] == o.id })
	if !waiting {
		name := o.name
		c.drop(o)
		return c.wake(now, name)
	}
	if o.phase != phaseWrite {
		i := slices.IndexFunc(o.members, func(m member) bool { return m.id == id })
		o.n -= o.members[i].n
		o.members = slices.Delete(o.members, i, i+1)
	}
	return Output{}
}

// Stuck says why request id has not finished: whether its batch's last
// round failed for want of peers (rather than losing to other writes),
// and why each peer that failed it did.
func (c *Coordinator) Stuck(id OpID) (unreachable bool, failures map[string]string) {
	o := c.ops[c.batchOf[id]]
	if o == nil {
		return false, nil
	}
	return o.unreachable, maps.Clone(o.failures)
}
