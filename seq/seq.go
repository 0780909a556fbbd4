package seq

import (
	"context"
	"fmt"
	"math"

	"github.com/pkg/errors"
)

// ID is one identifier handed out by a sequencer. IDs start at 1; 0 is never
// a valid ID and marks "no ID".
type ID uint64

// FirstID is the first ID of every sequence.
const FirstID ID = 1

// Range is the half-open range of IDs [From, To). A Range with From == To is
// empty.
type Range struct {
	From ID
	To   ID
}

// NewRange returns the range of n IDs starting at from, or an error if n is
// zero, from is zero, or from+n overflows.
func NewRange(from ID, n uint64) (Range, error) {
	if n == 0 {
		return Range{}, errors.Wrap(ErrInvalidArgument, "range size must be at least 1")
	}
	if from == 0 {
		return Range{}, errors.Wrap(ErrInvalidArgument, "IDs start at 1")
	}
	if uint64(from) > math.MaxUint64-n {
		return Range{}, errors.Wrapf(ErrOverflow, "range of %d IDs from %d", n, from)
	}
	return Range{From: from, To: from + ID(n)}, nil
}

// Len returns the number of IDs in r.
func (r Range) Len() uint64 {
	if r.To <= r.From {
		return 0
	}
	return uint64(r.To - r.From)
}

// Contains reports whether id lies in r.
func (r Range) Contains(id ID) bool { return id >= r.From && id < r.To }

// Overlaps reports whether r and o share at least one ID.
func (r Range) Overlaps(o Range) bool {
	return r.Len() > 0 && o.Len() > 0 && r.From < o.To && o.From < r.To
}

// Validate returns an error unless r is a non-empty range of valid IDs.
func (r Range) Validate() error {
	switch {
	case r.From == 0:
		return errors.Wrapf(ErrInvalidArgument, "range %s: IDs start at 1", r)
	case r.To <= r.From:
		return errors.Wrapf(ErrInvalidArgument, "range %s is empty", r)
	}
	return nil
}

// String returns the range in interval notation, e.g. "[1,11)".
func (r Range) String() string { return fmt.Sprintf("[%d,%d)", r.From, r.To) }

// Sequencer hands out IDs in strictly increasing order for as long as it
// lives. Implementations are safe for concurrent use; concurrent callers
// each get distinct IDs, and each caller sees its own IDs increase.
type Sequencer interface {
	// Next returns the next ID. It blocks until an ID is available, ctx is
	// done (the error then wraps ctx.Err()), or the sequencer is closed
	// (ErrClosed).
	Next(ctx context.Context) (ID, error)
	// Close stops the sequencer and releases its resources. IDs that were
	// buffered but not handed out are lost: they become gaps.
	Close() error
}

// Errors callers branch on with errors.Is.
var (
	// ErrClosed is returned by a Sequencer once Close has been called.
	ErrClosed = errors.New("seq: sequencer closed")
	// ErrInvalidArgument marks a request that can never succeed as given.
	ErrInvalidArgument = errors.New("seq: invalid argument")
	// ErrOverflow is returned when a sequence would run past the largest ID.
	ErrOverflow = errors.New("seq: ID space exhausted")
	// ErrUnavailable is returned when no quorum could be reached in time.
	ErrUnavailable = errors.New("seq: unavailable")
)
