// Package isolate runs the lab in a mount namespace of its own, so that
// the FUSE disks it mounts die with it. A lab that is killed with
// SIGKILL cannot unmount anything: in the machine's own mount namespace
// its disks would stay behind as dead mounts ("transport endpoint is not
// connected") until someone unmounts them. In a private namespace they
// go when its last process does, and the nodes follow the lab by their
// parent-death signal (process/supervisor). The network namespaces need
// no such help: they are never named, so nothing holds them once the lab
// and its nodes are gone (process/netns).
//
// Enter re-executes the running program inside a new mount namespace
// (mount events private, so nothing leaks out to the machine) and exits
// with the child's status; in the child it returns at once. Call it first
// thing in main, before any goroutine of the program's own.
package isolate

import (
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/pkg/errors"
)

// Marker is the environment variable that tells the re-executed program
// that it runs isolated.
const Marker = "SEQLAB_ISOLATED"

// Isolated reports whether this process runs in the mount namespace
// Enter made.
func Isolated() bool { return os.Getenv(Marker) == "1" }

// Enter runs the program again in a private mount namespace and exits
// with its status; in that child it returns nil. Without the privilege
// to make the namespace it returns an error and the caller goes on
// where it is, or gives up.
func Enter() error {
	if Isolated() {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return errors.Wrap(err, "isolate")
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), Marker+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// Go makes the new namespace's mounts private (MS_REC|MS_PRIVATE on
	// /) when it unshares CLONE_NEWNS.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	// The terminal's Ctrl-C reaches the child too (same process group);
	// this process only waits for it, and passes on what it is sent
	// directly.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	if err := cmd.Start(); err != nil {
		signal.Stop(sigs)
		return errors.Wrap(err, "isolate: a private mount namespace (needs CAP_SYS_ADMIN)")
	}
	go func() {
		for s := range sigs {
			if s != syscall.SIGINT {
				cmd.Process.Signal(s)
			}
		}
	}()
	err = cmd.Wait()
	signal.Stop(sigs)
	os.Exit(exitCode(cmd.ProcessState, err))
	return nil
}

// exitCode is the status a shell would report for the child.
func exitCode(st *os.ProcessState, err error) int {
	if st == nil {
		return 1
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}
