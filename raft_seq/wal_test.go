package raft_seq

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/seqlab/seqlab/simnet/disk"
)

var testID = Identity{Cluster: "test", Node: 1}

func ent(index, term uint64, data string) *raftpb.Entry {
	return &raftpb.Entry{Index: new(index), Term: new(term), Data: []byte(data)}
}

func hs(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: new(term), Vote: new(vote), Commit: new(commit)}
}

// describe is a state's text form, for comparing states in tests.
func describe(st State) string {
	s := fmt.Sprintf("hs=%v snap=%d/%d data=%x", st.HardState.String(), st.Snapshot.GetMetadata().GetIndex(),
		st.Snapshot.GetMetadata().GetTerm(), st.Snapshot.GetData())
	for _, e := range st.Entries {
		s += fmt.Sprintf(" %d/%d:%s", e.GetIndex(), e.GetTerm(), e.GetData())
	}
	return s
}

func openWAL(t *testing.T, fs FS, dir string) (*WAL, State) {
	t.Helper()
	w, st, err := OpenWAL(fs, dir, testID)
	require.NoError(t, err)
	return w, st
}

func TestWALRoundTrip(t *testing.T) {
	d := disk.New(1)
	fs := d.Mount()
	w, st := openWAL(t, fs, "data")
	require.Nil(t, st.Snapshot, "a new dir is fresh")
	require.NoError(t, w.Init(Bootstrap([]uint64{1, 2, 3})))
	writes := []Write{
		{Seq: 1, HardState: hs(2, 1, 1)},
		{Seq: 2, Entries: []*raftpb.Entry{ent(2, 2, "a"), ent(3, 2, "b"), ent(4, 2, "c")}, HardState: hs(2, 1, 3)},
		{Seq: 3, Entries: []*raftpb.Entry{ent(4, 3, "C"), ent(5, 3, "d")}, HardState: hs(3, 0, 3)}, // a new leader overwrites 4
		{Seq: 4, Snapshot: &raftpb.Snapshot{Data: encodeValues(map[string]uint64{"x": 9}),
			Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(3)), Term: new(uint64(2)), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}},
	}
	require.NoError(t, w.Append(writes[:2], true))
	require.NoError(t, w.Append(writes[2:], true))
	want := Bootstrap([]uint64{1, 2, 3})
	for _, wr := range writes {
		require.NoError(t, applyWrite(&want, wr))
	}
	require.Equal(t, "4/3:C 5/3:d", describe(want)[len(describe(want))-11:])
	require.NoError(t, w.Close())
	d.Crash(disk.LoseUnsynced)
	w, st = openWAL(t, d.Mount(), "data")
	defer w.Close()
	require.Equal(t, describe(want), describe(st))
	require.True(t, proto.Equal(want.Snapshot, st.Snapshot))
}

func TestWALLockAndIdentity(t *testing.T) {
	d := disk.New(1)
	fs := d.Mount()
	w, _ := openWAL(t, fs, "data")
	require.NoError(t, w.Init(Bootstrap([]uint64{1})))
	_, _, err := OpenWAL(fs, "data", testID)
	require.ErrorIs(t, err, ErrLocked)
	require.NoError(t, w.Close())
	_, _, err = OpenWAL(fs, "data", Identity{Cluster: "test", Node: 2})
	require.ErrorIs(t, err, ErrIdentity)
	_, _, err = OpenWAL(fs, "data", Identity{Cluster: "other", Node: 1})
	require.ErrorIs(t, err, ErrIdentity)
	_, _, err = OpenWAL(fs, "data", Identity{})
	require.Error(t, err)
}

// TestWALPowerLoss: a power loss keeps what was synced, whatever a torn
// write-back left of the rest.
func TestWALPowerLoss(t *testing.T) {
	for seed := range int64(40) {
		d := disk.New(seed)
		w, _ := openWAL(t, d.Mount(), "data")
		require.NoError(t, w.Init(Bootstrap([]uint64{1, 2, 3})))
		all := Bootstrap([]uint64{1, 2, 3})
		synced := cloneState(all) // a sync makes everything written before it durable
		idx := uint64(1)
		for i := range 10 {
			var ws []Write
			for range 3 {
				idx++
				ws = append(ws, Write{Entries: []*raftpb.Entry{ent(idx, 2, fmt.Sprint(idx))}, HardState: hs(2, 1, idx-1)})
			}
			sync := i%2 == 0
			require.NoError(t, w.Append(ws, sync))
			for _, wr := range ws {
				require.NoError(t, applyWrite(&all, wr))
			}
			if sync {
				synced = cloneState(all)
			}
		}
		mode := disk.LoseUnsynced
		if seed%2 == 1 {
			mode = disk.Torn
		}
		d.Crash(mode)
		w2, st := openWAL(t, d.Mount(), "data")
		// What survived is the synced state, or a longer prefix of the writes.
		require.GreaterOrEqual(t, st.LastIndex(), synced.LastIndex(), "seed %d lost synced entries", seed)
		require.Equal(t, describe(synced), describe(State{HardState: synced.HardState, Snapshot: st.Snapshot,
			Entries: st.Entries[:len(synced.Entries)]}), "seed %d", seed)
		require.NoError(t, w2.Append([]Write{{Entries: []*raftpb.Entry{ent(st.LastIndex()+1, 3, "next")}}}, true))
		require.NoError(t, w2.Close())
		d.Crash(disk.LoseUnsynced)
		w3, st3 := openWAL(t, d.Mount(), "data")
		require.Equal(t, "next", string(st3.Entries[len(st3.Entries)-1].GetData()), "the log goes on after a cut tail")
		w3.Close()
	}
}

func TestWALTornTailAndCorruption(t *testing.T) {
	dir := t.TempDir()
	w, _ := openWAL(t, OSFS{}, dir)
	require.NoError(t, w.Init(Bootstrap([]uint64{1})))
	for i := uint64(2); i < 6; i++ {
		require.NoError(t, w.Append([]Write{{Entries: []*raftpb.Entry{ent(i, 2, "x")}}}, true))
	}
	require.NoError(t, w.Close())
	path := filepath.Join(dir, walFile)
	good, err := os.ReadFile(path)
	require.NoError(t, err)

	t.Run("torn tail is cut", func(t *testing.T) {
		require.NoError(t, os.WriteFile(path, append(append([]byte(nil), good...), good[len(good)-20:len(good)-3]...), 0o644))
		w, st := openWAL(t, OSFS{}, dir)
		w.Close()
		require.Equal(t, uint64(5), st.LastIndex())
		b, _ := os.ReadFile(path)
		require.Equal(t, good, b, "the tail was truncated")
	})
	t.Run("damage in the middle is an error", func(t *testing.T) {
		bad := append([]byte(nil), good...)
		bad[len(bad)-40] ^= 0xff // in the second to last frame
		require.NoError(t, os.WriteFile(path, bad, 0o644))
		_, _, err := OpenWAL(OSFS{}, dir, testID)
		require.ErrorIs(t, err, ErrCorrupt)
		b, _ := os.ReadFile(path)
		require.Equal(t, bad, b, "a corrupt log is left as it is")
	})
	t.Run("not a log", func(t *testing.T) {
		require.NoError(t, os.WriteFile(path, []byte("hello, this is no log at all"), 0o644))
		_, _, err := OpenWAL(OSFS{}, dir, testID)
		require.ErrorIs(t, err, ErrCorrupt)
	})
}

// TestWALCompaction: snapshots keep the file from growing without bound,
// and a rewrite loses nothing.
func TestWALCompaction(t *testing.T) {
	d := disk.New(3)
	w, _ := openWAL(t, d.Mount(), "data")
	w.CompactAt = 4 << 10
	require.NoError(t, w.Init(Bootstrap([]uint64{1})))
	want := Bootstrap([]uint64{1})
	values := map[string]uint64{}
	var most int64
	for i := uint64(2); i < 2000; i++ {
		ws := []Write{{Entries: []*raftpb.Entry{ent(i, 2, "0123456789")}, HardState: hs(2, 1, i)}}
		values["k"] = i
		if i%100 == 0 {
			ws = append(ws, Write{Snapshot: &raftpb.Snapshot{Data: encodeValues(values),
				Metadata: &raftpb.SnapshotMetadata{Index: new(i - 10), Term: new(uint64(2)), ConfState: &raftpb.ConfState{Voters: []uint64{1}}}}})
		}
		require.NoError(t, w.Append(ws, true))
		for _, wr := range ws {
			require.NoError(t, applyWrite(&want, wr))
		}
		most = max(most, w.Stats().Size)
	}
	require.Less(t, most, int64(16<<10), "the log was compacted")
	require.NoError(t, w.Close())
	d.Crash(disk.LoseUnsynced)
	w, st := openWAL(t, d.Mount(), "data")
	defer w.Close()
	require.Equal(t, describe(want), describe(st))
}

// TestWALRecoversFromFailedWrites: a failed write or sync fails Append;
// once the disk works again the next Append rewrites the log and goes on.
func TestWALRecoversFromFailedWrites(t *testing.T) {
	d := disk.New(4)
	w, _ := openWAL(t, d.Mount(), "data")
	require.NoError(t, w.Init(Bootstrap([]uint64{1})))
	require.NoError(t, w.Append([]Write{{Entries: []*raftpb.Entry{ent(2, 2, "a")}}}, true))
	d.FailIO(disk.ErrInjected)
	err := w.Append([]Write{{Entries: []*raftpb.Entry{ent(3, 2, "b")}}}, true)
	require.True(t, errors.Is(err, disk.ErrInjected), "%v", err)
	d.FailIO(nil)
	require.NoError(t, w.Append([]Write{{Entries: []*raftpb.Entry{ent(3, 2, "b")}}}, true))
	require.NoError(t, w.Close())
	d.Crash(disk.LoseUnsynced)
	w, st := openWAL(t, d.Mount(), "data")
	defer w.Close()
	require.Equal(t, uint64(3), st.LastIndex())
	require.Equal(t, "b", string(st.Entries[1].GetData()))
}

// TestClusterOnSimulatedDisks runs the core cluster with its durable state
// in WALs on simulated disks: every crash is a power loss that tears what
// was not synced, and every restart reads the WAL back.
func TestClusterOnSimulatedDisks(t *testing.T) {
	d := newDriver(t, 17, 3, func(c *Config) { c.SnapshotEvery = 25 })
	disks := map[uint64]*disk.Disk{}
	wals := map[uint64]*WAL{}
	open := func(id uint64) {
		w, st, err := OpenWAL(disks[id].Mount(), "data", Identity{Cluster: "c", Node: id})
		require.NoError(t, err)
		if st.Snapshot == nil {
			st = Bootstrap(d.ids)
			require.NoError(t, w.Init(st))
		}
		w.CompactAt = 2 << 10
		wals[id] = w
		d.nodes[id].durable = st
	}
	for _, id := range d.ids {
		disks[id] = disk.New(int64(id))
		open(id)
	}
	d.onDurable = func(id uint64, ws []Write) {
		require.NoError(t, wals[id].Append(ws, true))
	}
	require.True(t, d.runUntil(5*time.Second, func() bool { return d.leader() != 0 }))
	for round := range 6 {
		for i := range 30 {
			d.request(d.ids[i%3], "ids", 3)
			d.run(2 * time.Millisecond)
		}
		victims := []uint64{d.ids[round%3]}
		if round%3 == 2 {
			victims = d.ids // a total power loss
		}
		for _, id := range victims {
			d.crash(id)
			disks[id].Crash(disk.Torn)
			open(id)
		}
		for _, id := range victims {
			d.start(id)
		}
		require.True(t, d.runUntil(10*time.Second, func() bool { return d.leader() != 0 }))
		require.NoError(t, d.allocate(d.leader(), "ids", 1, 3*time.Second).Err)
	}
	require.Greater(t, checkUnique(t, d.replies), 60)
	for _, w := range wals {
		require.NoError(t, w.Close())
	}
}
