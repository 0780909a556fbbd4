// Package supervisor runs the process mode's nodes: OS processes started
// from a command template (see ParseTemplate and Placeholders), each with
// its output in a log of its own, and the signals the faults need:
// SIGKILL for a crash, SIGSTOP and SIGCONT for a pause.
//
// Every process is its own process group, so a signal reaches whatever
// the command started too (a shell script's children), and asks for
// SIGKILL as its parent-death signal, so that even a lab killed with
// SIGKILL leaves no node running. Linux sends that signal when the
// thread that forked the process exits, not the process: start nodes
// from a thread that lives as long as the lab (process/netns's
// Host.Start forks from its namespace's own thread).
//
// A node is ready when its Ready probe says so (Accepting: it takes TCP
// connections; Serving: gRPC health says SERVING), within a deadline. A
// node that exits before it is ready fails its start with the tail of its
// log.
package supervisor

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/errors"
)

// Config says how to run one node.
type Config struct {
	// Name names the node in errors and in its log.
	Name string
	// Args is the command and its arguments (Template.Expand).
	Args []string
	// Env is added to this process's environment.
	Env []string
	// Dir is the working directory (default: this process's).
	Dir string
	// Log is the file the node's stdout and stderr go to, appended to
	// across restarts, each start headed by the command it ran.
	Log string
	// Start starts the command: Host.Start of process/netns, say. Nil
	// means cmd.Start.
	Start func(*exec.Cmd) error
	// Ready reports whether the node is ready; nil means at once.
	Ready func(ctx context.Context) error
	// ReadyTimeout bounds the wait for Ready (default 30s).
	ReadyTimeout time.Duration
}

// Node is one supervised node: at most one process at a time.
type Node struct {
	cfg Config

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process is reaped
	state  *os.ProcessState
	paused bool
	starts int
}

// ErrNotRunning is returned by the signals of a node with no process.
var ErrNotRunning = errors.New("supervisor: not running")

// New checks cfg and returns a node that is not started.
func New(cfg Config) (*Node, error) {
	switch {
	case cfg.Name == "":
		return nil, errors.New("supervisor: a node needs a name")
	case len(cfg.Args) == 0 || cfg.Args[0] == "":
		return nil, errors.Errorf("supervisor: %s: no command", cfg.Name)
	case cfg.Log == "":
		return nil, errors.Errorf("supervisor: %s: no log file", cfg.Name)
	case cfg.ReadyTimeout < 0:
		return nil, errors.Errorf("supervisor: %s: negative ready timeout", cfg.Name)
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 30 * time.Second
	}
	return &Node{cfg: cfg}, nil
}

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Command is the command line the node runs, quoted as a shell would
// need it, for the run's record.
func (n *Node) Command() string { return Quote(n.cfg.Args) }

// Start starts the node's process and waits until it is ready. A node
// whose process is running is an error. If the process exits or is not
// ready in time, Start kills it and says why, with the tail of its log.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	if n.cmd != nil {
		n.mu.Unlock()
		return errors.Errorf("supervisor: %s is already running", n.cfg.Name)
	}
	log, err := os.OpenFile(n.cfg.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		n.mu.Unlock()
		return errors.Wrapf(err, "supervisor: %s: log", n.cfg.Name)
	}
	n.starts++
	fmt.Fprintf(log, "=== start %d of %s at %s: %s\n", n.starts, n.cfg.Name, time.Now().UTC().Format(time.RFC3339Nano), n.Command())
	cmd := exec.Command(n.cfg.Args[0], n.cfg.Args[1:]...)
	cmd.Env = append(os.Environ(), n.cfg.Env...)
	cmd.Dir = n.cfg.Dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	start := n.cfg.Start
	if start == nil {
		start = (*exec.Cmd).Start
	}
	err = start(cmd)
	log.Close() // the child holds its own copy
	if err != nil {
		n.mu.Unlock()
		return errors.Wrapf(err, "supervisor: start %s", n.cfg.Name)
	}
	exited := make(chan struct{})
	n.cmd, n.exited, n.state, n.paused = cmd, exited, nil, false
	go func() {
		cmd.Wait()
		n.mu.Lock()
		n.state = cmd.ProcessState
		if n.cmd == cmd {
			n.cmd = nil
		}
		n.mu.Unlock()
		close(exited)
	}()
	n.mu.Unlock()

	if err := n.awaitReady(ctx, exited); err != nil {
		n.Kill()
		return errors.Wrapf(err, "supervisor: %s not ready; its log ends:\n%s", n.cfg.Name, Tail(n.cfg.Log, 20))
	}
	return nil
}

func (n *Node) awaitReady(ctx context.Context, exited chan struct{}) error {
	if n.cfg.Ready == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ReadyTimeout)
	defer cancel()
	var last error
	for {
		select {
		case <-exited:
			return errors.Errorf("it exited (%v)", n.exitState())
		default:
		}
		probe, pcancel := context.WithTimeout(ctx, time.Second)
		last = n.cfg.Ready(probe)
		pcancel()
		if last == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.Errorf("it exited (%v)", n.exitState())
		case <-ctx.Done():
			return errors.Wrapf(last, "not ready within %v", n.cfg.ReadyTimeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (n *Node) exitState() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state == nil {
		return "running"
	}
	return n.state.String()
}

// Running reports whether the node has a process (paused or not).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// Pid is the process's id, or 0.
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Starts returns how many times the node was started.
func (n *Node) Starts() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.starts
}

// signal sends sig to the node's process group.
func (n *Node) signal(sig syscall.Signal) (chan struct{}, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return nil, ErrNotRunning
	}
	if err := syscall.Kill(-n.cmd.Process.Pid, sig); err != nil && err != syscall.ESRCH {
		return nil, errors.Wrapf(err, "supervisor: signal %s", n.cfg.Name)
	}
	switch sig {
	case syscall.SIGSTOP:
		n.paused = true
	case syscall.SIGCONT:
		n.paused = false
	}
	return n.exited, nil
}

// Kill crashes the node: SIGKILL to its process group, and waits until
// the process is reaped, so that its sockets and files are released. A
// node with no process is not an error.
func (n *Node) Kill() error {
	exited, err := n.signal(syscall.SIGKILL)
	if err == ErrNotRunning {
		return nil
	}
	if err != nil {
		return err
	}
	<-exited
	return nil
}

// Stop asks the node to stop (SIGTERM), and kills it if it has not
// after grace.
func (n *Node) Stop(grace time.Duration) error {
	n.mu.Lock()
	paused := n.paused
	n.mu.Unlock()
	exited, err := n.signal(syscall.SIGTERM)
	if err == ErrNotRunning {
		return nil
	}
	if err != nil {
		return err
	}
	if paused {
		n.signal(syscall.SIGCONT) // a stopped process cannot act on SIGTERM
	}
	select {
	case <-exited:
		return nil
	case <-time.After(grace):
		return n.Kill()
	}
}

// Pause stops the node's process where it is (SIGSTOP).
func (n *Node) Pause() error {
	_, err := n.signal(syscall.SIGSTOP)
	return err
}

// Resume lets a paused process go on (SIGCONT).
func (n *Node) Resume() error {
	_, err := n.signal(syscall.SIGCONT)
	return err
}

// Paused reports whether the node is paused.
func (n *Node) Paused() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil && n.paused
}

// Exited returns a channel closed when the current process has been
// reaped (already closed if there is none), and how it ended.
func (n *Node) Exited() (<-chan struct{}, *os.ProcessState) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.exited == nil {
		c := make(chan struct{})
		close(c)
		return c, nil
	}
	return n.exited, n.state
}

// Tail returns the last lines of a file, for error messages.
func Tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	b = bytes.TrimRight(b, "\n")
	parts := strings.Split(string(b), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return "  " + strings.Join(parts, "\n  ")
}

// Quote joins args into one line a POSIX shell would split back into
// them.
func Quote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,@+%") == "" {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}
