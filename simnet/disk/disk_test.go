package disk_test

import (
	"io/fs"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/rr_seq"
	"github.com/seqlab/seqlab/simnet/disk"
)

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

func read(d *disk.Disk, name string) string {
	b, err := d.ReadFile(name)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func TestCrashKeepsOnlyWhatWasSynced(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fileSync  bool
		dirSync   bool
		wantAfter string
	}{
		{"file and dir synced", true, true, "v1"},
		{"file synced, dir not", true, false, "<open d/f: file does not exist>"},
		{"dir synced, file not", false, true, ""},
		{"nothing synced", false, false, "<open d/f: file does not exist>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := disk.New(1)
			require.NoError(t, d.MkdirAll("d", 0o755))
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

func TestCrashUndoesUnsyncedRename(t *testing.T) {
	d := disk.New(1)
	require.NoError(t, d.MkdirAll("d", 0o755))
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
		require.NoError(t, d.MkdirAll("d", 0o755))
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

func TestInjectedFailures(t *testing.T) {
	d := disk.New(1)
	require.NoError(t, d.MkdirAll("d", 0o755))
	d.FailIO(disk.ErrInjected)
	_, err := d.Create("d/f")
	require.ErrorIs(t, err, disk.ErrInjected)
	require.ErrorIs(t, d.SyncDir("d"), disk.ErrInjected)
	d.FailIO(nil)
	write(t, d, "d/f", "ok", true)
	_, err = d.ReadFile("d/missing")
	require.ErrorIs(t, err, fs.ErrNotExist)
}

// TestStorageOnDisk runs rr_seq's real storage on the simulated disk: a
// synced save survives a crash; a save with the fsyncs skipped does not.
func TestStorageOnDisk(t *testing.T) {
	for _, sync := range []bool{true, false} {
		d := disk.New(1)
		st, err := rr_seq.OpenStorage(d, "node")
		require.NoError(t, err)
		require.NoError(t, st.Save(map[string]uint64{"s": 42}, sync))
		d.Crash(disk.Torn)
		got, err := st.Load()
		require.NoError(t, err, "a crash never leaves a corrupt state file")
		if sync {
			require.Equal(t, map[string]uint64{"s": 42}, got)
		} else {
			require.Empty(t, got, "unsynced state is lost")
		}
	}
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
			_, err = old.Create("d/x")
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
