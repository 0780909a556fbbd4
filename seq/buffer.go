package seq

import (
	"slices"
	"sort"
)

// Buffer is a client's store of fetched IDs: the pure logic of a buffering
// client, with no goroutine, lock or network, so that a system's gRPC
// client (rr_seq.Client) and the lab's deterministic simulator hand out
// IDs the same way.
//
// It hands IDs out in strictly increasing order. Should a range come back
// at or below an ID already handed out (a broken cluster), the IDs that
// would break the order are skipped, never handed out.
type Buffer struct {
	rangeSize uint64
	base, max uint64 // adaptive range size: from base up to max (max 0: off)
	lookahead int
	ranges    []Range // sorted by From, each non-empty
	last      ID      // the last ID handed out
}

// NewBuffer returns an empty buffer for ranges of rangeSize IDs that wants
// lookahead ranges' worth of IDs buffered or being fetched.
func NewBuffer(rangeSize uint64, lookahead int) *Buffer {
	return &Buffer{rangeSize: rangeSize, lookahead: max(lookahead, 1)}
}

// Take hands out the next ID, if one is buffered.
func (b *Buffer) Take() (ID, bool) {
	b.skipTaken()
	if len(b.ranges) == 0 {
		return 0, false
	}
	id := b.ranges[0].From
	b.ranges[0].From++
	if b.ranges[0].Len() == 0 {
		b.ranges = b.ranges[1:]
	}
	b.last = id
	return id, true
}

// TakeRange hands out, at once, every ID of the first buffered range that
// is above the last one handed out: for a caller that then hands them out
// one at a time, in order, without the buffer (rr_seq.Client's lock-free
// path). Until it has, count them as held in Room.
func (b *Buffer) TakeRange() (Range, bool) {
	b.skipTaken()
	if len(b.ranges) == 0 {
		return Range{}, false
	}
	r := b.ranges[0]
	b.ranges = b.ranges[1:]
	b.last = r.To - 1
	return r, true
}

// skipTaken drops the IDs at or below the last one handed out.
func (b *Buffer) skipTaken() {
	for len(b.ranges) > 0 && b.ranges[0].From <= b.last {
		b.ranges[0].From = min(b.last+1, b.ranges[0].To)
		if b.ranges[0].Len() == 0 {
			b.ranges = b.ranges[1:]
		}
	}
}

// Add stores a fetched range. A range wholly at or below the last ID
// handed out is dropped.
func (b *Buffer) Add(r Range) {
	if r.Len() == 0 || r.To <= b.last+1 {
		return
	}
	i := sort.Search(len(b.ranges), func(i int) bool { return b.ranges[i].From > r.From })
	b.ranges = slices.Insert(b.ranges, i, r)
}

// Buffered returns how many IDs are stored (some may yet be skipped).
func (b *Buffer) Buffered() uint64 {
	var n uint64
	for _, r := range b.ranges {
		n += r.Len()
	}
	return n
}

// Adapt makes the range size adaptive, from the size the buffer was made
// with up to max: Stalled doubles it, Idle halves it. A max at or below
// the size turns it off.
func (b *Buffer) Adapt(max uint64) {
	if b.base == 0 {
		b.base = b.rangeSize
	}
	b.max = max
}

// Stalled says a caller found the buffer empty: ranges were too small for
// the rate IDs go out at, so the next fetch asks for twice as many.
func (b *Buffer) Stalled() {
	if b.max > b.rangeSize {
		b.rangeSize = min(b.rangeSize*2, b.max)
	}
}

// Idle says IDs went out slowly: the next fetch asks for half as many, down
// to the size the buffer was made with, so that fewer IDs are lost as gaps
// with the buffer.
func (b *Buffer) Idle() {
	if b.base > 0 && b.rangeSize > b.base {
		b.rangeSize = max(b.rangeSize/2, b.base)
	}
}

// RangeSize is the size of the next fetch.
func (b *Buffer) RangeSize() uint64 { return b.rangeSize }

// Want reports whether one more fetch should start, given inflight fetches
// already running: fewer than lookahead run, and what is buffered or on its
// way falls short of lookahead ranges.
func (b *Buffer) Want(inflight int) bool { return b.Room(inflight) > 0 }

// Room is by how many IDs what is buffered or on its way, with inflight
// fetches running, falls short of lookahead ranges: 0 when lookahead
// fetches run. A caller holding IDs taken with TakeRange wants another
// fetch while it holds fewer than Room.
func (b *Buffer) Room(inflight int) uint64 {
	want := uint64(b.lookahead) * b.rangeSize
	have := b.Buffered() + uint64(inflight)*b.rangeSize
	if inflight >= b.lookahead || have >= want {
		return 0
	}
	return want - have
}
