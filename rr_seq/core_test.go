package rr_seq

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/seq"
)

func TestReplicaSetRules(t *testing.T) {
	for _, tc := range []struct {
		name         string
		rule         WriteRule
		cur          uint64
		base, value  uint64
		wantAccepted bool
		wantCur      uint64
	}{
		{"unchanged: fresh", SetIfUnchanged, 1, 1, 11, true, 11},
		{"unchanged: behind is repaired", SetIfUnchanged, 5, 10, 15, true, 15},
		{"unchanged: base already passed", SetIfUnchanged, 12, 10, 15, false, 12},
		{"unchanged: same base twice", SetIfUnchanged, 15, 10, 12, false, 15},
		{"unchanged: value not above base", SetIfUnchanged, 1, 5, 5, false, 1},
		{"greater: fresh", SetIfGreater, 1, 1, 11, true, 11},
		{"greater: same base bigger value accepted", SetIfGreater, 12, 10, 15, true, 15},
		{"greater: smaller value refused", SetIfGreater, 15, 10, 12, false, 15},
		{"greater: equal refused", SetIfGreater, 15, 10, 15, false, 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReplica(tc.rule, map[string]uint64{"s": tc.cur})
			ok, cur, changed := r.Set("s", tc.base, tc.value)
			require.Equal(t, tc.wantAccepted, ok)
			require.Equal(t, tc.wantCur, cur)
			require.Equal(t, tc.wantAccepted, changed)
			require.Equal(t, tc.wantCur, r.Get("s"))
		})
	}
	require.Equal(t, uint64(1), NewReplica(SetIfUnchanged, nil).Get("new"), "a new sequence starts at 1")
}

func TestQuorumValidate(t *testing.T) {
	for _, tc := range []struct {
		q      Quorum
		unsafe bool
		ok     bool
	}{
		{Quorum{3, 2, 2}, false, true},
		{Quorum{5, 3, 3}, false, true},
		{Quorum{1, 1, 1}, false, true},
		{Quorum{3, 3, 2}, false, true},
		{Quorum{3, 1, 2}, false, false}, // R+W = N
		{Quorum{3, 3, 1}, false, false}, // W not a majority
		{Quorum{3, 1, 1}, true, true},
		{Quorum{3, 0, 2}, true, false},
		{Quorum{3, 2, 4}, true, false},
		{Quorum{0, 1, 1}, true, false},
	} {
		t.Run(tc.q.String(), func(t *testing.T) {
			err := tc.q.Validate(tc.unsafe)
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, seq.ErrInvalidArgument)
			}
		})
	}
}

// cluster3 drives three replicas and one coordinator by hand.
type cluster3 struct {
	reps  map[string]*Replica
	coord *Coordinator
}

func newCluster3(rule WriteRule) *cluster3 {
	peers := []string{"n1", "n2", "n3"}
	c := &cluster3{reps: map[string]*Replica{}, coord: NewCoordinator("n1", peers, 2, 2, FanoutAll)}
	for _, p := range peers {
		c.reps[p] = NewReplica(rule, nil)
	}
	return c
}

// deliver answers msg from its replica and feeds the reply back.
func (c *cluster3) deliver(m Msg) Output {
	r := c.reps[m.To]
	if m.Kind == MsgGet {
		return c.coord.GetReply(0, m.Op, m.Round, m.To, r.Get(m.Name))
	}
	ok, cur, _ := r.Set(m.Name, m.Base, m.Value)
	return c.coord.SetReply(0, m.Op, m.Round, m.To, ok, cur)
}

// run delivers every message in order until the op is done.
func (c *cluster3) run(t *testing.T, out Output) Done {
	t.Helper()
	for range 100 {
		if len(out.Done) > 0 {
			return out.Done[0]
		}
		var next Output
		for _, m := range out.Msgs {
			next.merge(c.deliver(m))
		}
		for _, b := range out.Backoff {
			next.merge(c.coord.Retry(0, b.Op))
		}
		out = next
	}
	t.Fatal("op did not finish")
	return Done{}
}

func TestCoordinatorAllocates(t *testing.T) {
	c := newCluster3(SetIfUnchanged)
	var last seq.ID
	for i, n := range []uint64{10, 1, 5} {
		_, out, err := c.coord.Start(0, Request{Name: "s", N: n})
		require.NoError(t, err)
		require.Len(t, out.Msgs, 3, "reads go to every peer")
		d := c.run(t, out)
		require.NoError(t, d.Err)
		require.Equal(t, n, d.Range.Len())
		if i == 0 {
			require.Equal(t, seq.ID(1), d.Range.From, "IDs start at 1")
		} else {
			require.Equal(t, last, d.Range.From, "ranges follow each other")
		}
		last = d.Range.To
	}
	require.Equal(t, 0, c.coord.Pending())
}

func TestCoordinatorReadRepairTakesMax(t *testing.T) {
	c := newCluster3(SetIfUnchanged)
	c.reps["n2"] = NewReplica(SetIfUnchanged, map[string]uint64{"s": 40})
	_, out, err := c.coord.Start(0, Request{Name: "s", N: 2})
	require.NoError(t, err)
	byPeer := map[string]Msg{}
	for _, m := range out.Msgs {
		byPeer[m.To] = m
	}
	// n1 answers 1, n2 answers 40: base is 40 once R=2 replies are in.
	require.Empty(t, c.deliver(byPeer["n1"]).Msgs)
	w := c.deliver(byPeer["n2"])
	require.Len(t, w.Msgs, 3)
	for _, m := range w.Msgs {
		require.Equal(t, MsgSet, m.Kind)
		require.Equal(t, uint64(40), m.Base)
		require.Equal(t, uint64(42), m.Value)
	}
	// The late read reply from n3 is stale and ignored.
	require.Empty(t, c.deliver(byPeer["n3"]).Msgs)
	d := c.run(t, w)
	require.Equal(t, seq.Range{From: 40, To: 42}, d.Range)
	require.Equal(t, uint64(42), c.reps["n1"].Get("s"), "the lagging replica is repaired")
}

func TestCoordinatorBacksOffWithoutQuorum(t *testing.T) {
	c := newCluster3(SetIfUnchanged)
	id, out, err := c.coord.Start(0, Request{Name: "s", N: 1})
	require.NoError(t, err)
	require.Empty(t, c.coord.PeerFailed(0, id, out.Msgs[0].Round, "n1", "test").Backoff)
	b := c.coord.PeerFailed(0, id, out.Msgs[0].Round, "n2", "test")
	require.Equal(t, []Backoff{{Op: id, Attempt: 1, Unreachable: true}}, b.Backoff)
	require.Empty(t, c.deliver(out.Msgs[2]).Msgs, "replies of an abandoned round are ignored")
	d := c.run(t, c.coord.Retry(0, id))
	require.NoError(t, d.Err)
	require.Equal(t, seq.Range{From: 1, To: 2}, d.Range)
}

func TestCoordinatorIgnoresDuplicateReplies(t *testing.T) {
	c := newCluster3(SetIfUnchanged)
	id, out, _ := c.coord.Start(0, Request{Name: "s", N: 1})
	r := out.Msgs[0].Round
	require.Empty(t, c.coord.GetReply(0, id, r, "n1", 1).Msgs)
	require.Empty(t, c.coord.GetReply(0, id, r, "n1", 1).Msgs, "a duplicate does not count towards R")
	require.Len(t, c.coord.GetReply(0, id, r, "n2", 1).Msgs, 3)
}

func TestCoordinatorRejectsBadRequests(t *testing.T) {
	c := newCluster3(SetIfUnchanged)
	for _, tc := range []struct {
		name string
		n    uint64
	}{{"", 1}, {"s", 0}, {string(make([]byte, MaxNameLen+1)), 1}, {"s", ^uint64(0)}, {"a\nb", 1}} {
		_, out, err := c.coord.Start(0, Request{Name: tc.name, N: tc.n})
		require.ErrorIs(t, err, seq.ErrInvalidArgument)
		require.Empty(t, out.Msgs)
	}
	require.Equal(t, 0, c.coord.Pending(), "bad requests change nothing")
}

func TestCoordinatorOverflowFails(t *testing.T) {
	c := newCluster3(SetIfUnchanged)
	for _, r := range c.reps {
		r.Merge(map[string]uint64{"s": ^uint64(0) - 3})
	}
	_, out, err := c.coord.Start(0, Request{Name: "s", N: 10})
	require.NoError(t, err)
	d := c.run(t, out)
	require.ErrorIs(t, d.Err, seq.ErrOverflow)
	require.Equal(t, ^uint64(0)-3, c.reps["n1"].Get("s"), "nothing written")
}

// TestSetIfGreaterInterleaving replays the interleaving of the package doc:
// two coordinators read the same base and both win with set-if-greater; with
// set-if-unchanged only one does.
func TestSetIfGreaterInterleaving(t *testing.T) {
	for _, tc := range []struct {
		rule    WriteRule
		bothWin bool
	}{{SetIfGreater, true}, {SetIfUnchanged, false}} {
		t.Run(tc.rule.String(), func(t *testing.T) {
			peers := []string{"n1", "n2", "n3"}
			reps := map[string]*Replica{}
			for _, p := range peers {
				reps[p] = NewReplica(tc.rule, map[string]uint64{"s": 10})
			}
			a, b := NewCoordinator("n1", peers, 2, 2, FanoutAll), NewCoordinator("n2", peers, 2, 2, FanoutAll)
			readAll := func(c *Coordinator, n uint64) (OpID, []Msg) {
				id, out, err := c.Start(0, Request{Name: "s", N: n})
				require.NoError(t, err)
				var w Output
				for _, m := range out.Msgs[:2] {
					w = c.GetReply(0, m.Op, m.Round, m.To, reps[m.To].Get("s"))
				}
				require.Len(t, w.Msgs, 3)
				return id, w.Msgs
			}
			_, aw := readAll(a, 5)
			_, bw := readAll(b, 2)
			var doneA, doneB []Done
			apply := func(c *Coordinator, m Msg, done *[]Done) {
				ok, cur, _ := reps[m.To].Set(m.Name, m.Base, m.Value)
				*done = append(*done, c.SetReply(0, m.Op, m.Round, m.To, ok, cur).Done...)
			}
			apply(a, aw[0], &doneA) // n1: A first
			apply(b, bw[0], &doneB)
			apply(b, bw[1], &doneB) // n2, n3: B first
			apply(a, aw[1], &doneA)
			apply(b, bw[2], &doneB)
			apply(a, aw[2], &doneA)
			wins := len(doneA) + len(doneB)
			if tc.bothWin {
				require.Equal(t, 2, wins)
				require.True(t, doneA[0].Range.Overlaps(doneB[0].Range), "%s and %s", doneA[0].Range, doneB[0].Range)
			} else {
				require.Equal(t, 1, wins)
			}
		})
	}
}

func TestCoordinatorQuorumFanout(t *testing.T) {
	peers := []string{"n1", "n2", "n3", "n4", "n5"}
	reps := map[string]*Replica{}
	for _, p := range peers {
		reps[p] = NewReplica(SetIfUnchanged, nil)
	}
	c := NewCoordinator("n3", peers, 3, 3, FanoutQuorum)
	id, out, err := c.Start(0, Request{Name: "s", N: 4})
	require.NoError(t, err)
	require.Len(t, out.Msgs, 3, "reads go to R peers first")
	require.Equal(t, "n3", out.Msgs[0].To, "self first")
	require.Equal(t, []Hedge{{Op: id, Round: 1}}, out.Hedge)

	// One peer fails: exactly one more is brought in.
	more := c.PeerFailed(0, id, 1, out.Msgs[1].To, "test")
	require.Len(t, more.Msgs, 1)
	asked := map[string]bool{out.Msgs[0].To: true, out.Msgs[1].To: true, out.Msgs[2].To: true}
	require.False(t, asked[more.Msgs[0].To], "a new peer")
	asked[more.Msgs[0].To] = true

	// A hedge asks the one peer left.
	h := c.Hedge(id, 1)
	require.Len(t, h.Msgs, 1)
	require.False(t, asked[h.Msgs[0].To])
	require.Empty(t, c.Hedge(id, 1).Msgs, "nobody left to ask")
	require.Empty(t, c.Hedge(id, 7).Msgs, "stale hedges are ignored")

	var w Output
	for _, m := range []Msg{out.Msgs[0], out.Msgs[2], more.Msgs[0]} {
		w.merge(c.GetReply(0, m.Op, m.Round, m.To, 1))
	}
	require.Len(t, w.Msgs, 3, "writes go to W peers first")
	var done []Done
	for _, m := range w.Msgs {
		ok, cur, _ := reps[m.To].Set(m.Name, m.Base, m.Value)
		done = append(done, c.SetReply(0, m.Op, m.Round, m.To, ok, cur).Done...)
	}
	require.Equal(t, []Done{{Op: id, Range: seq.Range{From: 1, To: 5}}}, done)
}

// coreCluster is replicas and coordinators driven by hand, re-entrantly as
// the simulator drives them: unless queue is set, a message is answered
// as soon as dispatch reaches it, and the reply's own output is dispatched
// before the rest of the first.
type coreCluster struct {
	peers  []string
	reps   map[string]*Replica
	queue  bool  // hold messages in queued rather than answer them
	queued []Msg // messages sent and not answered, in order, when queue is set
	done   []Done
}

func newCoreCluster(n int) *coreCluster {
	c := &coreCluster{reps: map[string]*Replica{}}
	for i := range n {
		p := fmt.Sprintf("n%d", i+1)
		c.peers = append(c.peers, p)
		c.reps[p] = NewReplica(SetIfUnchanged, nil)
	}
	return c
}

// coord returns the coordinator of peers[i] with majority quorums.
func (c *coreCluster) coord(i int, fanout Fanout) *Coordinator {
	q := DefaultQuorum(len(c.peers))
	return NewCoordinator(c.peers[i], c.peers, q.R, q.W, fanout)
}

// dispatch carries out out: it answers its messages from the replicas,
// in order, and keeps its Done.
func (c *coreCluster) dispatch(co *Coordinator, out Output) {
	c.done = append(c.done, out.Done...)
	for _, m := range out.Msgs {
		if c.queue {
			c.queued = append(c.queued, m)
			continue
		}
		c.dispatch(co, c.answer(co, m))
	}
}

// answer applies m at its replica and feeds the reply to co.
func (c *coreCluster) answer(co *Coordinator, m Msg) Output {
	r := c.reps[m.To]
	if m.Kind == MsgGet {
		return co.GetReply(0, m.Op, m.Round, m.To, r.Get(m.Name))
	}
	ok, cur, _ := r.Set(m.Name, m.Base, m.Value)
	return co.SetReply(0, m.Op, m.Round, m.To, ok, cur)
}

// deliverQueued answers the queued messages, and those they bring, in
// order.
func (c *coreCluster) deliverQueued(co *Coordinator) {
	for i := 0; i < len(c.queued); i++ {
		c.dispatch(co, c.answer(co, c.queued[i]))
	}
	c.queued = c.queued[:0]
}

// start starts a request of n IDs of name at co and dispatches its output.
func (c *coreCluster) start(tb testing.TB, co *Coordinator, name string, n uint64) OpID {
	id, out, err := co.Start(0, Request{Name: name, N: n})
	if err != nil {
		tb.Fatal(err)
	}
	c.dispatch(co, out)
	return id
}

// TestCoordinatorOutputsStayValid drives a coordinator re-entrantly, as
// the simulator does (a reply is fed back while the driver still iterates
// the Output that sent the message), with failures, duplicates, hedges,
// retries and cancels, and checks that no Output changes after it is
// returned, nor a slice a caller made by appending to one: the coordinator
// cuts them from slabs and reuses its ops.
func TestCoordinatorOutputsStayValid(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			c := newCoreCluster(5)
			co := c.coord(0, Fanout(seed%2))
			co.SetLimits(Limits{MaxRange: 8, RoundLife: 30 * time.Millisecond})
			co.Plant(Planted{ShunReset: seed%3 == 0})
			var (
				now    time.Duration
				kept   []Output // every Output returned
				copies []Output // and what each held when returned
				queued []Msg
				hedges []Hedge
				retry  []OpID
				ids    []OpID
				ranges int // requests that got a range
			)
			var dispatch func(out Output, depth int)
			dispatch = func(out Output, depth int) {
				grown := Output{ // as a driver that gathers Outputs does
					Msgs:    append(out.Msgs, Msg{To: "appended"}),
					Backoff: append(out.Backoff, Backoff{Attempt: -1}),
					Hedge:   append(out.Hedge, Hedge{Round: 1 << 31}),
					Done:    append(out.Done, Done{Range: seq.Range{From: 7, To: 7}}),
				}
				for _, o := range []Output{out, grown} {
					kept = append(kept, o)
					copies = append(copies, Output{Msgs: slices.Clone(o.Msgs), Backoff: slices.Clone(o.Backoff), Hedge: slices.Clone(o.Hedge), Done: slices.Clone(o.Done)})
				}
				hedges = append(hedges, out.Hedge...)
				for _, d := range out.Done {
					if d.Err == nil {
						ranges++
					}
				}
				for _, b := range out.Backoff {
					retry = append(retry, b.Op)
				}
				for _, m := range out.Msgs {
					switch {
					case depth < 4 && rng.IntN(2) == 0:
						dispatch(c.answer(co, m), depth+1)
					case rng.IntN(8) == 0:
						dispatch(co.PeerFailed(now, m.Op, m.Round, m.To, "connection reset"), depth+1)
					default:
						queued = append(queued, m)
					}
				}
			}
			for range 3000 {
				switch a := rng.IntN(20); {
				case a < 4:
					id, out, err := co.Start(now, Request{Name: []string{"a", "b"}[rng.IntN(2)], N: uint64(1 + rng.IntN(3))})
					require.NoError(t, err)
					ids = append(ids, id)
					dispatch(out, 0)
				case a < 12 && len(queued) > 0:
					i := rng.IntN(len(queued))
					m := queued[i]
					if rng.IntN(5) > 0 { // else it is answered again later: a duplicate
						queued = slices.Delete(queued, i, i+1)
					}
					dispatch(c.answer(co, m), 0)
				case a < 14 && len(hedges) > 0:
					h := hedges[0]
					hedges = hedges[1:]
					dispatch(co.Hedge(h.Op, h.Round), 0)
				case a < 16 && len(retry) > 0:
					id := retry[0]
					retry = retry[1:]
					dispatch(co.Retry(now, id), 0)
				case a < 17 && len(ids) > 0:
					dispatch(co.Cancel(now, ids[rng.IntN(len(ids))]), 0)
				default:
					now += time.Duration(rng.IntN(10)) * time.Millisecond
				}
			}
			for i := range kept {
				require.Equal(t, copies[i], kept[i], "output %d changed after it was returned", i)
			}
			require.Positive(t, ranges, "some request got a range")
		})
	}
}

// TestCoordinatorShunResetOrders: once the planted ShunReset bug shuns a
// peer, new ops leave it out of their orders, and ops under way keep the
// order they started with.
func TestCoordinatorShunResetOrders(t *testing.T) {
	c := newCoreCluster(5)
	co := c.coord(0, FanoutQuorum)
	co.Plant(Planted{ShunReset: true})
	a, outA, err := co.Start(0, Request{Name: "a", N: 1})
	require.NoError(t, err)
	b, outB, err := co.Start(0, Request{Name: "b", N: 1})
	require.NoError(t, err)
	shunned := outA.Msgs[1].To
	require.NotContains(t, outB.Msgs, Msg{Op: b, Round: 1, To: shunned, Kind: MsgGet, Name: "b"}, "b has not asked it yet")
	co.PeerFailed(0, a, 1, shunned, "connection reset")

	to := func(outs ...Output) []string {
		var peers []string
		for _, o := range outs {
			for _, m := range o.Msgs {
				peers = append(peers, m.To)
			}
		}
		return peers
	}
	require.Contains(t, to(outB, co.Hedge(b, 1)), shunned, "an op under way keeps its order")
	for i := range 8 { // ids of every remainder, before and after the shunning
		id, out, err := co.Start(0, Request{Name: fmt.Sprint("c", i), N: 1})
		require.NoError(t, err)
		asked := to(out, co.Hedge(id, 1))
		require.NotContains(t, asked, shunned, "op %d", id)
		require.ElementsMatch(t, slices.DeleteFunc(slices.Clone(c.peers), func(p string) bool { return p == shunned }), asked, "op %d asks every other peer", id)
	}
}

// TestCoordinatorAllocsPerRequest guards what the simulator's hunt speed
// depends on: a request on a healthy cluster costs the coordinator less
// than one allocation, on average (its Outputs come from slabs, its ops
// are reused, its peer orders are shared). It took 10 before.
func TestCoordinatorAllocsPerRequest(t *testing.T) {
	c := newCoreCluster(5)
	co := c.coord(0, FanoutQuorum)
	c.start(t, co, "s", 1) // reads, then caches the name
	allocs := testing.AllocsPerRun(1000, func() {
		c.start(t, co, "s", 1)
		c.done = c.done[:0]
	})
	require.LessOrEqual(t, allocs, 1.0)
}
