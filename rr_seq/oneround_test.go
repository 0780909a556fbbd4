package rr_seq

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/seq"
)

func kinds(msgs []Msg) []MsgKind {
	out := make([]MsgKind, len(msgs))
	for i, m := range msgs {
		out[i] = m.Kind
	}
	return out
}

// TestOneRoundAfterTheFirst: once a coordinator has won a write of a name,
// its next allocation of the name is a write only.
func TestOneRoundAfterTheFirst(t *testing.T) {
	c := newCluster3(SetIfUnchanged)
	_, out, err := c.coord.Start(0, Request{Name: "s", N: 10})
	require.NoError(t, err)
	require.Equal(t, []MsgKind{MsgGet, MsgGet, MsgGet}, kinds(out.Msgs), "nothing known: read first")
	require.Equal(t, seq.Range{From: 1, To: 11}, c.run(t, out).Range)

	_, out, err = c.coord.Start(0, Request{Name: "s", N: 5})
	require.NoError(t, err)
	require.Equal(t, []MsgKind{MsgSet, MsgSet, MsgSet}, kinds(out.Msgs), "known: write only")
	require.Equal(t, uint64(11), out.Msgs[0].Base)
	require.Equal(t, seq.Range{From: 11, To: 16}, c.run(t, out).Range)

	c.coord.SetLimits(Limits{ReadFirst: true})
	_, out, _ = c.coord.Start(0, Request{Name: "s", N: 1})
	require.Equal(t, MsgGet, out.Msgs[0].Kind, "ReadFirst: the old protocol")
}

// TestStaleCacheCostsARetryNotADuplicate: another coordinator moved the
// name on; the write from the stale value is refused, and the retry from
// the refusals' current value wins, after the other's range.
func TestStaleCacheCostsARetryNotADuplicate(t *testing.T) {
	c := newCluster3(SetIfUnchanged)
	_, out, _ := c.coord.Start(0, Request{Name: "s", N: 10})
	require.Equal(t, seq.Range{From: 1, To: 11}, c.run(t, out).Range)
	// Another coordinator hands out [11, 31) through n2 and n3.
	for _, p := range []string{"n2", "n3"} {
		ok, _, _ := c.reps[p].Set("s", 11, 31)
		require.True(t, ok)
	}
	_, out, _ = c.coord.Start(0, Request{Name: "s", N: 5})
	require.Equal(t, uint64(11), out.Msgs[0].Base, "the stale value")
	var retry Output
	for _, m := range out.Msgs {
		retry.merge(c.deliver(m))
	}
	require.Equal(t, []MsgKind{MsgSet, MsgSet, MsgSet}, kinds(retry.Msgs), "a write-only retry, no read")
	require.Equal(t, uint64(31), retry.Msgs[0].Base, "from the refusals' current value")
	d := c.run(t, retry)
	require.Equal(t, seq.Range{From: 31, To: 36}, d.Range)
}

// TestSecondRefusalFallsBackToRead: a retry refused again backs off and
// starts over with a read.
func TestSecondRefusalFallsBackToRead(t *testing.T) {
	c := newCluster3(SetIfUnchanged)
	_, out, _ := c.coord.Start(0, Request{Name: "s", N: 1})
	c.run(t, out)
	id, out, _ := c.coord.Start(0, Request{Name: "s", N: 1})
	refuse := func(msgs []Msg, cur uint64) Output {
		var next Output
		for _, m := range msgs {
			next.merge(c.coord.SetReply(0, m.Op, m.Round, m.To, false, cur))
		}
		return next
	}
	retry := refuse(out.Msgs, 50)
	require.Equal(t, uint64(50), retry.Msgs[0].Base)
	b := refuse(retry.Msgs, 60)
	require.Empty(t, b.Msgs)
	require.Equal(t, []Backoff{{Op: id, Attempt: 1}}, b.Backoff)
	r := c.coord.Retry(0, id)
	require.Equal(t, []MsgKind{MsgGet, MsgGet, MsgGet}, kinds(r.Msgs), "read plus write after one failed retry")
}

// TestCoalescing: requests that arrive while a batch reads join it, and
// one write serves them all with disjoint sub-ranges in join order. A
// request after the write was sent waits for it and writes next, from its
// result, without a read.
func TestCoalescing(t *testing.T) {
	c := newCluster3(SetIfUnchanged)
	a, out, _ := c.coord.Start(0, Request{Name: "s", N: 2})
	b, joined, _ := c.coord.Start(0, Request{Name: "s", N: 3})
	require.Empty(t, joined.Msgs, "joins the batch in its read")
	other, elsewhere, _ := c.coord.Start(0, Request{Name: "t", N: 1})
	require.NotEmpty(t, elsewhere.Msgs, "another name is its own batch")
	cancelled, _, _ := c.coord.Start(0, Request{Name: "s", N: 100})
	require.Empty(t, c.coord.Cancel(0, cancelled).Msgs)

	var w Output
	for _, m := range out.Msgs {
		w.merge(c.deliver(m))
	}
	require.Equal(t, []MsgKind{MsgSet, MsgSet, MsgSet}, kinds(w.Msgs))
	require.Equal(t, uint64(1+2+3), w.Msgs[0].Value, "one write of the summed size, without the member that left")

	late, none, _ := c.coord.Start(0, Request{Name: "s", N: 4})
	require.Empty(t, none.Msgs, "the write is sent: it waits for it")

	var done []Done
	var next Output
	for _, m := range w.Msgs {
		o := c.deliver(m)
		done = append(done, o.Done...)
		next.merge(o)
	}
	require.Equal(t, []Done{{Op: a, Range: seq.Range{From: 1, To: 3}}, {Op: b, Range: seq.Range{From: 3, To: 6}}}, done)
	require.Equal(t, []MsgKind{MsgSet, MsgSet, MsgSet}, kinds(next.Msgs), "the waiting batch writes at once")
	require.Equal(t, uint64(6), next.Msgs[0].Base)
	d := c.run(t, Output{Msgs: next.Msgs})
	require.Equal(t, Done{Op: late, Range: seq.Range{From: 6, To: 10}}, d)
	c.run(t, elsewhere)
	require.Equal(t, 0, c.coord.Pending(), "every request finished: %d", other)
}

// TestBatchStaysWithinMaxRange: a request that would take a batch past
// the range limit starts a batch of its own.
func TestBatchStaysWithinMaxRange(t *testing.T) {
	c := newCluster3(SetIfUnchanged)
	c.coord.SetLimits(Limits{MaxRange: 10})
	_, _, _ = c.coord.Start(0, Request{Name: "s", N: 6})
	_, out, _ := c.coord.Start(0, Request{Name: "s", N: 4})
	require.Empty(t, out.Msgs, "fits: joins")
	_, out, _ = c.coord.Start(0, Request{Name: "s", N: 1})
	require.NotEmpty(t, out.Msgs, "would make 11: a batch of its own")
}

// TestHintIsClamped: a caller's hint moves a write-only round's base only
// within the range limit of what the coordinator has seen.
func TestHintIsClamped(t *testing.T) {
	c := newCluster3(SetIfUnchanged)
	c.coord.SetLimits(Limits{MaxRange: 100})
	_, out, _ := c.coord.Start(0, Request{Name: "s", N: 1, After: 50})
	require.Equal(t, MsgGet, out.Msgs[0].Kind, "nothing seen: the hint cannot be checked, read")
	require.Equal(t, seq.Range{From: 1, To: 2}, c.run(t, out).Range)

	_, out, _ = c.coord.Start(0, Request{Name: "s", N: 1, After: 50})
	require.Equal(t, uint64(50), out.Msgs[0].Base, "within 100 of what it saw: used")
	require.Equal(t, seq.Range{From: 50, To: 51}, c.run(t, out).Range)

	_, out, _ = c.coord.Start(0, Request{Name: "s", N: 1, After: 1 << 40})
	require.Equal(t, uint64(51), out.Msgs[0].Base, "a hostile hint is ignored")
	_, out, _ = c.coord.Start(0, Request{Name: "t", N: 1, After: 1 << 40})
	require.Equal(t, MsgGet, out.Msgs[0].Kind)
}
