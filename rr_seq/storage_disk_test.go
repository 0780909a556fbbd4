package rr_seq_test

// The storage tests that need the simulated disk.

import (
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	. "github.com/seqlab/seqlab/rr_seq"
	"github.com/seqlab/seqlab/simnet/disk"
)

var testID = Identity{Cluster: "c1", Node: "n1"}

func appendOne(t *testing.T, st *Storage, name string, v uint64) {
	t.Helper()
	require.NoError(t, st.Append([]Entry{{name, v}}, true))
}

// spyFS records the calls that change a filesystem and the bytes written,
// and may act after each call (a crash, in the lab).
type spyFS struct {
	FS
	mu    sync.Mutex
	calls []string
	bytes int64
	after func(n int) // called after the n-th call, 1-based
}

func (s *spyFS) did(format string, args ...any) {
	s.mu.Lock()
	s.calls = append(s.calls, fmt.Sprintf(format, args...))
	n, after := len(s.calls), s.after
	s.mu.Unlock()
	if after != nil {
		after(n)
	}
}

func (s *spyFS) written() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

func (s *spyFS) MkdirAll(dir string, perm fs.FileMode) error {
	defer s.did("mkdirall %s", dir)
	return s.FS.MkdirAll(dir, perm)
}

func (s *spyFS) Mkdir(dir string, perm fs.FileMode) error {
	err := s.FS.Mkdir(dir, perm)
	s.did("mkdir %s: %v", dir, err)
	return err
}

func (s *spyFS) Create(name string) (File, error) {
	defer s.did("create %s", name)
	f, err := s.FS.Create(name)
	return s.wrap(f, name), err
}

func (s *spyFS) OpenAppend(name string) (File, error) {
	defer s.did("openappend %s", name)
	f, err := s.FS.OpenAppend(name)
	return s.wrap(f, name), err
}

func (s *spyFS) Rename(oldpath, newpath string) error {
	defer s.did("rename %s %s", oldpath, newpath)
	return s.FS.Rename(oldpath, newpath)
}

func (s *spyFS) Remove(name string) error {
	defer s.did("remove %s", name)
	return s.FS.Remove(name)
}

func (s *spyFS) Truncate(name string, size int64) error {
	defer s.did("truncate %s %d", name, size)
	return s.FS.Truncate(name, size)
}

func (s *spyFS) SyncDir(dir string) error {
	defer s.did("syncdir %s", dir)
	return s.FS.SyncDir(dir)
}

func (s *spyFS) Lock(name string) (io.Closer, error) {
	defer s.did("lock %s", name)
	return s.FS.Lock(name)
}

func (s *spyFS) wrap(f File, name string) File {
	if f == nil {
		return nil
	}
	return &spyFile{File: f, fs: s, name: name}
}

type spyFile struct {
	File
	fs   *spyFS
	name string
}

func (f *spyFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	f.fs.mu.Lock()
	f.fs.bytes += int64(n)
	f.fs.mu.Unlock()
	f.fs.did("write %s %d", f.name, len(p))
	return n, err
}

func (f *spyFile) Sync() error {
	defer f.fs.did("sync %s", f.name)
	return f.File.Sync()
}

func (f *spyFile) Close() error {
	defer f.fs.did("close %s", f.name)
	return f.File.Close()
}

// TestOpenStorageSyncsTheParents: a data dir it creates survives a power
// loss only if its parent is synced; so does every parent it creates.
func TestOpenStorageSyncsTheParents(t *testing.T) {
	base := t.TempDir()
	spy := &spyFS{FS: OSFS{}}
	st, err := OpenStorage(spy, filepath.Join(base, "a", "b"))
	require.NoError(t, err)
	require.NoError(t, st.Close())
	require.Equal(t, []string{
		"mkdir " + base + "/a/b: mkdir " + base + "/a/b: no such file or directory",
		"mkdir " + base + "/a: <nil>",
		"syncdir " + base,
		"mkdir " + base + "/a/b: <nil>",
		"syncdir " + base + "/a",
		"lock " + base + "/a/b/LOCK",
	}, spy.calls)

	spy.calls = nil
	st, err = OpenStorage(spy, filepath.Join(base, "a", "b"))
	require.NoError(t, err)
	require.NoError(t, st.Close())
	require.Equal(t, []string{
		"mkdir " + base + "/a/b: mkdir " + base + "/a/b: file exists",
		"lock " + base + "/a/b/LOCK",
	}, spy.calls, "an existing dir needs no sync")

	// On the simulated disk, which loses a directory whose parent was
	// not synced, the whole dir survives a power loss.
	d := disk.New(1)
	st, err = OpenStorage(d.Mount(), "data/n1")
	require.NoError(t, err)
	require.NoError(t, st.Init(testID, map[string]uint64{"s": 3}))
	d.Crash(disk.LoseUnsynced)
	st, err = OpenStorage(d.Mount(), "data/n1")
	require.NoError(t, err)
	l, err := st.Load()
	require.NoError(t, err)
	require.Equal(t, Loaded{Identity: &testID, Values: map[string]uint64{"s": 3}}, l)
}

func names(n int) map[string]uint64 {
	m := make(map[string]uint64, n)
	for i := range n {
		m[fmt.Sprintf("name-%05d", i)] = uint64(i + 1)
	}
	return m
}

// TestStorageSaveCostDoesNotGrowWithNames: one Append of one entry writes
// the same bytes, in the same calls, whether the dir holds 10 names or
// 20,000.
func TestStorageSaveCostDoesNotGrowWithNames(t *testing.T) {
	cost := func(n int) (int64, []string) {
		spy := &spyFS{FS: disk.New(1).Mount()}
		st, err := OpenStorage(spy, "data")
		require.NoError(t, err)
		require.NoError(t, st.Init(testID, names(n)))
		appendOne(t, st, "name-00003", 1000) // opens the log
		spy.calls, spy.bytes = nil, 0
		appendOne(t, st, "name-00003", 1001)
		return spy.written(), spy.calls
	}
	small, smallCalls := cost(10)
	large, largeCalls := cost(20_000)
	require.Equal(t, small, large, "bytes of one save")
	require.Equal(t, smallCalls, largeCalls)
	frame := FrameSizeForTest([]Entry{{"name-00003", 1001}})
	require.Equal(t, int64(frame), small, "one frame")
	require.Equal(t, []string{fmt.Sprintf("write data/log %d", frame), "sync data/log"}, smallCalls)
}

// TestStorageWritesAmortiseToO1: over many saves to 20,000 names,
// compactions included, the bytes written per save stay within a small
// constant of one frame. A threshold below the snapshot's size would
// rewrite the snapshot too often and break the bound.
func TestStorageWritesAmortiseToO1(t *testing.T) {
	spy := &spyFS{FS: disk.New(1).Mount()}
	st, err := OpenStorage(spy, "data")
	require.NoError(t, err)
	st.CompactMin = 4 << 10 // far below the snapshot's size
	require.NoError(t, st.Init(testID, names(20_000)))
	initBytes := spy.written()
	const saves = 60_000
	frame := int64(FrameSizeForTest([]Entry{{"name-00000", 100_000}}))
	for i := range saves {
		name := fmt.Sprintf("name-%05d", (i*7919)%20_000)
		require.NoError(t, st.Append([]Entry{{name, uint64(100_000 + i)}}, false))
	}
	stats := st.Stats()
	perSave := float64(spy.written()-initBytes) / saves
	t.Logf("%d saves: %.1f bytes each (a frame is %d), %d compactions of a %d-byte snapshot",
		saves, perSave, frame, stats.Compactions, stats.SnapshotBytes)
	require.GreaterOrEqual(t, stats.Compactions, 3, "the test must cross compactions")
	require.Zero(t, stats.CompactionFailures)
	require.LessOrEqual(t, perSave, 3*float64(frame), "amortised O(1)")
}

// TestStorageKeepsPersistingOnASmallDisk: on a 64 KiB disk, 1,000 distinct
// names persist, and saves go on. When the disk is so full that a
// compaction cannot fit, the compaction fails, gives its space back, and
// saves still succeed while a frame fits (the earlier one-file state
// needed the whole state's size free for every save); once space is back,
// the next compaction succeeds. A crash at the end loses nothing
// acknowledged.
func TestStorageKeepsPersistingOnASmallDisk(t *testing.T) {
	const capacity = 64 << 10
	d := disk.New(7)
	d.SetCapacity(capacity)
	st, err := OpenStorage(d.Mount(), "data")
	require.NoError(t, err)
	st.CompactMin = 4 << 10
	require.NoError(t, st.Init(testID, nil))
	acked := map[string]uint64{}
	save := func(name string, v uint64) {
		t.Helper()
		require.NoError(t, st.Append([]Entry{{name, v}}, true), "%s=%d on %s", name, v, d)
		acked[name] = v
	}
	name := func(i int) string { return fmt.Sprintf("tenant-%04d", i%1000) }
	for i := range 1000 {
		save(name(i), 1)
	}
	require.Positive(t, st.Stats().Compactions)

	// Fill the disk so that, when the log next reaches the threshold,
	// half a snapshot is free.
	stats := st.Stats()
	ballast := capacity - d.Used() - (CompactThresholdForTest(st.CompactMin, stats.SnapshotBytes) - stats.LogBytes) - stats.SnapshotBytes/2
	require.Positive(t, ballast)
	f, err := d.Create("ballast")
	require.NoError(t, err)
	_, err = f.Write(make([]byte, ballast))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	i := 0
	for st.Stats().CompactionFailures == 0 {
		require.Less(t, i, 5000, "the log should have reached the threshold, and its compaction failed")
		save(name(i), uint64(2+i/1000))
		i++
	}
	require.ErrorIs(t, st.Stats().LastCompactionErr, syscall.ENOSPC)
	free := capacity - d.Used()
	legacy := int64(LegacyStateSizeForTest(acked))
	require.Less(t, free, legacy, "an earlier-version save would not fit: it writes the whole state")
	for range 100 {
		save(name(i), uint64(2+i/1000))
		i++
	}

	require.NoError(t, d.Remove("ballast"))
	done := st.Stats().Compactions
	for st.Stats().Compactions == done {
		require.Less(t, i, 10000, "the retry should have come and succeeded")
		save(name(i), uint64(2+i/1000))
		i++
	}
	require.NoError(t, st.Stats().LastCompactionErr)
	t.Logf("%d saves after the 1,000 names, %d compactions, %d failed; %s", i, st.Stats().Compactions, st.Stats().CompactionFailures, d)

	d.Crash(disk.Torn)
	st, err = OpenStorage(d.Mount(), "data")
	require.NoError(t, err)
	l, err := st.Load()
	require.NoError(t, err)
	require.Equal(t, acked, l.Values)
}

// TestStorageRecoversFromFailedWrites: a short write on a full disk, or a
// failed write or fsync, fails its Append and leaves no garbage in the log
// for the next frames to follow.
func TestStorageRecoversFromFailedWrites(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(d *disk.Disk)
	}{
		{"short write, disk full", func(d *disk.Disk) { d.SetCapacity(d.Used() + 5) }},
		{"write error", func(d *disk.Disk) { d.FailIO(disk.ErrInjected) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := disk.New(1)
			st, err := OpenStorage(d.Mount(), "data")
			require.NoError(t, err)
			require.NoError(t, st.Init(testID, map[string]uint64{"a": 1}))
			appendOne(t, st, "a", 2)
			tc.fault(d)
			require.Error(t, st.Append([]Entry{{"a", 3}}, true))
			d.SetCapacity(0)
			d.FailIO(nil)
			appendOne(t, st, "b", 4)
			d.Crash(disk.LoseUnsynced)
			st, err = OpenStorage(d.Mount(), "data")
			require.NoError(t, err)
			l, err := st.Load()
			require.NoError(t, err, "no garbage in the middle of the log")
			require.Equal(t, map[string]uint64{"a": 2, "b": 4}, l.Values)
			require.Zero(t, st.Stats().TornBytes)
		})
	}

	t.Run("failed fsync", func(t *testing.T) {
		d := disk.New(1)
		spy := &spyFS{FS: d.Mount()}
		st, err := OpenStorage(spy, "data")
		require.NoError(t, err)
		require.NoError(t, st.Init(testID, map[string]uint64{"a": 1}))
		appendOne(t, st, "a", 2)
		// The frame is written, then the disk fails: its fsync fails.
		spy.after = func(n int) {
			if strings.HasPrefix(spy.calls[n-1], "write data/log") {
				d.FailIO(disk.ErrInjected)
			}
		}
		require.ErrorIs(t, st.Append([]Entry{{"a", 3}}, true), disk.ErrInjected)
		spy.after = nil
		require.ErrorIs(t, st.Append([]Entry{{"a", 4}}, true), disk.ErrInjected, "the log is in doubt: compact first, which fails too")
		d.FailIO(nil)
		before := st.Stats().Compactions
		appendOne(t, st, "a", 5)
		require.Equal(t, before+1, st.Stats().Compactions, "the state was rewritten before the log went on")
		d.Crash(disk.LoseUnsynced)
		st, err = OpenStorage(d.Mount(), "data")
		require.NoError(t, err)
		l, err := st.Load()
		require.NoError(t, err)
		require.Equal(t, uint64(5), l.Values["a"])
	})
}

// TestStorageSurvivesACrashAtEveryStep runs a workload of Init, appends
// (some unsynced) and compactions on the simulated disk, crashes it after
// its n-th filesystem call for every n, in both crash modes, and checks
// that the dir then loads to a state with every value an Append
// acknowledged with sync, and no value never written. The loaded storage
// must then take appends and load again.
func TestStorageSurvivesACrashAtEveryStep(t *testing.T) {
	type result struct {
		initDone    bool
		acked       map[string]uint64
		tried       map[string]uint64 // the largest value of each name ever appended
		compactions int
	}
	workload := func(st *Storage, r *result) {
		st.CompactMin = 150
		if _, err := st.Load(); err != nil {
			return
		}
		if st.Init(testID, map[string]uint64{"s0": 1}) != nil {
			return
		}
		r.initDone = true
		r.acked["s0"] = 1
		for i := range 60 {
			name := fmt.Sprintf("s%d", i%6)
			v := uint64(10 + i)
			sync := i%4 != 3
			r.tried[name], r.tried["all"] = max(r.tried[name], v), v
			if st.Append([]Entry{{name, v}, {"all", v}}, sync) != nil {
				return
			}
			if sync {
				// The fsync makes the unsynced frames before it durable too.
				r.acked = maps.Clone(r.tried)
			}
		}
		r.compactions = st.Stats().Compactions
	}
	check := func(t *testing.T, d *disk.Disk, r *result, what string) {
		t.Helper()
		st, err := OpenStorage(d.Mount(), "data/n1")
		require.NoError(t, err, what)
		l, err := st.Load()
		require.NoError(t, err, what)
		if r.initDone {
			require.Equal(t, &testID, l.Identity, what)
		}
		if l.Identity == nil {
			require.Empty(t, l.Values, what)
			return
		}
		for name, v := range r.acked {
			require.GreaterOrEqual(t, l.Values[name], v, "%s: %s lost", what, name)
		}
		for name, v := range l.Values {
			require.LessOrEqual(t, v, max(r.tried[name], r.acked[name]), "%s: %s=%d never written", what, name, v)
		}
		// It goes on from there.
		require.NoError(t, st.Append([]Entry{{"after", 1}}, true), what)
		require.NoError(t, st.Close())
		st, err = OpenStorage(d.Mount(), "data/n1")
		require.NoError(t, err, what)
		l2, err := st.Load()
		require.NoError(t, err, what)
		require.Equal(t, uint64(1), l2.Values["after"], what)
	}

	for _, mode := range []disk.CrashMode{disk.LoseUnsynced, disk.Torn} {
		t.Run(mode.String(), func(t *testing.T) {
			steps := 0
			for n := 1; ; n++ {
				d := disk.New(int64(n))
				crashed := false
				spy := &spyFS{FS: d.Mount()}
				spy.after = func(k int) {
					if k == n {
						d.Crash(mode)
						crashed = true
					}
				}
				r := &result{acked: map[string]uint64{}, tried: map[string]uint64{}}
				st, err := OpenStorage(spy, "data/n1")
				if err == nil {
					workload(st, r)
				}
				if !crashed {
					require.GreaterOrEqual(t, r.compactions, 5, "the workload must cross compactions")
					steps = n - 1
					break
				}
				check(t, d, r, fmt.Sprintf("crash after call %d (%s)", n, spy.calls[n-1]))
			}
			t.Logf("crashed after each of %d calls", steps)
			require.Greater(t, steps, 100)
		})
	}
}

// TestStorageOnDisk runs rr_seq's real storage on the simulated disk: a
// synced append survives a crash of either kind; one with the fsyncs
// skipped does not (or, torn, may keep its whole frame), and no crash
// leaves a state that fails to load.
func TestStorageOnDisk(t *testing.T) {
	for _, mode := range []disk.CrashMode{disk.LoseUnsynced, disk.Torn} {
		for _, sync := range []bool{true, false} {
			d := disk.New(1)
			st, err := OpenStorage(d.Mount(), "data/node")
			require.NoError(t, err)
			_, err = OpenStorage(d.Mount(), "data/node")
			require.ErrorIs(t, err, ErrLocked)
			require.NoError(t, st.Init(Identity{Cluster: "c", Node: "n1"}, map[string]uint64{"s": 1}))
			require.NoError(t, st.Append([]Entry{{Name: "s", Value: 42}}, sync))
			d.Crash(mode)
			st, err = OpenStorage(d.Mount(), "data/node")
			require.NoError(t, err, "the crash released the lock")
			got, err := st.Load()
			require.NoError(t, err, "a crash never leaves a corrupt state")
			require.Equal(t, &Identity{Cluster: "c", Node: "n1"}, got.Identity)
			switch {
			case sync:
				require.Equal(t, map[string]uint64{"s": 42}, got.Values)
			case mode == disk.LoseUnsynced:
				require.Equal(t, map[string]uint64{"s": 1}, got.Values, "unsynced state is lost")
			default:
				require.Contains(t, []uint64{1, 42}, got.Values["s"])
			}
		}
	}
}
