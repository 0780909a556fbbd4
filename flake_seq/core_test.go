package flake_seq_test

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/pkg/errors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/flake_seq"
	"github.com/seqlab/seqlab/seq"
)

const ms = time.Millisecond

// ready returns a core of node 5 whose first mark is durable.
func ready(t *testing.T, clock time.Duration) *flake_seq.Core {
	t.Helper()
	c, err := flake_seq.NewCore(flake_seq.Config{NodeID: 5}, 0)
	require.NoError(t, err)
	mark, ok := c.Renewal(clock)
	require.True(t, ok)
	c.Persisted(mark)
	return c
}

func TestLayout(t *testing.T) {
	id := flake_seq.Pack(1234, 1023, 4095)
	ts, node, counter := flake_seq.Unpack(id)
	assert.Equal(t, []int64{1234, 1023, 4095}, []int64{ts, int64(node), int64(counter)})
	assert.Equal(t, seq.ID(1234<<22|1023<<12|4095), id)
	assert.Equal(t, seq.ID(1<<63-1), flake_seq.Pack(flake_seq.MaxTimestamp, flake_seq.MaxNodeID, flake_seq.PerMilli-1),
		"the top bit stays clear")
}

func TestNextRange(t *testing.T) {
	c, err := flake_seq.NewCore(flake_seq.Config{NodeID: 5}, 0)
	require.NoError(t, err)
	_, err = c.NextRange(10*ms, "a", 1)
	require.ErrorIs(t, err, flake_seq.ErrNotReserved, "a new node reserves first")
	mark, ok := c.Renewal(10 * ms)
	require.True(t, ok)
	assert.Equal(t, int64(1010), mark, "one second past the clock")
	_, ok = c.Renewal(10 * ms)
	assert.False(t, ok, "one renewal at a time")
	c.Persisted(mark)

	r, err := c.NextRange(10*ms+300*time.Microsecond, "a", 3)
	require.NoError(t, err)
	assert.Equal(t, seq.Range{From: flake_seq.Pack(10, 5, 0), To: flake_seq.Pack(10, 5, 3)}, r)
	r, err = c.NextRange(10*ms+900*time.Microsecond, "b", 4093)
	require.NoError(t, err)
	assert.Equal(t, flake_seq.Pack(10, 5, 3), r.From, "the same millisecond goes on, across names")
	assert.Equal(t, flake_seq.Pack(10, 5, 0)+flake_seq.PerMilli, r.To)

	_, err = c.NextRange(10*ms+950*time.Microsecond, "a", 1)
	var w *flake_seq.WaitError
	require.ErrorAs(t, err, &w, "this millisecond is full")
	require.ErrorIs(t, err, flake_seq.ErrClockBehind)
	assert.Equal(t, 11*ms, w.Until)
	assert.Equal(t, "flake_seq: clock behind the last timestamp: the clock reads 10.95ms, the next usable millisecond starts at 11ms (50µs ahead)", err.Error())

	r, err = c.NextRange(12*ms, "a", 2)
	require.NoError(t, err)
	assert.Equal(t, flake_seq.Pack(12, 5, 0), r.From)

	// The clock goes back: the node keeps its last timestamp.
	r, err = c.NextRange(3*ms, "a", 2)
	require.NoError(t, err)
	assert.Equal(t, flake_seq.Pack(12, 5, 2), r.From)
	_, err = c.NextRange(3*ms, "a", flake_seq.PerMilli-5)
	require.NoError(t, err)
	_, err = c.NextRange(3*ms, "a", 2)
	require.ErrorAs(t, err, &w, "and refuses once its counters are used")
	assert.Equal(t, 13*ms, w.Until)
	r, err = c.NextRange(3*ms, "a", 1)
	require.NoError(t, err, "the last counter fits")
	assert.Equal(t, flake_seq.Pack(12, 5, 4095), r.From)

	for _, tc := range []struct {
		name string
		n    uint64
		want string
	}{
		{"", 1, "sequence name is empty"},
		{"a\nb", 1, "NUL or newline"},
		{strings.Repeat("x", 257), 1, "257 bytes"},
		{"\xff", 1, "UTF-8"},
		{"a", 0, "range size 0 outside 1..4096"},
		{"a", flake_seq.PerMilli + 1, "range size 4097 outside 1..4096"},
	} {
		_, err := c.NextRange(20*ms, tc.name, tc.n)
		require.ErrorIs(t, err, seq.ErrInvalidArgument)
		assert.ErrorContains(t, err, tc.want)
	}
	ts, counter := c.Next()
	assert.Equal(t, []int64{12, 4096}, []int64{ts, int64(counter)}, "a refused call changes nothing")
}

func TestRenewal(t *testing.T) {
	c := ready(t, 0)
	assert.Equal(t, int64(1001), c.Mark(), "a second past the first timestamp, 1")
	_, ok := c.Renewal(400 * ms)
	assert.False(t, ok, "far from the mark")
	_, err := c.NextRange(999*ms, "a", 1)
	require.NoError(t, err, "below the mark")
	mark, ok := c.Renewal(999 * ms)
	require.True(t, ok, "within RenewAhead")
	assert.Equal(t, int64(1999), mark)
	_, err = c.NextRange(1001*ms, "a", 1)
	require.ErrorIs(t, err, flake_seq.ErrNotReserved, "the mark, not yet renewed")
	c.PersistFailed()
	assert.Equal(t, int64(1001), c.Mark())
	mark, ok = c.Renewal(1001 * ms)
	require.True(t, ok, "asks again after a failure")
	assert.Equal(t, int64(2001), mark)
	c.Persisted(mark)
	_, err = c.NextRange(1001*ms, "a", 1)
	require.NoError(t, err)
	c.Persisted(5) // an old mark lowers nothing
	assert.Equal(t, int64(2001), c.Mark())

	_, err = c.NextRange(time.Duration(flake_seq.MaxTimestamp+1)*ms, "a", 1)
	require.ErrorIs(t, err, seq.ErrOverflow)
}

// TestRestart: a node that restarts from its mark starts above it, even
// with its clock far behind; with the planted bug it starts from its
// clock and hands out its old IDs again.
func TestRestart(t *testing.T) {
	c := ready(t, 5000*ms)
	first, err := c.NextRange(5000*ms, "a", 1)
	require.NoError(t, err)

	again, err := flake_seq.NewCore(flake_seq.Config{NodeID: 5}, c.Mark())
	require.NoError(t, err)
	_, err = again.NextRange(4000*ms, "a", 1)
	require.ErrorIs(t, err, flake_seq.ErrNotReserved)
	mark, ok := again.Renewal(4000 * ms)
	require.True(t, ok)
	assert.Equal(t, c.Mark()+1000, mark, "reserved past the old mark, not the clock")
	again.Persisted(mark)
	r, err := again.NextRange(4000*ms, "a", 1)
	require.NoError(t, err)
	ts, _, _ := flake_seq.Unpack(r.From)
	assert.Equal(t, c.Mark(), ts, "the first timestamp the old process could not use")
	assert.Greater(t, r.From, first.From)

	bug := flake_seq.Config{NodeID: 5, Planted: flake_seq.Planted{ClockRollback: true}}
	b, err := flake_seq.NewCore(bug, 0)
	require.NoError(t, err)
	old, err := b.NextRange(5000*ms, "a", 1)
	require.NoError(t, err, "no mark to reserve")
	b, err = flake_seq.NewCore(bug, c.Mark())
	require.NoError(t, err)
	dup, err := b.NextRange(5000*ms, "a", 1)
	require.NoError(t, err)
	assert.Equal(t, old, dup, "the planted bug hands out an ID twice")
}

func TestConfig(t *testing.T) {
	assert.Equal(t, flake_seq.Config{NodeID: 1, Reserve: time.Second, RenewAhead: 500 * ms}, flake_seq.Config{NodeID: 1}.WithDefaults())
	for _, tc := range []struct {
		cfg  flake_seq.Config
		want string
	}{
		{flake_seq.Config{NodeID: -1}, "node ID -1 outside 0..1023"},
		{flake_seq.Config{NodeID: 1024}, "node ID 1024 outside 0..1023"},
		{flake_seq.Config{Reserve: time.Second, RenewAhead: time.Second}, "renew-ahead 1s"},
		{flake_seq.Config{Reserve: ms, RenewAhead: ms / 2}, "reserve 1ms"},
	} {
		_, err := flake_seq.NewCore(tc.cfg, 0)
		assert.ErrorContains(t, err, tc.want)
	}
	_, err := flake_seq.NewCore(flake_seq.Config{}, -1)
	assert.ErrorContains(t, err, "high-water mark -1")
}

// model drives a core through random clocks, renewals, failed fsyncs and
// restarts (from the durable mark, or from a later written one), and
// checks every range: inside one millisecond and node, never overlapping
// an earlier one, above everything the node issued before, and never at a
// timestamp the node had not reserved on disk.
type model struct {
	t       testing.TB
	cfg     flake_seq.Config
	core    *flake_seq.Core
	durable int64 // what survives a power loss
	written int64 // what survives a kill
	pending int64 // a renewal being persisted, 0 for none
	last    seq.ID
	issued  uint64
}

func newModel(t testing.TB, node int) *model {
	m := &model{t: t, cfg: flake_seq.Config{NodeID: node, Reserve: 50 * ms, RenewAhead: 20 * ms}}
	m.restart(0)
	return m
}

func (m *model) restart(mark int64) {
	c, err := flake_seq.NewCore(m.cfg, mark)
	require.NoError(m.t, err)
	m.core, m.pending = c, 0
}

// step does one random thing, drawn from r.
func (m *model) step(op byte, clock time.Duration, n uint64) {
	switch op % 8 {
	case 0, 1, 2, 3:
		r, err := m.core.NextRange(clock, "s", n)
		if err != nil {
			require.True(m.t, errors.Is(err, flake_seq.ErrClockBehind) || errors.Is(err, flake_seq.ErrNotReserved) ||
				errors.Is(err, seq.ErrInvalidArgument), "%v", err)
			return
		}
		ts, node, c := flake_seq.Unpack(r.From)
		require.Equal(m.t, m.cfg.NodeID, node)
		require.Equal(m.t, n, r.Len())
		require.LessOrEqual(m.t, uint64(c)+n, uint64(flake_seq.PerMilli), "one millisecond")
		require.Less(m.t, ts, m.durable, "only reserved timestamps")
		require.Greater(m.t, r.From, m.last, "above everything issued before")
		m.last = r.To - 1
		m.issued += n
	case 4:
		if mark, ok := m.core.Renewal(clock); ok {
			require.Greater(m.t, mark, m.durable)
			m.pending, m.written = mark, mark
		}
	case 5:
		if m.pending != 0 {
			m.durable = max(m.durable, m.pending)
			m.core.Persisted(m.pending)
			m.pending = 0
		}
	case 6:
		if m.pending != 0 && n%2 == 0 {
			m.core.PersistFailed()
			m.pending = 0
		}
	case 7:
		if n%3 == 0 {
			m.written = m.durable // a power loss
		}
		m.durable = m.written
		m.restart(m.written)
	}
}

// TestModel: 100 random walks of 1,000 steps each, the clock jumping
// back and forth.
func TestModel(t *testing.T) {
	issued := uint64(0)
	for seed := uint64(1); seed <= 100; seed++ {
		r := rand.New(rand.NewPCG(seed, 9))
		m := newModel(t, int(seed%1024))
		clock := time.Duration(0)
		for range 1000 {
			switch r.IntN(10) {
			case 0:
				clock -= time.Duration(r.Int64N(int64(100 * ms)))
			case 1:
				clock += time.Duration(r.Int64N(int64(100 * ms)))
			default:
				clock += time.Duration(r.Int64N(int64(ms)))
			}
			m.step(byte(r.IntN(8)), clock, 1+uint64(r.IntN(3000)))
		}
		issued += m.issued
	}
	assert.Greater(t, issued, uint64(5_000_000))
}

// FuzzCore drives the model from fuzzed steps: (op, clock delta, n)
// triples.
func FuzzCore(f *testing.F) {
	f.Add([]byte{4, 10, 1, 5, 0, 1, 0, 1, 3, 7, 200, 0, 0, 5, 9})
	f.Add([]byte{0, 255, 255, 4, 0, 0, 5, 0, 0, 0, 128, 16, 7, 0, 0, 0, 0, 16})
	f.Fuzz(func(t *testing.T, steps []byte) {
		m := newModel(t, 7)
		clock := time.Duration(0)
		for i := 0; i+2 < len(steps); i += 3 {
			clock += time.Duration(int8(steps[i+1])) * ms / 4
			m.step(steps[i], clock, uint64(steps[i+2])*17)
		}
	})
}
