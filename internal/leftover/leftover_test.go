package leftover

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// The stock-taking must see what it is there to see, or every leak check
// built on it would pass for nothing.
func TestItSeesALeftoverMountAndChild(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	dir := t.TempDir()
	mp := filepath.Join(dir, "m")
	require.NoError(t, os.Mkdir(mp, 0o755))
	before := Take()
	require.NoError(t, syscall.Mount("tmpfs", mp, "tmpfs", 0, "size=1m"))
	mounted := true
	defer func() {
		if mounted {
			syscall.Unmount(mp, 0)
		}
	}()
	child := exec.Command("sleep", "30")
	require.NoError(t, child.Start())
	defer func() { child.Process.Kill(); child.Wait() }()

	err := Since(before, Mine{Under: dir})
	require.ErrorContains(t, err, "mount "+mp)
	require.ErrorContains(t, err, "child process")
	child.Process.Kill()
	child.Wait()
	require.NoError(t, Since(before, Mine{Under: t.TempDir()}), "a mount elsewhere is another test's")

	require.NoError(t, syscall.Unmount(mp, 0))
	mounted = false
	require.NoError(t, Since(before, Mine{Under: dir}))
	require.ErrorContains(t, Since(before, Mine{}), "say where the caller mounts")
}
