package faultfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/internal/leftover"
)

func needFUSE(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("faultfs needs root to mount FUSE")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("no /dev/fuse: %v", err)
	}
}

// mount mounts a fresh filesystem and checks, when the test ends, that
// it left no mount behind.
func mount(t *testing.T) (*FS, string) {
	t.Helper()
	needFUSE(t)
	before := leftover.Take()
	base := t.TempDir()
	dir, mp := filepath.Join(base, "real"), filepath.Join(base, "mnt")
	require.NoError(t, os.Mkdir(dir, 0o755))
	require.NoError(t, os.Mkdir(mp, 0o755))
	start := time.Now()
	f, err := Mount(Config{Dir: dir, Mountpoint: mp, Seed: 1})
	require.NoError(t, err)
	t.Logf("mount: %v", time.Since(start))
	t.Cleanup(func() {
		require.NoError(t, f.Close())
		require.NoError(t, leftover.Since(before, leftover.Mine{Under: base}))
	})
	return f, mp
}

func write(t *testing.T, path, s string, sync bool) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	require.NoError(t, err)
	_, err = fh.WriteString(s)
	require.NoError(t, err)
	if sync {
		require.NoError(t, fh.Sync())
	}
	require.NoError(t, fh.Close())
}

func syncDir(t *testing.T, dir string) {
	t.Helper()
	d, err := os.Open(dir)
	require.NoError(t, err)
	require.NoError(t, d.Sync())
	require.NoError(t, d.Close())
}

func content(t *testing.T, path string) (string, bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return "", false
	}
	require.NoError(t, err)
	return string(b), true
}

func TestPowerLossDropsTheUnsyncedWriteAndKeepsTheSyncedOne(t *testing.T) {
	f, mp := mount(t)
	a, b := filepath.Join(mp, "a"), filepath.Join(mp, "b")
	write(t, a, "synced", true)
	syncDir(t, mp)
	write(t, a, "+unsynced", false)
	write(t, b, "never synced", false)
	syncDir(t, mp) // b's entry is durable, its content is not
	got, _ := content(t, a)
	require.Equal(t, "synced+unsynced", got, "before the loss processes see everything")

	start := time.Now()
	require.NoError(t, f.PowerLoss(LoseUnsynced))
	t.Logf("power loss and remount: %v", time.Since(start))
	got, ok := content(t, a)
	require.True(t, ok)
	require.Equal(t, "synced", got)
	got, ok = content(t, b)
	require.True(t, ok)
	require.Equal(t, "", got, "a durable entry keeps only its synced content")
	require.Equal(t, 1, f.Losses())

	// The real directory holds the durable state too.
	real, err := os.ReadFile(filepath.Join(f.Dir(), "a"))
	require.NoError(t, err)
	require.Equal(t, "synced", string(real))
}

func TestEntriesNeedADirectorySync(t *testing.T) {
	f, mp := mount(t)
	write(t, filepath.Join(mp, "old"), "old", true)
	require.NoError(t, os.Mkdir(filepath.Join(mp, "d"), 0o755))
	write(t, filepath.Join(mp, "d", "inner"), "inner", true)
	syncDir(t, filepath.Join(mp, "d"))
	syncDir(t, mp)

	write(t, filepath.Join(mp, "new"), "new", true) // synced content, entry not
	require.NoError(t, os.Rename(filepath.Join(mp, "old"), filepath.Join(mp, "renamed")))
	require.NoError(t, os.Mkdir(filepath.Join(mp, "e"), 0o755))
	write(t, filepath.Join(mp, "e", "x"), "x", true)
	syncDir(t, filepath.Join(mp, "e")) // e's entries, but not e's own entry
	require.NoError(t, os.Remove(filepath.Join(mp, "d", "inner")))

	require.NoError(t, f.PowerLoss(LoseUnsynced))
	_, ok := content(t, filepath.Join(mp, "new"))
	require.False(t, ok, "a file whose directory was not synced survived")
	got, ok := content(t, filepath.Join(mp, "old"))
	require.True(t, ok, "an unsynced rename was kept")
	require.Equal(t, "old", got)
	_, ok = content(t, filepath.Join(mp, "renamed"))
	require.False(t, ok)
	_, err := os.Stat(filepath.Join(mp, "e"))
	require.True(t, os.IsNotExist(err), "a directory whose parent was not synced survived")
	got, ok = content(t, filepath.Join(mp, "d", "inner"))
	require.True(t, ok, "an unsynced remove was kept")
	require.Equal(t, "inner", got)
}

func TestARenameOverASyncedFileIsDurableWithItsDirectory(t *testing.T) {
	// rr_seq's snapshot: write a temporary file, sync it, rename it over
	// the old one, sync the directory.
	f, mp := mount(t)
	snap, tmp := filepath.Join(mp, "snap"), filepath.Join(mp, "snap.tmp")
	write(t, snap, "v1", true)
	syncDir(t, mp)
	write(t, tmp, "v2", true)
	require.NoError(t, os.Rename(tmp, snap))
	// A new file made now may take the old one's inode number; it is
	// still another file.
	write(t, tmp, "v3 unsynced", false)
	require.NoError(t, f.PowerLoss(LoseUnsynced))
	got, _ := content(t, snap)
	require.Equal(t, "v1", got, "the rename was not durable without a directory sync")
	_, ok := content(t, tmp)
	require.False(t, ok)

	write(t, tmp, "v2", true)
	require.NoError(t, os.Rename(tmp, snap))
	syncDir(t, mp)
	require.NoError(t, f.PowerLoss(LoseUnsynced))
	got, _ = content(t, snap)
	require.Equal(t, "v2", got)
}

func TestRemountDropsThePageCache(t *testing.T) {
	f, mp := mount(t)
	p := filepath.Join(mp, "f")
	write(t, p, "durable", true)
	syncDir(t, mp)
	fh, err := os.OpenFile(p, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = fh.WriteAt([]byte("CHANGED"), 0)
	require.NoError(t, err)
	buf := make([]byte, 7)
	_, err = fh.ReadAt(buf, 0) // the kernel's cache now holds the change
	require.NoError(t, err)
	require.Equal(t, "CHANGED", string(buf))
	require.NoError(t, fh.Close())
	require.NoError(t, f.PowerLoss(LoseUnsynced))
	got, _ := content(t, p)
	require.Equal(t, "durable", got, "a rewrite below the synced length survived")
}

func TestTornKeepsAPrefixOfTheAppend(t *testing.T) {
	f, mp := mount(t)
	p := filepath.Join(mp, "log")
	write(t, p, "head:", true)
	syncDir(t, mp)
	write(t, p, "0123456789abcdefghij", false)
	require.NoError(t, f.PowerLoss(Torn))
	got, _ := content(t, p)
	require.GreaterOrEqual(t, len(got), len("head:"))
	require.Equal(t, "head:0123456789abcdefghij"[:len(got)], got)
	t.Logf("torn: %q", got)
}

func TestFailIO(t *testing.T) {
	f, mp := mount(t)
	p := filepath.Join(mp, "f")
	write(t, p, "ok", true)
	syncDir(t, mp)

	f.FailIO(syscall.ENOSPC)
	fh, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err, "opening without O_TRUNC changes nothing")
	_, err = fh.WriteString("more")
	require.ErrorIs(t, err, syscall.ENOSPC)
	fh.Close()
	_, err = os.Create(filepath.Join(mp, "g"))
	require.ErrorIs(t, err, syscall.ENOSPC)
	got, _ := content(t, p)
	require.Equal(t, "ok", got, "reads keep working")

	f.FailIO(0)
	fh, err = os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	defer fh.Close()
	_, err = fh.WriteString("+1")
	require.NoError(t, err)
	f.FailIO(syscall.EIO)
	require.ErrorIs(t, fh.Sync(), syscall.EIO)
	f.FailIO(0)
	require.NoError(t, fh.Sync())
}

func TestABusyMountRefusesPowerLoss(t *testing.T) {
	f, mp := mount(t)
	p := filepath.Join(mp, "f")
	write(t, p, "x", false)
	fh, err := os.Open(p)
	require.NoError(t, err)
	err = f.PowerLoss(LoseUnsynced)
	require.ErrorContains(t, err, "is a process still using it?")
	got, _ := content(t, p)
	require.Equal(t, "x", got, "a refused power loss dropped data")
	require.NoError(t, fh.Close())
	require.NoError(t, f.PowerLoss(LoseUnsynced))
	_, ok := content(t, p)
	require.False(t, ok)
}

func TestBadInputIsRefused(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	before := leftover.Take()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "faultfs: need a directory and a mount point"},
		{Config{Dir: dir, Mountpoint: filepath.Join(dir, "none")}, "no such file or directory"},
		{Config{Dir: file, Mountpoint: dir}, "is not a directory"},
	} {
		_, err := Mount(tc.cfg)
		require.ErrorContains(t, err, tc.want)
	}
	require.NoError(t, leftover.Since(before, leftover.Mine{Under: dir}))
}

func TestFlockWorks(t *testing.T) {
	// rr_seq locks its data dir with flock.
	_, mp := mount(t)
	p := filepath.Join(mp, "lock")
	a, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer a.Close()
	b, err := os.OpenFile(p, os.O_RDWR, 0)
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, syscall.Flock(int(a.Fd()), syscall.LOCK_EX|syscall.LOCK_NB))
	require.ErrorIs(t, syscall.Flock(int(b.Fd()), syscall.LOCK_EX|syscall.LOCK_NB), syscall.EWOULDBLOCK)
	require.NoError(t, syscall.Flock(int(a.Fd()), syscall.LOCK_UN))
	require.NoError(t, syscall.Flock(int(b.Fd()), syscall.LOCK_EX|syscall.LOCK_NB))
}

// A process started after the mount (a node) must not inherit the
// disk's FUSE connection: holding it, a node that exits after the lab
// died waits forever on a flush no server answers, and keeps its
// namespace. go-fuse's direct mount opens it without O_CLOEXEC.
func TestNodesInheritNoConnection(t *testing.T) {
	f, _ := mount(t)
	require.NoError(t, f.PowerLoss(LoseUnsynced)) // the remount too
	out, err := exec.Command("ls", "-l", "/proc/self/fd/").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.NotContains(t, string(out), "/dev/fuse")
}

// A mount namespace copied from ours while the disk is mounted (here a
// child's; anyone's unshare -m does the same) keeps the filesystem alive
// after our unmount, and a power loss used to wait until it died.
func TestAPowerLossIgnoresACopyOfTheMount(t *testing.T) {
	f, mp := mount(t)
	write(t, filepath.Join(mp, "a"), "x", false)
	copyHolder := exec.Command("sleep", "30")
	copyHolder.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	require.NoError(t, copyHolder.Start())
	defer func() { copyHolder.Process.Kill(); copyHolder.Wait() }()
	start := time.Now()
	require.NoError(t, f.PowerLoss(LoseUnsynced))
	require.Less(t, time.Since(start), 2*time.Second, "the power loss waited for the other namespace")
	_, ok := content(t, filepath.Join(mp, "a"))
	require.False(t, ok, "the unsynced file survived")
	write(t, filepath.Join(mp, "b"), "y", true)
	got, ok := content(t, filepath.Join(mp, "b"))
	require.True(t, ok)
	require.Equal(t, "y", got, "the disk works after the power loss")
}
