package seq_test

import (
	"context"
	"math"
	"sync"
	"testing"

	"github.com/pkg/errors"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seqlab/seqlab/seq"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewRange(t *testing.T) {
	for _, tc := range []struct {
		name    string
		from    seq.ID
		n       uint64
		want    seq.Range
		wantErr error
	}{
		{name: "one", from: 1, n: 1, want: seq.Range{From: 1, To: 2}},
		{name: "ten", from: 5, n: 10, want: seq.Range{From: 5, To: 15}},
		{name: "zero size", from: 1, n: 0, wantErr: seq.ErrInvalidArgument},
		{name: "zero from", from: 0, n: 3, wantErr: seq.ErrInvalidArgument},
		{name: "overflow", from: math.MaxUint64 - 2, n: 3, wantErr: seq.ErrOverflow},
		{name: "just fits", from: math.MaxUint64 - 3, n: 3, want: seq.Range{From: math.MaxUint64 - 3, To: math.MaxUint64}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := seq.NewRange(tc.from, tc.n)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.n, got.Len())
			require.NoError(t, got.Validate())
		})
	}
}

func TestRangeOps(t *testing.T) {
	a := seq.Range{From: 1, To: 11}
	require.True(t, a.Contains(1))
	require.True(t, a.Contains(10))
	require.False(t, a.Contains(11))
	require.True(t, a.Overlaps(seq.Range{From: 10, To: 12}))
	require.False(t, a.Overlaps(seq.Range{From: 11, To: 12}))
	require.False(t, a.Overlaps(seq.Range{From: 5, To: 5}))
	require.Equal(t, "[1,11)", a.String())
	require.Error(t, seq.Range{From: 3, To: 3}.Validate())
	require.Error(t, seq.Range{From: 0, To: 3}.Validate())
	require.Equal(t, uint64(0), seq.Range{From: 4, To: 2}.Len())
}

// sequencers returns a fresh instance of every local sequencer.
func sequencers() map[string]func() seq.Sequencer {
	return map[string]func() seq.Sequencer{
		"buffered-1":    func() seq.Sequencer { return seq.NewBuffered(1) },
		"buffered-1024": func() seq.Sequencer { return seq.NewBuffered(1024) },
		"atomic":        func() seq.Sequencer { return seq.NewAtomic() },
	}
}

func TestLocalSequencersUniqueAndIncreasing(t *testing.T) {
	for name, mk := range sequencers() {
		t.Run(name, func(t *testing.T) {
			s := mk()
			defer s.Close()
			const workers, each = 8, 2000
			got := make([][]seq.ID, workers)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for range each {
						id, err := s.Next(context.Background())
						if err != nil {
							t.Error(err)
							return
						}
						got[w] = append(got[w], id)
					}
				})
			}
			wg.Wait()
			seen := map[seq.ID]bool{}
			for w, ids := range got {
				for i, id := range ids {
					require.False(t, seen[id], "ID %d handed out twice", id)
					seen[id] = true
					if i > 0 {
						require.Greater(t, id, ids[i-1], "worker %d went backwards", w)
					}
				}
			}
			require.Len(t, seen, workers*each)
			// Every ID from 1 up is handed out: local sequencers leave no gaps.
			for id := seq.ID(1); id <= workers*each; id++ {
				require.True(t, seen[id], "gap at %d", id)
			}
		})
	}
}

func TestLocalSequencersClose(t *testing.T) {
	for name, mk := range sequencers() {
		t.Run(name, func(t *testing.T) {
			s := mk()
			_, err := s.Next(context.Background())
			require.NoError(t, err)
			require.NoError(t, s.Close())
			require.NoError(t, s.Close(), "Close is idempotent")
			for range 2000 { // drain whatever was buffered
				if _, err = s.Next(context.Background()); err != nil {
					break
				}
			}
			require.ErrorIs(t, err, seq.ErrClosed)
		})
	}
}

func TestBufferedHonoursContext(t *testing.T) {
	b := seq.NewBuffered(4)
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// With a cancelled context Next may still win the race for a buffered ID,
	// but once the buffer is drained and the filler stopped it must fail.
	require.NoError(t, b.Close())
	var err error
	for range 10 {
		if _, err = b.Next(ctx); err != nil {
			break
		}
	}
	require.True(t, errors.Is(err, seq.ErrClosed) || errors.Is(err, context.Canceled), "got %v", err)
}
