package seq

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBuffer(t *testing.T) {
	take := func(b *Buffer, k int) []ID {
		var out []ID
		for range k {
			id, ok := b.Take()
			if !ok {
				break
			}
			out = append(out, id)
		}
		return out
	}
	t.Run("hands out in order across ranges that arrive out of order", func(t *testing.T) {
		b := NewBuffer(3, 2)
		assert.True(t, b.Want(0))
		assert.True(t, b.Want(1))
		assert.False(t, b.Want(2), "lookahead 2: two fetches at most")
		b.Add(Range{From: 10, To: 13})
		b.Add(Range{From: 4, To: 7})
		assert.False(t, b.Want(0), "two ranges buffered")
		assert.Equal(t, []ID{4, 5, 6, 10}, take(b, 4))
		assert.True(t, b.Want(0), "two IDs left of six wanted")
		assert.Equal(t, []ID{11, 12}, take(b, 5))
		_, ok := b.Take()
		assert.False(t, ok)
	})
	t.Run("skips IDs at or below the last one handed out", func(t *testing.T) {
		b := NewBuffer(4, 1)
		b.Add(Range{From: 5, To: 9})
		require.Equal(t, []ID{5, 6}, take(b, 2))
		b.Add(Range{From: 1, To: 5}) // wholly below: dropped
		b.Add(Range{From: 3, To: 8}) // overlaps: 7 was next anyway
		assert.Equal(t, []ID{7, 8}, take(b, 10))
		assert.Zero(t, b.Buffered())
	})
	t.Run("empty ranges are ignored", func(t *testing.T) {
		b := NewBuffer(1, 1)
		b.Add(Range{From: 3, To: 3})
		assert.Zero(t, b.Buffered())
		assert.True(t, b.Want(0))
	})
}

func TestBufferAdapts(t *testing.T) {
	b := NewBuffer(4, 1)
	b.Stalled()
	require.EqualValues(t, 4, b.RangeSize(), "off by default")
	b.Adapt(20)
	for _, want := range []uint64{8, 16, 20, 20} {
		b.Stalled()
		require.Equal(t, want, b.RangeSize())
	}
	require.True(t, b.Want(0))
	b.Add(Range{From: 1, To: 16})
	require.True(t, b.Want(0), "15 buffered of a 20-ID range: fetch")
	for _, want := range []uint64{10, 5, 4, 4} {
		b.Idle()
		require.Equal(t, want, b.RangeSize())
	}
}

func TestBufferTakeRange(t *testing.T) {
	t.Run("hands out a whole range, above the last ID", func(t *testing.T) {
		b := NewBuffer(4, 2)
		b.Add(Range{From: 9, To: 13})
		b.Add(Range{From: 5, To: 9})
		id, ok := b.Take()
		require.True(t, ok)
		require.EqualValues(t, 5, id)
		r, ok := b.TakeRange()
		require.True(t, ok)
		assert.Equal(t, Range{From: 6, To: 9}, r, "the rest of the first range")
		b.Add(Range{From: 7, To: 11}) // overlaps what was taken and what is buffered
		r, ok = b.TakeRange()
		require.True(t, ok)
		assert.Equal(t, Range{From: 9, To: 11}, r, "7 and 8 skipped")
		r, ok = b.TakeRange()
		require.True(t, ok)
		assert.Equal(t, Range{From: 11, To: 13}, r, "9 and 10 skipped: the same IDs as Take gives")
		_, ok = b.TakeRange()
		assert.False(t, ok)
	})
	t.Run("room counts what is buffered and on its way", func(t *testing.T) {
		b := NewBuffer(4, 2)
		assert.EqualValues(t, 8, b.Room(0))
		assert.EqualValues(t, 4, b.Room(1))
		assert.Zero(t, b.Room(2), "lookahead fetches run")
		b.Add(Range{From: 1, To: 4})
		assert.EqualValues(t, 5, b.Room(0))
		assert.EqualValues(t, 1, b.Room(1))
		assert.Equal(t, b.Room(1) > 0, b.Want(1))
	})
}
