package raft_seq

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/seqlab/seqlab/seq"
)

func TestElectsOneLeader(t *testing.T) {
	for _, n := range []int{1, 3, 5} {
		d := newDriver(t, 7, n, nil)
		require.True(t, d.runUntil(5*time.Second, func() bool { return d.leader() != 0 }), "no leader elected in 5s")
		d.run(3 * time.Second)
		lead := d.leader()
		for _, id := range d.ids {
			s := d.nodes[id].core.Status()
			require.Equal(t, lead, s.Leader, "n%d follows %d, the leader is %d", id, s.Leader, lead)
		}
	}
}

func TestAllocatesUniqueIncreasingAcrossLeaderChanges(t *testing.T) {
	d := newDriver(t, 11, 3, nil)
	require.True(t, d.runUntil(5*time.Second, func() bool { return d.leader() != 0 }))
	var last seq.ID
	ok := 0
	for round := range 6 {
		for i := range 20 {
			r := d.allocate(d.ids[(round+i)%3], "ids", uint64(1+i%4), 3*time.Second)
			if r.Err != nil {
				continue
			}
			require.GreaterOrEqual(t, r.Range.From, last, "range %v starts before the last one ended (%v)", r.Range, last)
			last = r.Range.To
			ok++
		}
		lead := d.leader()
		d.crash(lead)
		require.True(t, d.runUntil(10*time.Second, func() bool { l := d.leader(); return l != 0 && l != lead }), "no new leader")
		d.start(lead)
	}
	require.Greater(t, ok, 100)
	checkUnique(t, d.replies)
}

func TestPartitionedMinorityCannotAllocate(t *testing.T) {
	d := newDriver(t, 3, 5, nil)
	require.True(t, d.runUntil(5*time.Second, func() bool { return d.leader() != 0 }))
	old := d.leader()
	d.isolate(old)
	var minority []uint64
	for range 5 {
		minority = append(minority, d.request(old, "ids", 1))
	}
	d.run(8 * time.Second) // past the request timeout
	for _, id := range minority {
		r, ok := d.replies[id]
		require.True(t, ok, "request %d unanswered", id)
		require.Error(t, r.Err, "an isolated leader allocated %v", r.Range)
	}
	require.NotEqual(t, "leader", d.nodes[old].core.Status().State, "the isolated leader did not step down")
	lead := d.leader()
	require.NotZero(t, lead)
	require.NotEqual(t, old, lead)
	for _, id := range d.ids {
		if id != old {
			require.NoError(t, d.allocate(id, "ids", 2, 3*time.Second).Err, "majority node n%d", id)
		}
	}
	d.heal()
	require.True(t, d.runUntil(5*time.Second, func() bool { return d.nodes[old].core.Status().Leader == lead }))
	require.NoError(t, d.allocate(old, "ids", 1, 3*time.Second).Err)
	checkUnique(t, d.replies)
}

func TestFollowerForwardsOrRedirects(t *testing.T) {
	t.Run("forward", func(t *testing.T) {
		d := newDriver(t, 5, 3, nil)
		require.True(t, d.runUntil(5*time.Second, func() bool { return d.leader() != 0 }))
		d.run(time.Second)
		var follower uint64
		for _, id := range d.ids {
			if id != d.leader() {
				follower = id
			}
		}
		r := d.allocate(follower, "ids", 10, 2*time.Second)
		require.NoError(t, r.Err)
		require.Equal(t, seq.Range{From: 1, To: 11}, r.Range)
		r = d.allocate(d.leader(), "ids", 1, 2*time.Second)
		require.NoError(t, r.Err)
		require.Equal(t, seq.Range{From: 11, To: 12}, r.Range)
	})
	t.Run("redirect", func(t *testing.T) {
		d := newDriver(t, 5, 3, func(c *Config) { c.Redirect = true })
		require.True(t, d.runUntil(5*time.Second, func() bool { return d.leader() != 0 }))
		d.run(time.Second)
		lead := d.leader()
		for _, id := range d.ids {
			r := d.allocate(id, "ids", 1, 2*time.Second)
			if id == lead {
				require.NoError(t, r.Err)
				continue
			}
			var nl *NotLeaderError
			require.ErrorAs(t, r.Err, &nl)
			require.Equal(t, lead, nl.Leader)
			require.ErrorIs(t, r.Err, ErrNotLeader)
			require.False(t, Indefinite(r.Err))
		}
	})
	t.Run("no leader", func(t *testing.T) {
		d := newDriver(t, 5, 3, nil)
		r := d.allocate(1, "ids", 1, time.Millisecond)
		require.ErrorIs(t, r.Err, ErrNoLeader)
	})
}

// TestLostProposalsFailOrStayUnknown: a leader takes requests it cannot
// replicate, is cut off, and a new leader overwrites its log. Its
// requests end ErrDropped (certainly not allocated) or ErrUnknown, and no
// ID is handed out twice.
func TestLostProposalsFailOrStayUnknown(t *testing.T) {
	d := newDriver(t, 21, 3, func(c *Config) { c.RequestTimeout = 20 * time.Second })
	require.True(t, d.runUntil(5*time.Second, func() bool { return d.leader() != 0 }))
	require.NoError(t, d.allocate(d.leader(), "ids", 1, 2*time.Second).Err)
	old := d.leader()
	d.isolate(old)
	var lost []uint64
	for range 10 {
		lost = append(lost, d.request(old, "ids", 3))
	}
	require.True(t, d.runUntil(10*time.Second, func() bool { l := d.leader(); return l != 0 && l != old }))
	for _, id := range d.ids {
		if id != old {
			require.NoError(t, d.allocate(id, "ids", 5, 3*time.Second).Err)
		}
	}
	d.heal()
	d.run(time.Second)
	// More entries commit at the indexes the old leader's entries held:
	// from then on they are certainly lost.
	for range 12 {
		require.NoError(t, d.allocate(d.leader(), "ids", 1, 3*time.Second).Err)
	}
	dropped := 0
	for _, id := range lost {
		r, ok := d.replies[id]
		require.True(t, ok, "request %d unanswered:\n%s", id, d.traceString())
		require.Error(t, r.Err, "a cut-off leader's request allocated %v", r.Range)
		if errors.Is(r.Err, ErrDropped) {
			dropped++
		} else {
			require.ErrorIs(t, r.Err, ErrUnknown)
		}
	}
	require.Equal(t, len(lost), dropped, "the old leader saw its entries overwritten: every request is certainly lost")
	checkUnique(t, d.replies)
}

func TestDeterministicReplay(t *testing.T) {
	run := func(seed uint64) string {
		d := newDriver(t, seed, 5, nil)
		d.run(3 * time.Second)
		for i := range 30 {
			d.request(d.ids[i%5], "ids", uint64(1+i%3))
			d.run(20 * time.Millisecond)
		}
		if l := d.leader(); l != 0 {
			d.crash(l)
		}
		d.run(4 * time.Second)
		for i := range 10 {
			d.request(d.ids[i%5], "ids", 2)
		}
		d.run(3 * time.Second)
		checkUnique(t, d.replies)
		return d.traceString()
	}
	a, b, c := run(42), run(42), run(43)
	require.Greater(t, len(a), 1000)
	require.Equal(t, a, b, "two runs of seed 42 differ")
	require.NotEqual(t, a, c, "seeds 42 and 43 gave the same trace")
}

// TestSnapshotCatchUp: a node down while the log is compacted past it
// catches up from the leader's snapshot and ends with the same values.
func TestSnapshotCatchUp(t *testing.T) {
	d := newDriver(t, 9, 3, func(c *Config) { c.SnapshotEvery = 20 })
	require.True(t, d.runUntil(5*time.Second, func() bool { return d.leader() != 0 }))
	lead := d.leader()
	down := d.ids[0]
	if down == lead {
		down = d.ids[1]
	}
	d.crash(down)
	for range 200 {
		require.NoError(t, d.allocate(lead, "ids", 1, 2*time.Second).Err)
	}
	require.NotNil(t, d.nodes[lead].durable.Snapshot)
	require.Greater(t, d.nodes[lead].durable.Snapshot.GetMetadata().GetIndex(), uint64(100), "the leader compacted its log")
	d.start(down)
	require.True(t, d.runUntil(5*time.Second, func() bool { return d.nodes[down].core.Values()["ids"] == 201 }),
		"values %v", d.nodes[down].core.Values())
	require.NoError(t, d.allocate(down, "ids", 1, 2*time.Second).Err)
	checkUnique(t, d.replies)
}

// TestTotalPowerLoss: every node crashes at once, keeping only what it
// made durable; the restarted cluster goes on without handing out an ID
// twice.
func TestTotalPowerLoss(t *testing.T) {
	d := newDriver(t, 13, 3, func(c *Config) { c.SnapshotEvery = 15 })
	require.True(t, d.runUntil(5*time.Second, func() bool { return d.leader() != 0 }))
	for round := range 4 {
		for i := range 25 {
			d.request(d.ids[i%3], "ids", 2)
			d.run(time.Duration(1+round) * time.Millisecond)
		}
		for _, id := range d.ids {
			d.crash(id)
		}
		for _, id := range d.ids {
			d.start(id)
		}
		require.True(t, d.runUntil(10*time.Second, func() bool { return d.leader() != 0 }))
		require.NoError(t, d.allocate(d.leader(), "ids", 1, 3*time.Second).Err)
	}
	require.Greater(t, checkUnique(t, d.replies), 30)
}

func TestRequestValidation(t *testing.T) {
	d := newDriver(t, 1, 1, func(c *Config) { c.MaxRange = 100; c.MaxNames = 2 })
	require.True(t, d.runUntil(5*time.Second, func() bool { return d.leader() != 0 }))
	for _, tc := range []struct {
		name string
		n    uint64
		want error
	}{
		{"", 1, seq.ErrInvalidArgument},
		{"a\x00b", 1, seq.ErrInvalidArgument},
		{"ok", 0, seq.ErrInvalidArgument},
		{"ok", 101, seq.ErrInvalidArgument},
	} {
		r := d.allocate(1, tc.name, tc.n, time.Second)
		require.ErrorIs(t, r.Err, tc.want, "%q n=%d", tc.name, tc.n)
	}
	require.Empty(t, d.nodes[1].core.Values())
	require.NoError(t, d.allocate(1, "a", 1, time.Second).Err)
	require.NoError(t, d.allocate(1, "b", 1, time.Second).Err)
	require.ErrorIs(t, d.allocate(1, "c", 1, time.Second).Err, ErrBusy)
	c := d.nodes[1].core
	out := c.Request(d.now, Request{ID: 500, Name: "a", N: 1})
	require.Empty(t, out.Replies)
	out = c.Request(d.now, Request{ID: 500, Name: "a", N: 1})
	require.ErrorIs(t, out.Replies[0].Err, ErrDuplicateRequest)
}

// TestOverflowIsDeterministic: a committed entry that would run past the
// last ID changes nothing, on every node alike.
func TestOverflowIsDeterministic(t *testing.T) {
	d := newDriver(t, 2, 3, func(c *Config) { c.MaxRange = 1 << 63 })
	require.True(t, d.runUntil(5*time.Second, func() bool { return d.leader() != 0 }))
	lead := d.leader()
	require.NoError(t, d.allocate(lead, "big", 1<<63, 2*time.Second).Err)
	r := d.allocate(lead, "big", 1<<63, 2*time.Second)
	require.ErrorIs(t, r.Err, seq.ErrOverflow)
	require.NoError(t, d.allocate(lead, "big", 5, 2*time.Second).Err)
	d.run(time.Second)
	for _, id := range d.ids {
		require.Equal(t, uint64(1)<<63+6, d.nodes[id].core.Values()["big"])
	}
}

// TestStepRefusesBadMessages: what a peer could send that is not a raft
// message of this cluster is refused and changes nothing.
func TestStepRefusesBadMessages(t *testing.T) {
	d := newDriver(t, 4, 3, nil)
	require.True(t, d.runUntil(5*time.Second, func() bool { return d.leader() != 0 }))
	c := d.nodes[1].core
	before := c.Status()
	badCmd := command{origin: 3, req: 1, n: 1, name: "x"}.encode()
	for _, m := range []*raftpb.Message{
		nil,
		{Type: raftpb.MessageType_MsgHup.Enum(), To: new(uint64(1)), From: new(uint64(2)), Term: new(uint64(9))},
		{Type: raftpb.MessageType_MsgStorageAppend.Enum(), To: new(uint64(1)), From: new(uint64(2)), Term: new(uint64(9))},
		{Type: raftpb.MessageType_MsgApp.Enum(), To: new(uint64(2)), From: new(uint64(3)), Term: new(uint64(9))},
		{Type: raftpb.MessageType_MsgApp.Enum(), To: new(uint64(1)), From: new(uint64(1)), Term: new(uint64(9))},
		{Type: raftpb.MessageType_MsgApp.Enum(), To: new(uint64(1)), From: new(uint64(7)), Term: new(uint64(9))},
		{Type: raftpb.MessageType_MsgApp.Enum(), To: new(uint64(1)), From: new(uint64(2))},
		{Type: raftpb.MessageType_MsgTimeoutNow.Enum(), To: new(uint64(1)), From: new(uint64(2)), Term: new(uint64(9))},
		{Type: raftpb.MessageType_MsgProp.Enum(), To: new(uint64(1)), From: new(uint64(2)), Entries: []*raftpb.Entry{{Data: badCmd}}},
		{Type: raftpb.MessageType_MsgProp.Enum(), To: new(uint64(1)), From: new(uint64(2)), Entries: []*raftpb.Entry{{Data: []byte{9}}}},
		{Type: raftpb.MessageType_MsgApp.Enum(), To: new(uint64(1)), From: new(uint64(2)), Term: new(uint64(9)),
			Entries: []*raftpb.Entry{{Type: raftpb.EntryType_EntryConfChange.Enum()}}},
		{Type: raftpb.MessageType_MsgSnap.Enum(), To: new(uint64(1)), From: new(uint64(2)), Term: new(uint64(9)),
			Snapshot: &raftpb.Snapshot{Data: []byte("junk")}},
	} {
		_, err := c.Step(d.now, m)
		require.ErrorIs(t, err, seq.ErrInvalidArgument, "%v", m)
	}
	require.Equal(t, before, c.Status())
}

// FuzzStep: no message a peer sends can panic the core. A message raft
// cannot live with stops the core (ErrBroken), never the process.
func FuzzStep(f *testing.F) {
	good, _ := proto.Marshal(&raftpb.Message{Type: raftpb.MessageType_MsgApp.Enum(), To: new(uint64(1)), From: new(uint64(2)),
		Term: new(uint64(5)), Index: new(uint64(1)), LogTerm: new(uint64(1)), Commit: new(uint64(40)),
		Entries: []*raftpb.Entry{{Index: new(uint64(2)), Term: new(uint64(5))}}})
	f.Add(good)
	f.Fuzz(func(t *testing.T, b []byte) {
		m := &raftpb.Message{}
		if proto.Unmarshal(b, m) != nil {
			return
		}
		d := newDriver(t, 1, 3, nil)
		d.run(10 * time.Millisecond)
		c := d.nodes[1].core
		_, _ = c.Step(d.now, m)
		_ = c.Tick(d.now + time.Second)
	})
}

// TestBouncedProposalIsTaken: raft forwards a proposal with its origin's
// From, so during a leader change a node's own proposal can come back to
// it through a peer that took it for the leader; the core steps it like
// any other instead of refusing it.
func TestBouncedProposalIsTaken(t *testing.T) {
	d := newDriver(t, 4, 3, nil)
	require.True(t, d.runUntil(5*time.Second, func() bool { return d.leader() != 0 }))
	lead := d.leader()
	c := d.nodes[lead].core
	cmd := command{origin: lead, inc: 99, req: 1, n: 1, name: "x"}.encode()
	_, err := c.Step(d.now, &raftpb.Message{Type: raftpb.MessageType_MsgProp.Enum(), To: new(lead), From: new(lead),
		Entries: []*raftpb.Entry{{Data: cmd}}})
	require.NoError(t, err)
	_, err = c.Step(d.now, &raftpb.Message{Type: raftpb.MessageType_MsgHeartbeat.Enum(), To: new(lead), From: new(lead), Term: new(uint64(9))})
	require.ErrorIs(t, err, seq.ErrInvalidArgument, "only proposals come back with this node's From")
}

// TestBrokenCoreSleeps: a core that stopped with ErrBroken answers the
// requests it had proposed as unknown, refuses new ones, and asks for no
// more ticks: its tick time never moves, and waking the driver at it
// would wake it again at once, forever.
func TestBrokenCoreSleeps(t *testing.T) {
	d := newDriver(t, 4, 3, nil)
	require.True(t, d.runUntil(5*time.Second, func() bool { return d.leader() != 0 }))
	follower := d.ids[0]
	if follower == d.leader() {
		follower = d.ids[1]
	}
	c := d.nodes[follower].core
	require.True(t, d.runUntil(time.Second, func() bool { return c.Status().Leader != 0 }))
	term := c.Status().Term
	out := c.Request(d.now, Request{ID: 1, Name: "x", N: 1}) // forwarded: pending
	require.Empty(t, out.Replies)
	// A leader that believes this node holds far more than it does: what
	// a node that lost its log hears, and raft stops on.
	out, err := c.Step(d.now, &raftpb.Message{Type: raftpb.MessageType_MsgHeartbeat.Enum(), To: new(follower),
		From: new(d.leader()), Term: new(term), Commit: new(uint64(1000))})
	require.NoError(t, err)
	require.ErrorIs(t, c.Status().Broken, ErrBroken)
	require.Len(t, out.Replies, 1)
	require.ErrorIs(t, out.Replies[0].Err, ErrBroken)
	require.True(t, Indefinite(out.Replies[0].Err), "the pending request was proposed: %v", out.Replies[0].Err)
	require.False(t, Indefinite(c.Request(d.now, Request{ID: 2, Name: "x", N: 1}).Replies[0].Err),
		"a request to a broken core proposes nothing")
	require.Equal(t, Never, c.Tick(d.now+time.Second).Wake)
}
