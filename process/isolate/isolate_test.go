package isolate

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/process/faultfs"
)

// The test binary doubles as a lab: it enters isolation, mounts a
// faultfs disk, says where, and waits to be killed.
func TestMain(m *testing.M) {
	if os.Getenv("ISOLATE_TEST_LAB") != "" {
		lab(os.Getenv("ISOLATE_TEST_LAB"))
		return
	}
	os.Exit(m.Run())
}

func lab(base string) {
	if err := Enter(); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	if os.Getenv("ISOLATE_TEST_EXIT") != "" {
		os.Exit(7)
	}
	real, mp := filepath.Join(base, "real"), filepath.Join(base, "mnt")
	os.Mkdir(real, 0o755)
	os.Mkdir(mp, 0o755)
	if _, err := faultfs.Mount(faultfs.Config{Dir: real, Mountpoint: mp}); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("mounted", os.Getpid())
	select {}
}

func mounted(t *testing.T, mp string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	return strings.Contains(string(b), " "+mp+" ")
}

func TestAKilledLabLeavesNoMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a mount namespace and FUSE need root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("no /dev/fuse: %v", err)
	}
	base := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "ISOLATE_TEST_LAB="+base)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, "mounted "), "the lab said %q", line)
	var inner int
	fmt.Sscanf(line, "mounted %d", &inner)

	mp := filepath.Join(base, "mnt")
	require.False(t, mounted(t, mp), "the isolated lab's mount is visible outside")
	// The outer process and the isolated one are both alive; kill the
	// outer one with SIGKILL, as a user or a CI timeout would.
	require.NoError(t, cmd.Process.Kill())
	cmd.Wait()
	require.Eventually(t, func() bool { return syscall.Kill(inner, 0) == syscall.ESRCH }, 5*time.Second, 10*time.Millisecond,
		"the isolated lab outlived its parent")
	require.False(t, mounted(t, mp))
}

func TestTheChildsStatusIsTheExitStatus(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a mount namespace needs root")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "ISOLATE_TEST_LAB="+t.TempDir(), "ISOLATE_TEST_EXIT=1")
	err := cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 7, ee.ExitCode())
}
