package seq

import (
	"context"
	"math"
	"sync"
	"sync/atomic"

	"github.com/pkg/errors"
)

// Buffered is the local baseline in the original design's style: a
// goroutine draws IDs from an in-process counter and pushes them into a
// buffered channel, and Next receives from the channel. Its cost per ID is
// what a distributed sequencer with the same buffer size is compared with.
type Buffered struct {
	ids    chan ID
	stop   chan struct{}
	done   chan struct{}
	closer sync.Once
}

var _ Sequencer = (*Buffered)(nil)

// NewBuffered starts a Buffered sequencer whose channel holds bufSize IDs
// (at least 1) and whose first ID is FirstID.
func NewBuffered(bufSize int) *Buffered {
	if bufSize < 1 {
		bufSize = 1
	}
	b := &Buffered{
		ids:  make(chan ID, bufSize),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go b.fill()
	return b
}

func (b *Buffered) fill() {
	defer close(b.done)
	defer close(b.ids)
	for next := FirstID; next < math.MaxUint64; next++ {
		select {
		case b.ids <- next:
		case <-b.stop:
			return
		}
	}
}

// Next returns the next ID from the buffer.
func (b *Buffered) Next(ctx context.Context) (ID, error) {
	select {
	case id, ok := <-b.ids:
		if !ok {
			return 0, ErrClosed
		}
		return id, nil
	case <-ctx.Done():
		return 0, errors.Wrap(ctx.Err(), "seq: buffered next")
	}
}

// Stream returns the channel Next reads from, as in the original design.
// It is closed when the sequencer is closed.
func (b *Buffered) Stream() <-chan ID { return b.ids }

// Close stops the filling goroutine and waits for it.
func (b *Buffered) Close() error {
	b.closer.Do(func() { close(b.stop) })
	<-b.done
	return nil
}

// Atomic is the floor: a bare atomic counter with no buffer and no
// goroutine. No sequencer hands out IDs faster.
type Atomic struct {
	last   atomic.Uint64
	closed atomic.Bool
}

var _ Sequencer = (*Atomic)(nil)

// NewAtomic returns an Atomic sequencer whose first ID is FirstID.
func NewAtomic() *Atomic { return &Atomic{} }

// Next returns the next ID.
func (a *Atomic) Next(ctx context.Context) (ID, error) {
	if a.closed.Load() {
		return 0, ErrClosed
	}
	id := a.last.Add(1)
	if id == 0 {
		return 0, ErrOverflow
	}
	return ID(id), nil
}

// Close makes later calls to Next fail with ErrClosed.
func (a *Atomic) Close() error {
	a.closed.Store(true)
	return nil
}
