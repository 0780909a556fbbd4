package flake_seq

import (
	"fmt"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/seq"
)

// The layout of an ID, from the high bits down: a zero bit, 41 bits of
// timestamp (milliseconds since the node's epoch: about 69 years), 10 bits
// of node ID and 12 bits of counter.
//
//	0 | timestamp (41) | node (10) | counter (12)
//
// IDs of one node and one millisecond are consecutive integers, so a
// range is a run of counters. Timestamp 0 is never used, so no ID is 0.
const (
	TimeBits    = 41
	NodeBits    = 10
	CounterBits = 12

	// MaxNodeID is the largest node ID.
	MaxNodeID = 1<<NodeBits - 1
	// PerMilli is how many IDs a node hands out in one millisecond: the
	// largest range one NextRange may ask for.
	PerMilli = 1 << CounterBits
	// MaxTimestamp is the last millisecond the layout holds.
	MaxTimestamp = 1<<TimeBits - 1
)

// Pack returns the ID of a timestamp (ms since the epoch), a node and a
// counter, each within its bits.
func Pack(ts int64, node, counter int) seq.ID {
	return seq.ID(uint64(ts)<<(NodeBits+CounterBits) | uint64(node)<<CounterBits | uint64(counter))
}

// Unpack splits an ID into its timestamp, node and counter.
func Unpack(id seq.ID) (ts int64, node, counter int) {
	return int64(uint64(id) >> (NodeBits + CounterBits)), int(uint64(id)>>CounterBits) & MaxNodeID, int(uint64(id) & (PerMilli - 1))
}

// MaxNameLen is the longest sequence name a node accepts, in bytes, as
// rr_seq's nodes accept.
const MaxNameLen = seq.MaxNameLen

// ValidateName returns an error wrapping seq.ErrInvalidArgument unless
// name is a sequence name a node takes: 1 to MaxNameLen bytes of UTF-8,
// without NUL or newline. Names do not split the ID space: one node's IDs
// are unique across all names.
func ValidateName(name string) error { return seq.ValidateName(name) }

// Errors callers branch on with errors.Is.
var (
	// ErrClockBehind: the node cannot hand out the range before its clock
	// moves on. Either the clock reads behind the last timestamp the node
	// used (it went back, or a restart starts above its old mark), or
	// this millisecond's counters are used up. The node never reuses a
	// timestamp: it keeps using the last one while its counters last,
	// then refuses until the clock passes it. A *WaitError says until
	// when.
	ErrClockBehind = errors.New("flake_seq: clock behind the last timestamp")
	// ErrNotReserved: the timestamp is not below the durable high-water
	// mark yet; the shell is persisting a renewal (see Core.Renewal) and
	// the call can be retried once it is durable.
	ErrNotReserved = errors.New("flake_seq: timestamp not reserved on disk yet")
)

// WaitError is a refusal until the clock reads Until, wrapping
// ErrClockBehind.
type WaitError struct {
	Clock, Until time.Duration // clock readings since the epoch
}

func (e *WaitError) Error() string {
	return fmt.Sprintf("%v: the clock reads %v, the next usable millisecond starts at %v (%v ahead)",
		ErrClockBehind, e.Clock, e.Until, e.Until-e.Clock)
}

func (e *WaitError) Unwrap() error { return ErrClockBehind }

// Planted are the bugs the lab can plant in a node, to show that it
// catches them. All off is the real system.
type Planted struct {
	// ClockRollback (BugClockRollback) keeps no high-water mark: a node
	// starts from its clock alone, so one that restarts with its clock
	// behind the timestamps it used before hands out their IDs again.
	ClockRollback bool `json:"clock_rollback,omitempty"`
}

// BugClockRollback is the planted bug's name in the lab.
const BugClockRollback = "flake-clock-rollback"

// Config is one node's core.
type Config struct {
	// NodeID is the node's part of every ID, 0..MaxNodeID; two nodes of
	// one cluster must not share it.
	NodeID int
	// Reserve is how far past the timestamps it uses a node reserves on
	// disk, with one fsync: a restart starts above the reserved mark, so
	// it may wait up to Reserve for its clock. Default one second.
	Reserve time.Duration
	// RenewAhead is how close to the mark the node renews it: when the
	// clock or the last timestamp comes within RenewAhead of it, the
	// node reserves Reserve past them. Default Reserve/2; below Reserve.
	RenewAhead time.Duration
	Planted    Planted
}

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.Reserve == 0 {
		c.Reserve = time.Second
	}
	if c.RenewAhead == 0 {
		c.RenewAhead = c.Reserve / 2
	}
	return c
}

// Validate reports a configuration a node cannot run with.
func (c Config) Validate() error {
	if c.NodeID < 0 || c.NodeID > MaxNodeID {
		return errors.Errorf("flake_seq: node ID %d outside 0..%d", c.NodeID, MaxNodeID)
	}
	if c.Reserve < 2*time.Millisecond || c.RenewAhead < time.Millisecond || c.RenewAhead >= c.Reserve {
		return errors.Errorf("flake_seq: reserve %v and renew-ahead %v (want reserve at least 2ms, renew-ahead at least 1ms and below it)",
			c.Reserve, c.RenewAhead)
	}
	return nil
}

// Core is one node of the Flake model as a pure state machine: no clock,
// no disk, no goroutines. The shell passes the clock's reading to each
// call, persists the high-water marks that Renewal asks for and reports
// them with Persisted.
//
// A node hands out the timestamp max(clock, last) with the next counters
// of that millisecond, so its IDs only increase: a clock that goes back
// makes it keep its last timestamp, never reuse an earlier one. It uses
// only timestamps below its durable mark, and starts above the mark it
// finds on disk, so a restart whose clock is behind still starts above
// everything it issued before.
type Core struct {
	cfg         Config
	nextTS      int64 // the next free slot: this millisecond...
	nextCounter int   // ...from this counter
	durable     int64 // every timestamp below it is reserved on disk
	pending     bool  // a renewal is being persisted
}

// NewCore returns a node's core. mark is the high-water mark its disk
// holds: 0 for a new node (or one in memory). The planted ClockRollback
// bug ignores it and needs none.
func NewCore(cfg Config, mark int64) (*Core, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if mark < 0 || mark > MaxTimestamp+1 {
		return nil, errors.Errorf("flake_seq: high-water mark %d outside 0..%d", mark, MaxTimestamp+1)
	}
	c := &Core{cfg: cfg, nextTS: max(mark, 1), durable: mark}
	if cfg.Planted.ClockRollback {
		c.nextTS, c.durable = 1, MaxTimestamp+1
	}
	return c, nil
}

// Config returns the core's configuration, defaults filled.
func (c *Core) Config() Config { return c.cfg }

// Mark is the durable high-water mark: the node uses timestamps below it.
func (c *Core) Mark() int64 { return c.durable }

// Next is the next free slot: the timestamp and counter the node's next
// range starts at, unless its clock has moved past it.
func (c *Core) Next() (ts int64, counter int) { return c.nextTS, c.nextCounter }

// millis is a clock reading in whole milliseconds, rounded down.
func millis(clock time.Duration) int64 {
	ms := int64(clock / time.Millisecond)
	if clock < 0 && clock%time.Millisecond != 0 {
		ms--
	}
	return ms
}

// NextRange hands out n consecutive IDs of one timestamp, for name, with
// the clock reading clock (time since the epoch). Its errors wrap
// seq.ErrInvalidArgument (a bad name, n = 0 or over PerMilli),
// seq.ErrOverflow (the clock is past the layout's last millisecond),
// ErrClockBehind (a *WaitError: retry once the clock reads Until) or
// ErrNotReserved (retry once a renewal is persisted). A refused call
// changes nothing.
func (c *Core) NextRange(clock time.Duration, name string, n uint64) (seq.Range, error) {
	if err := ValidateName(name); err != nil {
		return seq.Range{}, err
	}
	if n == 0 || n > PerMilli {
		return seq.Range{}, errors.Wrapf(seq.ErrInvalidArgument, "range size %d outside 1..%d (the IDs of one node and millisecond)", n, PerMilli)
	}
	ts, counter := c.nextTS, c.nextCounter
	if now := millis(clock); now > ts {
		ts, counter = now, 0
	}
	if ts > MaxTimestamp {
		return seq.Range{}, errors.Wrapf(seq.ErrOverflow, "the clock reads %v, past the last timestamp of the layout", clock)
	}
	if uint64(counter)+n > PerMilli {
		return seq.Range{}, &WaitError{Clock: clock, Until: time.Duration(ts+1) * time.Millisecond}
	}
	if ts >= c.durable {
		return seq.Range{}, errors.Wrapf(ErrNotReserved, "timestamp %d, durable mark %d", ts, c.durable)
	}
	c.nextTS, c.nextCounter = ts, counter+int(n)
	from := Pack(ts, c.cfg.NodeID, counter)
	return seq.Range{From: from, To: from + seq.ID(n)}, nil
}

// Renewal says whether the node should persist a new high-water mark
// now, and which: when the clock or the next timestamp comes within
// RenewAhead of the durable mark and no renewal is in flight, the mark
// Reserve past the later of the two. The shell persists it (fsync) and
// calls Persisted, or PersistFailed. Until then Renewal asks for nothing.
func (c *Core) Renewal(clock time.Duration) (mark int64, ok bool) {
	if c.pending || c.cfg.Planted.ClockRollback {
		return 0, false
	}
	at := max(millis(clock), c.nextTS)
	if at+c.cfg.RenewAhead.Milliseconds() < c.durable {
		return 0, false
	}
	mark = min(at+c.cfg.Reserve.Milliseconds(), MaxTimestamp+1)
	if mark <= c.durable {
		return 0, false
	}
	c.pending = true
	return mark, true
}

// Persisted says mark is durable: timestamps below it may be used.
func (c *Core) Persisted(mark int64) {
	c.pending = false
	c.durable = max(c.durable, mark)
}

// PersistFailed says the last renewal did not reach the disk; the next
// Renewal asks again.
func (c *Core) PersistFailed() { c.pending = false }
