package supervisor

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/seqlab/seqlab/internal/leftover"
)

// The test binary doubles as the programs the tests run: a node (listens
// on --listen, says its arguments, stops on SIGTERM) and a lab (starts a
// node and waits to be killed).
func TestMain(m *testing.M) {
	switch os.Getenv("SUPERVISOR_TEST_ROLE") {
	case "node":
		helperNode()
	case "lab":
		helperLab()
	default:
		os.Exit(m.Run())
	}
}

func helperNode() {
	fs := flag.NewFlagSet("node", flag.ExitOnError)
	listen := fs.String("listen", "", "")
	grpcHealth := fs.Bool("grpc", false, "")
	exit := fs.Int("exit", -1, "")
	fs.Parse(os.Args[1:])
	fmt.Printf("args: %q\n", os.Args[1:])
	if *exit >= 0 {
		fmt.Fprintln(os.Stderr, "exiting as asked")
		os.Exit(*exit)
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *grpcHealth {
		s := grpc.NewServer()
		h := health.NewServer()
		healthpb.RegisterHealthServer(s, h)
		go s.Serve(lis)
	} else {
		go func() {
			for {
				c, err := lis.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	fmt.Println("stopping on SIGTERM")
	os.Exit(0)
}

func helperLab() {
	n, err := New(Config{Name: "n1", Args: []string{"sleep", "60"}, Log: os.Getenv("SUPERVISOR_TEST_LOG")})
	if err == nil {
		err = n.Start(context.Background())
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println(n.Pid())
	select {}
}

func self(t *testing.T) string {
	exe, err := os.Executable()
	require.NoError(t, err)
	return exe
}

func freeAddr(t *testing.T) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer lis.Close()
	return lis.Addr().String()
}

func dialTCP(ctx context.Context, a string) (net.Conn, error) {
	return (&net.Dialer{}).DialContext(ctx, "tcp", a)
}

func newNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	before := leftover.Take()
	if cfg.Log == "" {
		cfg.Log = filepath.Join(t.TempDir(), cfg.Name+".log")
	}
	cfg.Env = append(cfg.Env, "SUPERVISOR_TEST_ROLE=node")
	n, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, n.Kill())
		require.NoError(t, leftover.Since(before, leftover.Mine{Under: t.TempDir()}))
	})
	return n
}

func TestStartKillRestart(t *testing.T) {
	addr := freeAddr(t)
	tmpl, err := ParseTemplate(self(t) + " --listen {listen}")
	require.NoError(t, err)
	n := newNode(t, Config{
		Name: "n1", Args: tmpl.Expand(Vars{Listen: addr}),
		Ready: Accepting(dialTCP, addr), ReadyTimeout: 10 * time.Second,
	})
	start := time.Now()
	require.NoError(t, n.Start(context.Background()))
	t.Logf("start until accepting: %v", time.Since(start))
	require.True(t, n.Running())
	require.ErrorContains(t, n.Start(context.Background()), "already running")

	start = time.Now()
	require.NoError(t, n.Kill())
	t.Logf("kill until reaped: %v", time.Since(start))
	require.False(t, n.Running())
	_, state := n.Exited()
	require.Equal(t, "signal: killed", state.String())
	_, err = net.DialTimeout("tcp", addr, time.Second)
	require.Error(t, err, "a killed node still accepts")

	require.NoError(t, n.Start(context.Background()), "restart")
	require.Equal(t, 2, n.Starts())
	require.NoError(t, n.Stop(5*time.Second))
	log, err := os.ReadFile(n.cfg.Log)
	require.NoError(t, err)
	require.Contains(t, string(log), "=== start 1 of n1")
	require.Contains(t, string(log), "=== start 2 of n1")
	require.Contains(t, string(log), "stopping on SIGTERM")
	require.Equal(t, 2, strings.Count(string(log), `args: ["--listen" "`+addr+`"]`))
}

func TestPauseStopsTheProcess(t *testing.T) {
	addr := freeAddr(t)
	n := newNode(t, Config{
		Name: "n1", Args: []string{self(t), "--listen", addr, "--grpc"},
		Ready: Serving(dialTCP, addr), ReadyTimeout: 10 * time.Second,
	})
	require.NoError(t, n.Start(context.Background()))
	ready := Serving(dialTCP, addr)
	require.NoError(t, n.Pause())
	require.True(t, n.Paused())
	require.Eventually(t, func() bool { return procState(t, n.Pid()) == "T" }, 2*time.Second, 5*time.Millisecond, "the process is not stopped")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	require.Error(t, ready(ctx), "a paused node answered")
	require.NoError(t, n.Resume())
	require.False(t, n.Paused())
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, ready(ctx))

	// A paused node still stops.
	require.NoError(t, n.Pause())
	require.NoError(t, n.Stop(5*time.Second))
	_, state := n.Exited()
	require.True(t, state.Success(), "want a clean exit on SIGTERM, got %v", state)
}

func procState(t *testing.T, pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
}

func TestAFailedStartSaysWhy(t *testing.T) {
	n := newNode(t, Config{
		Name: "n1", Args: []string{self(t), "--exit", "3"},
		Ready: Accepting(dialTCP, freeAddr(t)),
	})
	err := n.Start(context.Background())
	require.ErrorContains(t, err, "n1 not ready")
	require.ErrorContains(t, err, "exit status 3")
	require.ErrorContains(t, err, "exiting as asked", "the log's tail")
	require.False(t, n.Running())

	slow := newNode(t, Config{
		Name: "n2", Args: []string{"sleep", "60"},
		Ready: Accepting(dialTCP, freeAddr(t)), ReadyTimeout: 200 * time.Millisecond,
	})
	err = slow.Start(context.Background())
	require.ErrorContains(t, err, "not ready within 200ms")
	require.False(t, slow.Running(), "a node that was not ready is left running")

	missing := newNode(t, Config{Name: "n3", Args: []string{"/nonexistent/node"}})
	require.ErrorContains(t, missing.Start(context.Background()), "supervisor: start n3")
}

func TestAKilledLabLeavesNoNode(t *testing.T) {
	// A lab is killed with SIGKILL: it cannot clean up, and its node must
	// die with it all the same.
	lab := exec.Command(self(t))
	lab.Env = append(os.Environ(), "SUPERVISOR_TEST_ROLE=lab", "SUPERVISOR_TEST_LOG="+filepath.Join(t.TempDir(), "n1.log"))
	out, err := lab.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, lab.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "the lab said nothing")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	require.NoError(t, err, "the lab said %q", line)
	require.NoError(t, syscall.Kill(pid, 0), "the node is not running")
	require.NoError(t, lab.Process.Kill())
	lab.Wait()
	require.Eventually(t, func() bool {
		return syscall.Kill(pid, 0) == syscall.ESRCH
	}, 5*time.Second, 10*time.Millisecond, "node %d outlived its lab", pid)
}

func TestSignalsNeedAProcess(t *testing.T) {
	n := newNode(t, Config{Name: "n1", Args: []string{"true"}})
	require.ErrorIs(t, n.Pause(), ErrNotRunning)
	require.ErrorIs(t, n.Resume(), ErrNotRunning)
	require.NoError(t, n.Kill(), "killing a node that is down is no error")
	require.NoError(t, n.Stop(time.Second))
	require.Zero(t, n.Pid())
}

func TestBadConfigIsRefused(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "supervisor: a node needs a name"},
		{Config{Name: "n1", Log: "x"}, "supervisor: n1: no command"},
		{Config{Name: "n1", Args: []string{""}, Log: "x"}, "supervisor: n1: no command"},
		{Config{Name: "n1", Args: []string{"true"}}, "supervisor: n1: no log file"},
		{Config{Name: "n1", Args: []string{"true"}, Log: "x", ReadyTimeout: -1}, "supervisor: n1: negative ready timeout"},
	} {
		_, err := New(tc.cfg)
		require.EqualError(t, err, tc.want)
	}
}
