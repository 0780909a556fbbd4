package disk_test

import (
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/fsys"
	"github.com/seqlab/seqlab/simnet/disk"
)

// mkdir makes dir durably: made, and its parent synced.
func mkdir(t *testing.T, d *disk.Disk, dir string) {
	t.Helper()
	require.NoError(t, d.MkdirAll(dir, 0o755))
	require.NoError(t, d.SyncDir("."))
}

func write(t *testing.T, d *disk.Disk, name, content string, sync bool) {
	t.Helper()
	f, err := d.Create(name)
	require.NoError(t, err)
	_, err = f.Write([]byte(content))
	require.NoError(t, err)
	if sync {
		require.NoError(t, f.Sync())
	}
	require.NoError(t, f.Close())
}

func appendTo(t *testing.T, d *disk.Disk, name, content string, sync bool) {
	t.Helper()
	f, err := d.OpenAppend(name)
	require.NoError(t, err)
	_, err = f.Write([]byte(content))
	require.NoError(t, err)
	if sync {
		require.NoError(t, f.Sync())
	}
	require.NoError(t, f.Close())
}

// syncFile fsyncs a file without writing to it.
func syncFile(t *testing.T, d *disk.Disk, name string) {
	t.Helper()
	appendTo(t, d, name, "", true)
}

func read(d *disk.Disk, name string) string {
	b, err := d.ReadFile(name)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

const missing = "<open d/f: file does not exist>"

func TestCrashKeepsOnlyWhatWasSynced(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fileSync  bool
		dirSync   bool
		wantAfter string
	}{
		{"file and dir synced", true, true, "v1"},
		{"file synced, dir not", true, false, missing},
		{"dir synced, file not", false, true, ""},
		{"nothing synced", false, false, missing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := disk.New(1)
			mkdir(t, d, "d")
			write(t, d, "d/f", "v1", tc.fileSync)
			if tc.dirSync {
				require.NoError(t, d.SyncDir("d"))
			}
			require.Equal(t, "v1", read(d, "d/f"), "visible before the crash")
			d.Crash(disk.LoseUnsynced)
			require.Equal(t, tc.wantAfter, read(d, "d/f"))
		})
	}
}

// TestNewDirNeedsItsParentSynced: a directory is an entry of its parent,
// so a crash loses it, and every file in it, until the parent is synced.
func TestNewDirNeedsItsParentSynced(t *testing.T) {
	for _, syncParent := range []bool{false, true} {
		d := disk.New(1)
		require.NoError(t, d.Mkdir("d", 0o755))
		require.ErrorIs(t, d.Mkdir("d", 0o755), fs.ErrExist)
		require.ErrorIs(t, d.Mkdir("x/y", 0o755), fs.ErrNotExist, "no parent")
		write(t, d, "d/f", "v1", true)
		require.NoError(t, d.SyncDir("d"))
		if syncParent {
			require.NoError(t, d.SyncDir("."))
		}
		d.Crash(disk.LoseUnsynced)
		if syncParent {
			require.Equal(t, "v1", read(d, "d/f"))
		} else {
			require.Equal(t, missing, read(d, "d/f"))
			require.NoError(t, d.Mkdir("d", 0o755), "the dir itself is gone")
		}
	}
}

func TestCrashUndoesUnsyncedRename(t *testing.T) {
	d := disk.New(1)
	mkdir(t, d, "d")
	write(t, d, "d/state", "old", true)
	require.NoError(t, d.SyncDir("d"))
	write(t, d, "d/tmp", "new", true)
	require.NoError(t, d.Rename("d/tmp", "d/state"))
	require.Equal(t, "new", read(d, "d/state"))
	d.Crash(disk.LoseUnsynced)
	require.Equal(t, "old", read(d, "d/state"), "the rename was never made durable")
}

func TestTornKeepsAPrefix(t *testing.T) {
	seen := map[int]bool{}
	for seed := range int64(40) {
		d := disk.New(seed)
		mkdir(t, d, "d")
		write(t, d, "d/f", "", true)
		require.NoError(t, d.SyncDir("d"))
		write(t, d, "d/f", "0123456789", false)
		d.Crash(disk.Torn)
		got := read(d, "d/f")
		require.Equal(t, "0123456789"[:len(got)], got)
		seen[len(got)] = true
	}
	require.Greater(t, len(seen), 3, "torn lengths vary with the seed")
}

// TestAppendWithoutSyncIsLost: what was appended after the last Sync is
// lost; in Torn mode a random prefix of it stays, never less than what was
// synced, and the same seed tears the same way.
func TestAppendWithoutSyncIsLost(t *testing.T) {
	run := func(seed int64, mode disk.CrashMode) string {
		d := disk.New(seed)
		mkdir(t, d, "d")
		appendTo(t, d, "d/log", "synced|", true)
		require.NoError(t, d.SyncDir("d"))
		appendTo(t, d, "d/log", "lost-or-torn", false)
		require.Equal(t, "synced|lost-or-torn", read(d, "d/log"))
		d.Crash(mode)
		return read(d, "d/log")
	}
	require.Equal(t, "synced|", run(1, disk.LoseUnsynced))
	lengths := map[int]bool{}
	for seed := range int64(40) {
		got := run(seed, disk.Torn)
		require.True(t, strings.HasPrefix("synced|lost-or-torn", got), "a prefix: %q", got)
		require.GreaterOrEqual(t, len(got), len("synced|"), "synced bytes are never torn: %q", got)
		require.Equal(t, got, run(seed, disk.Torn), "the seed decides")
		lengths[len(got)] = true
	}
	require.Greater(t, len(lengths), 3, "torn lengths vary with the seed")
}

// TestTruncateWithoutSyncIsLost: a truncate is durable only once the file
// is synced; until then a power loss keeps the old length.
func TestTruncateWithoutSyncIsLost(t *testing.T) {
	setup := func(seed int64) *disk.Disk {
		d := disk.New(seed)
		mkdir(t, d, "d")
		appendTo(t, d, "d/log", "0123456789", true)
		require.NoError(t, d.SyncDir("d"))
		require.NoError(t, d.Truncate("d/log", 4))
		require.Equal(t, "0123", read(d, "d/log"))
		return d
	}
	d := setup(1)
	d.Crash(disk.LoseUnsynced)
	require.Equal(t, "0123456789", read(d, "d/log"), "the truncate was lost")

	d = setup(1)
	syncFile(t, d, "d/log")
	d.Crash(disk.LoseUnsynced)
	require.Equal(t, "0123", read(d, "d/log"), "synced, the truncate stays")

	outcomes := map[string]bool{}
	for seed := range int64(40) {
		d := setup(seed)
		appendTo(t, d, "d/log", "ab", false)
		d.Crash(disk.Torn)
		got := read(d, "d/log")
		require.Contains(t, []string{"0123456789", "0123", "0123a", "0123ab"}, got)
		outcomes[got] = true
	}
	require.Len(t, outcomes, 4, "torn: the truncate is lost, or kept with a prefix of what followed")

	d = setup(1)
	require.NoError(t, d.Truncate("d/log", 6), "growing fills with zeros")
	require.Equal(t, "0123\x00\x00", read(d, "d/log"))
}

// TestRemoveIsDurableOnlyAfterSyncDir: a removed file comes back after a
// crash unless its directory was synced.
func TestRemoveIsDurableOnlyAfterSyncDir(t *testing.T) {
	for _, syncDir := range []bool{false, true} {
		d := disk.New(1)
		mkdir(t, d, "d")
		write(t, d, "d/f", "v1", true)
		require.NoError(t, d.SyncDir("d"))
		require.NoError(t, d.Remove("d/f"))
		require.Equal(t, missing, read(d, "d/f"))
		require.ErrorIs(t, d.Remove("d/f"), fs.ErrNotExist)
		if syncDir {
			require.NoError(t, d.SyncDir("d"))
		}
		d.Crash(disk.LoseUnsynced)
		if syncDir {
			require.Equal(t, missing, read(d, "d/f"))
		} else {
			require.Equal(t, "v1", read(d, "d/f"), "the removal was never durable")
		}
	}
}

// TestLockIsExclusiveAndDiesWithTheProcess: one holder per path, in the
// same process or not; Kill and Crash release every lock, and the dead
// process's late Close cannot release its successor's.
func TestLockIsExclusiveAndDiesWithTheProcess(t *testing.T) {
	for _, tc := range []struct {
		name string
		die  func(d *disk.Disk)
	}{
		{"kill", func(d *disk.Disk) { d.Kill() }},
		{"power loss", func(d *disk.Disk) { d.Crash(disk.LoseUnsynced) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := disk.New(1)
			old := d.Mount()
			require.NoError(t, old.Mkdir("d", 0o755))
			l, err := old.Lock("d/LOCK")
			require.NoError(t, err)
			_, err = old.Lock("d/LOCK")
			require.ErrorIs(t, err, fsys.ErrLocked, "the same process cannot take it twice")
			_, err = d.Mount().Lock("d/LOCK")
			require.ErrorIs(t, err, fsys.ErrLocked)
			other, err := old.Lock("d/OTHER")
			require.NoError(t, err, "locks are per path")
			require.NoError(t, other.Close())
			require.NoError(t, l.Close())
			l, err = old.Lock("d/LOCK")
			require.NoError(t, err, "free again after Close")

			tc.die(d)
			fresh := d.Mount()
			require.NoError(t, fresh.MkdirAll("d", 0o755))
			l2, err := fresh.Lock("d/LOCK")
			require.NoError(t, err, "the dead process's lock is gone")
			require.ErrorIs(t, l.Close(), disk.ErrGone)
			_, err = d.Mount().Lock("d/LOCK")
			require.ErrorIs(t, err, fsys.ErrLocked, "the late Close released nothing")
			require.NoError(t, l2.Close())
		})
	}
}

// TestCapacity: a write past the capacity writes what fits and fails with
// ENOSPC; freed space can be written again.
func TestCapacity(t *testing.T) {
	d := disk.New(1)
	mkdir(t, d, "d")
	d.SetCapacity(10)
	f, err := d.OpenAppend("d/a")
	require.NoError(t, err)
	n, err := f.Write([]byte("012345"))
	require.NoError(t, err)
	require.Equal(t, 6, n)
	n, err = f.Write([]byte("6789ab"))
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.Equal(t, 4, n, "a short write, as write(2) on a full disk")
	require.Equal(t, "0123456789", read(d, "d/a"))
	require.Equal(t, int64(10), d.Used())
	_, err = f.Write([]byte("x"))
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.ErrorIs(t, d.Truncate("d/a", 11), syscall.ENOSPC)

	require.NoError(t, d.Truncate("d/a", 3))
	write(t, d, "d/b", "4567890", true) // 3 + 7 = 10: fits exactly
	require.ErrorIs(t, d.Remove("d/nothing"), fs.ErrNotExist)
	require.NoError(t, d.Remove("d/b"))
	require.Equal(t, int64(3), d.Used(), "removed content is freed at once")
	d.SetCapacity(0)
	write(t, d, "d/c", strings.Repeat("x", 100), false)
}

func TestInjectedFailures(t *testing.T) {
	d := disk.New(1)
	mkdir(t, d, "d")
	write(t, d, "d/g", "g", true)
	f, err := d.OpenAppend("d/g")
	require.NoError(t, err)
	d.FailIO(disk.ErrInjected)
	_, err = d.Create("d/f")
	require.ErrorIs(t, err, disk.ErrInjected)
	_, err = d.OpenAppend("d/f")
	require.ErrorIs(t, err, disk.ErrInjected)
	_, err = f.Write([]byte("x"))
	require.ErrorIs(t, err, disk.ErrInjected)
	require.ErrorIs(t, f.Sync(), disk.ErrInjected)
	require.ErrorIs(t, d.SyncDir("d"), disk.ErrInjected)
	require.ErrorIs(t, d.Rename("d/g", "d/h"), disk.ErrInjected)
	require.ErrorIs(t, d.Remove("d/g"), disk.ErrInjected)
	require.ErrorIs(t, d.Truncate("d/g", 0), disk.ErrInjected)
	require.ErrorIs(t, d.Mkdir("e", 0o755), disk.ErrInjected)
	require.Equal(t, "g", read(d, "d/g"), "reads keep working")
	l, err := d.Lock("d/LOCK")
	require.NoError(t, err, "so do locks")
	require.NoError(t, l.Close())
	d.FailIO(nil)
	write(t, d, "d/f", "ok", true)
	_, err = d.ReadFile("d/missing")
	require.ErrorIs(t, err, fs.ErrNotExist)
}

// TestDeadProcessWritesNothing: a process's mount is fenced off once it is
// killed or the power fails, so a late handler of the dead process cannot
// bring lost data back; a new mount works.
func TestDeadProcessWritesNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		die  func(d *disk.Disk)
		want string
	}{
		{"kill keeps what was written", func(d *disk.Disk) { d.Kill() }, "v1"},
		{"power loss keeps what was synced", func(d *disk.Disk) { d.Crash(disk.LoseUnsynced) }, "v0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := disk.New(1)
			old := d.Mount()
			require.NoError(t, old.MkdirAll("d", 0o755))
			require.NoError(t, old.SyncDir("."))
			f, err := old.Create("d/f")
			require.NoError(t, err)
			_, err = f.Write([]byte("v0"))
			require.NoError(t, err)
			require.NoError(t, f.Sync())
			require.NoError(t, old.SyncDir("d"))
			f2, err := old.Create("d/g")
			require.NoError(t, err)
			_, err = f2.Write([]byte("v1"))
			require.NoError(t, err)
			require.NoError(t, old.Rename("d/g", "d/f"))

			tc.die(d)

			// The dead process's goroutines carry on: all of it fails.
			_, err = f2.Write([]byte("late"))
			require.ErrorIs(t, err, disk.ErrGone)
			require.ErrorIs(t, f2.Sync(), disk.ErrGone)
			require.ErrorIs(t, old.SyncDir("d"), disk.ErrGone)
			require.ErrorIs(t, old.Rename("d/f", "d/h"), disk.ErrGone)
			require.ErrorIs(t, old.Remove("d/f"), disk.ErrGone)
			require.ErrorIs(t, old.Truncate("d/f", 0), disk.ErrGone)
			require.ErrorIs(t, old.Mkdir("d/sub", 0o755), disk.ErrGone)
			require.ErrorIs(t, old.MkdirAll("d/sub", 0o755), disk.ErrGone)
			_, err = old.Create("d/x")
			require.ErrorIs(t, err, disk.ErrGone)
			_, err = old.OpenAppend("d/f")
			require.ErrorIs(t, err, disk.ErrGone)
			_, err = old.Lock("d/LOCK")
			require.ErrorIs(t, err, disk.ErrGone)
			_, err = old.ReadFile("d/f")
			require.ErrorIs(t, err, disk.ErrGone)

			fresh := d.Mount()
			b, err := fresh.ReadFile("d/f")
			require.NoError(t, err)
			require.Equal(t, tc.want, string(b))
			require.Equal(t, tc.want, read(d, "d/f"))
		})
	}
}
