package rr_seq

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/seq"
)

// five is a hand-driven cluster of five replicas for recovery tests: n1..n4
// are P1..P4 of the interleaving, n5 is X.
type five struct {
	t     *testing.T
	peers []string
	reps  map[string]*Replica
	ready map[string]bool
}

func newFive(t *testing.T) *five {
	f := &five{t: t, peers: []string{"n1", "n2", "n3", "n4", "n5"}, reps: map[string]*Replica{}, ready: map[string]bool{}}
	for _, p := range f.peers {
		f.reps[p] = NewReplica(SetIfUnchanged, nil)
		f.ready[p] = true
	}
	return f
}

// state is p's answer to MsgState.
func (f *five) state(p string) PeerState {
	if !f.ready[p] {
		return PeerState{}
	}
	return PeerState{Initialised: true, Cluster: "c", Values: f.reps[p].Snapshot()}
}

// set delivers a MsgSet to its replica and its answer to c at time now.
func (f *five) set(c *Coordinator, now time.Duration, m Msg) Output {
	f.t.Helper()
	require.Equal(f.t, MsgSet, m.Kind, "%s", m)
	require.True(f.t, f.ready[m.To], "a recovering replica takes no write: %s", m)
	ok, cur, _ := f.reps[m.To].Set(m.Name, m.Base, m.Value)
	return c.SetReply(now, m.Op, m.Round, m.To, ok, cur)
}

// get delivers a MsgGet and its answer.
func (f *five) get(c *Coordinator, now time.Duration, m Msg) Output {
	f.t.Helper()
	require.Equal(f.t, MsgGet, m.Kind, "%s", m)
	return c.GetReply(now, m.Op, m.Round, m.To, f.reps[m.To].Get(m.Name))
}

func to(msgs []Msg, peer string) Msg {
	for _, m := range msgs {
		if m.To == peer {
			return m
		}
	}
	panic(fmt.Sprintf("no message to %s in %v", peer, msgs))
}

// TestRecoveryOutlivesStaleAcceptances plays the interleaving that defeats
// the N-W+1 bound alone (N=5, W=R=3):
//
//  1. P1 coordinates a write C (1->11). P1 and X accept it; P1->P2 is slow.
//  2. X crashes, restarts empty, and recovers from P2, P3 and P4, all at 1.
//  3. P2 now accepts C, so C returns [1,11).
//  4. B reads X, P3 and P4 and returns [1,2): a duplicate.
//
// Without the wait the duplicate happens; with it, either C's late
// acceptance comes in time and X's reads see it, or it comes too late and
// C does not count it.
func TestRecoveryOutlivesStaleAcceptances(t *testing.T) {
	const life = time.Second
	for _, tc := range []struct {
		name    string
		wait    time.Duration
		p2At    time.Duration // when P2's acceptance of C reaches P1
		wantDup bool
	}{
		{"no wait: the duplicate", 0, 10 * time.Millisecond, true},
		{"wait: P2 accepts in time, before X reads", RecoveryWait(life), 500 * time.Millisecond, false},
		{"wait: P2 accepts too late to count", RecoveryWait(life), 1500 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFive(t)
			p1 := NewCoordinator("n1", f.peers, 3, 3, FanoutQuorum)
			p1.SetLimits(Limits{RoundLife: life})
			b := NewCoordinator("n4", f.peers, 3, 3, FanoutQuorum)
			b.SetLimits(Limits{RoundLife: life})
			var ranges []seq.Range
			keep := func(out Output) Output {
				for _, d := range out.Done {
					require.NoError(t, d.Err)
					ranges = append(ranges, d.Range)
				}
				return out
			}

			// 1. C reads n1, n2, n3 (all at 1) and writes 11 to n1, X, n2.
			idC, out, err := p1.Start(0, Request{Name: "s", N: 10})
			require.NoError(t, err)
			var w Output
			for _, m := range out.Msgs {
				w.merge(f.get(p1, 0, m))
			}
			require.Len(t, w.Msgs, 3)
			w.Msgs = append(w.Msgs, p1.Hedge(idC, w.Msgs[0].Round).Msgs...)
			keep(f.set(p1, time.Millisecond, to(w.Msgs, "n1")))
			keep(f.set(p1, time.Millisecond, to(w.Msgs, "n5")))
			toP2 := to(w.Msgs, "n2") // slow

			// 2. X crashes and restarts empty at 2ms.
			f.reps["n5"] = NewReplica(SetIfUnchanged, nil)
			f.ready["n5"] = false
			rec, rout, err := NewRecovery(RecoveryConfig{Self: "n5", Peers: f.peers, W: 3, Cluster: "c", Wait: tc.wait}, 2*time.Millisecond)
			require.NoError(t, err)
			now := 2 * time.Millisecond
			recover := func() {
				if rout.After > 0 {
					now += rout.After
					rout = rec.Poll(now)
				}
				polls := rout.Msgs
				for _, p := range []string{"n2", "n3", "n4", "n1"} { // P1 answers last
					if rout.Done != nil {
						break
					}
					rout = rec.StateReply(now, to(polls, p).Round, p, f.state(p))
				}
				require.NotNil(t, rout.Done)
				f.reps["n5"].Merge(rout.Done.Values)
				f.ready["n5"] = true
			}
			// 3. P2's acceptance of C, before or after X's reads.
			p2 := func() {
				now = max(now, tc.p2At)
				keep(f.set(p1, tc.p2At, toP2))
			}
			if tc.p2At < 2*time.Millisecond+tc.wait {
				p2()
				recover()
			} else {
				recover()
				p2()
			}

			// 4. B reads X, P3, P4 and writes to them.
			_, out, err = b.Start(0, Request{Name: "s", N: 1})
			require.NoError(t, err)
			var bw Output
			for _, p := range []string{"n5", "n4", "n3"} {
				bw.merge(f.get(b, now, Msg{Op: out.Msgs[0].Op, Round: out.Msgs[0].Round, To: p, Kind: MsgGet, Name: "s"}))
			}
			require.Len(t, bw.Msgs, 3, "B writes")
			for _, p := range []string{"n5", "n4", "n3"} {
				m := bw.Msgs[0]
				m.To = p
				keep(f.set(b, now, m))
			}

			// C, if it did not win, starts over and must not clash either.
			if p1.Pending() > 0 {
				c := &cluster3{reps: f.reps, coord: p1}
				d := c.run(t, p1.Retry(0, idC))
				require.NoError(t, d.Err)
				ranges = append(ranges, d.Range)
			}
			require.Len(t, ranges, 2, "both C and B got a range: %v", ranges)
			dup := ranges[0].Overlaps(ranges[1])
			require.Equal(t, tc.wantDup, dup, "ranges %v", ranges)
		})
	}
}

func TestRecoveryBootstrap(t *testing.T) {
	peers := []string{"n1", "n2", "n3"}
	cfg := RecoveryConfig{Self: "n1", Peers: peers, W: 2, Cluster: "c", Bootstrap: true, Wait: time.Second}
	fresh := PeerState{}
	for _, tc := range []struct {
		name      string
		n2, n3    *PeerState // nil: fails
		bootstrap bool
		want      string // "bootstrapped", "recovered", "again"
	}{
		{"every peer new: bootstrap", &fresh, &fresh, true, "bootstrapped"},
		{"every peer new, no bootstrap flag: wait", &fresh, &fresh, false, "again"},
		{"a peer unreachable: cannot tell, wait", &fresh, nil, true, "again"},
		{"a peer initialised and empty: bootstrap", &PeerState{Initialised: true, Cluster: "c"}, &fresh, true, "bootstrapped"},
		{"a peer holds values: never bootstrap", &PeerState{Initialised: true, Cluster: "c", Values: map[string]uint64{"s": 5}}, &fresh, true, "again"},
		{"two initialised peers: recover", &PeerState{Initialised: true, Cluster: "c", Values: map[string]uint64{"s": 5}}, &PeerState{Initialised: true, Cluster: "c", Values: map[string]uint64{"s": 9, "t": 2}}, true, "recovered"},
		{"a peer of another cluster is not counted", &PeerState{Initialised: true, Cluster: "other", Values: map[string]uint64{"s": 5}}, &PeerState{Initialised: true, Cluster: "c"}, true, "again"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			c.Bootstrap = tc.bootstrap
			r, out, err := NewRecovery(c, 0)
			require.NoError(t, err)
			require.Empty(t, out.Msgs, "no reads before the wait")
			require.Equal(t, time.Second, out.After)
			require.Empty(t, r.Poll(500*time.Millisecond).Msgs, "still waiting")
			out = r.Poll(time.Second)
			require.Len(t, out.Msgs, 2)
			polls := out.Msgs
			for _, p := range []struct {
				name string
				st   *PeerState
			}{{"n2", tc.n2}, {"n3", tc.n3}} {
				m := to(polls, p.name)
				if p.st == nil {
					out = r.PeerFailed(time.Second, m.Round, p.name)
				} else {
					out = r.StateReply(time.Second, m.Round, p.name, *p.st)
				}
				if out.Done != nil {
					break
				}
			}
			switch tc.want {
			case "bootstrapped":
				require.NotNil(t, out.Done)
				require.True(t, out.Done.Bootstrapped)
				require.Empty(t, out.Done.Values)
			case "recovered":
				require.NotNil(t, out.Done)
				require.False(t, out.Done.Bootstrapped)
				require.Equal(t, map[string]uint64{"s": 9, "t": 2}, out.Done.Values, "the max of each name")
				require.Equal(t, []string{"n2", "n3"}, out.Done.From)
			case "again":
				require.Nil(t, out.Done, "%s", r.Status())
				require.Positive(t, out.After, "polls again")
				require.False(t, r.Done())
			}
		})
	}
}

func TestRecoveryIgnoresStaleAndDuplicateAnswers(t *testing.T) {
	r, out, err := NewRecovery(RecoveryConfig{Self: "n1", Peers: []string{"n1", "n2", "n3"}, W: 2, Cluster: "c"}, 0)
	require.NoError(t, err)
	require.Len(t, out.Msgs, 2, "no wait: polls at once")
	round := out.Msgs[0].Round
	out = r.PeerFailed(0, round, "n2")
	require.Nil(t, out.Done)
	out = r.StateReply(0, round, "n3", PeerState{})
	require.Positive(t, out.After, "round over, none initialised")
	init := PeerState{Initialised: true, Cluster: "c", Values: map[string]uint64{"s": 3}}
	require.Nil(t, r.StateReply(0, round, "n2", init).Done, "an answer of an old round is ignored")
	out = r.Poll(out.After)
	round2 := out.Msgs[0].Round
	require.Nil(t, r.StateReply(0, round2, "n2", init).Done)
	require.Nil(t, r.StateReply(0, round2, "n2", init).Done, "a duplicate does not count twice")
	require.Nil(t, r.StateReply(0, round2, "n9", init).Done, "nor does a stranger")
	require.NotNil(t, r.StateReply(0, round2, "n3", init).Done)
}

func TestRecoveryAlone(t *testing.T) {
	_, out, err := NewRecovery(RecoveryConfig{Self: "n1", Peers: []string{"n1"}, W: 1, Cluster: "c", Bootstrap: true, Wait: time.Second}, 0)
	require.NoError(t, err)
	require.True(t, out.Done.Bootstrapped)
	r, out, err := NewRecovery(RecoveryConfig{Self: "n1", Peers: []string{"n1"}, W: 1, Cluster: "c", Wait: time.Second}, 0)
	require.NoError(t, err)
	require.Nil(t, out.Done)
	require.Zero(t, out.After, "nobody to ask, ever")
	require.Contains(t, r.Status(), "no peer")
}

func TestCoordinatorDropsLateAcceptances(t *testing.T) {
	c := newCluster3(SetIfUnchanged)
	c.coord.SetLimits(Limits{RoundLife: time.Second})
	id, out, err := c.coord.Start(0, Request{Name: "s", N: 1})
	require.NoError(t, err)
	var w Output
	for _, m := range out.Msgs[:2] {
		w.merge(c.coord.GetReply(0, m.Op, m.Round, m.To, 1))
	}
	require.Len(t, w.Msgs, 3)
	ok, cur, _ := c.reps["n1"].Set("s", 1, 2)
	require.Empty(t, c.coord.SetReply(time.Second, id, w.Msgs[0].Round, "n1", ok, cur).Done, "in time, counted")
	ok, cur, _ = c.reps["n2"].Set("s", 1, 2)
	late := c.coord.SetReply(time.Second+1, id, w.Msgs[0].Round, "n2", ok, cur)
	require.Empty(t, late.Done, "a quorum, but too late")
	require.Equal(t, []Backoff{{Op: id, Attempt: 1, Unreachable: true}}, late.Backoff)
}

func TestRangeLimit(t *testing.T) {
	c := NewCoordinator("n1", []string{"n1"}, 1, 1, FanoutAll)
	_, _, err := c.Start(0, Request{Name: "s", N: DefaultMaxRange + 1})
	require.ErrorIs(t, err, seq.ErrInvalidArgument)
	require.Contains(t, err.Error(), "over the limit")
	_, _, err = c.Start(0, Request{Name: "s", N: DefaultMaxRange})
	require.NoError(t, err)
	require.ErrorIs(t, ValidateName("\xff\xfe"), seq.ErrInvalidArgument)
}

func TestReplicaNameBound(t *testing.T) {
	r := NewReplica(SetIfUnchanged, nil)
	r.LimitNames(2)
	for _, n := range []string{"a", "b"} {
		ok, _, _ := r.Set(n, 1, 2)
		require.True(t, ok)
	}
	require.True(t, r.Full("c"))
	ok, cur, changed := r.Set("c", 1, 2)
	require.False(t, ok)
	require.False(t, changed)
	require.Equal(t, uint64(1), cur)
	ok, _, _ = r.Set("a", 2, 3)
	require.True(t, ok, "known names still move")
}
