package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/seqlab/seqlab/rr_seq/pb"
)

// These tests run rrseq-node as real processes on loopback: the cases
// that are about processes (a data dir's lock, a state file gone, the
// peer API behind its own port).

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func nodeBinary(t *testing.T) string {
	if testing.Short() {
		t.Skip("builds and runs node processes")
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rrseq-node-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "rrseq-node")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	require.NoError(t, binErr)
	return binPath
}

// proc is one node process.
type proc struct {
	cmd      *exec.Cmd
	stderrMu sync.Mutex
	stderr   *bytes.Buffer
	done     chan error
}

func (p *proc) stderrString() string {
	p.stderrMu.Lock()
	defer p.stderrMu.Unlock()
	return p.stderr.String()
}

func startProc(t *testing.T, args ...string) *proc {
	p := &proc{cmd: exec.Command(nodeBinary(t), args...), stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	p.cmd.Stderr = &syncWriter{mu: &p.stderrMu, w: p.stderr}
	require.NoError(t, p.cmd.Start())
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

func (p *proc) stop(t *testing.T) {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		t.Errorf("node did not stop on SIGINT")
	}
}

// exited waits for the process to end by itself and returns its stderr.
func (p *proc) exited(t *testing.T) string {
	select {
	case err := <-p.done:
		require.Error(t, err, "must fail")
	case <-time.After(10 * time.Second):
		t.Fatal("node did not exit")
	}
	return p.stderrString()
}

type syncWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// cluster3 is three node processes with data dirs.
type cluster3 struct {
	client, peer, dirs []string
	secret             string
	procs              []*proc
}

func newCluster3(t *testing.T) *cluster3 {
	c := &cluster3{secret: writeSecret(t), procs: make([]*proc, 3)}
	for range 3 {
		c.client = append(c.client, freeAddr(t))
		c.peer = append(c.peer, freeAddr(t))
		c.dirs = append(c.dirs, t.TempDir())
	}
	return c
}

func (c *cluster3) args(i int, extra ...string) []string {
	return append([]string{"--listen", c.client[i], "--peer-listen", c.peer[i], "--peers", strings.Join(c.peer, ","),
		"--name", fmt.Sprintf("n%d", i+1), "--data-dir", c.dirs[i], "--peer-secret-file", c.secret,
		"--bootstrap", "--round-life", "200ms"}, extra...)
}

func (c *cluster3) start(t *testing.T, i int, extra ...string) *proc {
	c.procs[i] = startProc(t, c.args(i, extra...)...)
	return c.procs[i]
}

func nextRange(t *testing.T, addr string, n uint64) (*pb.NextRangeResponse, error) {
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return pb.NewSequencerClient(cc).NextRange(ctx, &pb.NextRangeRequest{Name: "one", N: n})
}

// allocate retries NextRange until the cluster serves (nodes come up and
// bootstrap or recover).
func allocate(t *testing.T, addr string, n uint64) *pb.NextRangeResponse {
	var r *pb.NextRangeResponse
	require.Eventually(t, func() bool {
		var err error
		r, err = nextRange(t, addr, n)
		return err == nil
	}, 20*time.Second, 50*time.Millisecond, "allocate on %s", addr)
	return r
}

func TestProcessDataDirLock(t *testing.T) {
	c := newCluster3(t)
	for i := range 3 {
		c.start(t, i)
	}
	allocate(t, c.client[0], 1)
	second := startProc(t, append(c.args(0), "--listen", freeAddr(t), "--peer-listen", freeAddr(t), "--self", c.peer[0])...)
	require.Contains(t, second.exited(t), "another process holds the data dir")
}

// TestProcessMissingState is the case: allocate up to 601 on three
// nodes with data dirs, stop them, delete the state in two data dirs, and
// start those two. They refuse to start. With --recover they start, but
// with one intact peer of the two needed they stay unavailable: an
// allocation may have reached only the two that lost their state, so
// serving would risk handing it out again.
func TestProcessMissingState(t *testing.T) {
	c := newCluster3(t)
	for i := range 3 {
		c.start(t, i)
	}
	var last uint64
	for range 6 {
		last = allocate(t, c.client[0], 100).GetTo()
	}
	require.Equal(t, uint64(601), last)
	for i := range 3 {
		c.procs[i].stop(t)
	}
	for _, i := range []int{1, 2} {
		require.NoError(t, os.Remove(filepath.Join(c.dirs[i], "snapshot")))
		require.Contains(t, c.start(t, i).exited(t), "--recover", "node %d refuses its damaged dir", i)
	}
	c.start(t, 0)
	c.start(t, 1, "--recover")
	c.start(t, 2, "--recover")
	time.Sleep(time.Second) // past the recovery wait
	for i := range 3 {
		_, err := nextRange(t, c.client[i], 1)
		require.Equal(t, codes.Unavailable, status.Code(err), "node %d: %v", i, err)
	}
}

// TestProcessWipedDataDir: a node whose data dir is gone, restarted with
// the same command line (--bootstrap included), recovers from its peers
// and does not start over at 1.
func TestProcessWipedDataDir(t *testing.T) {
	c := newCluster3(t)
	for i := range 3 {
		c.start(t, i)
	}
	r := allocate(t, c.client[0], 100)
	c.procs[2].stop(t)
	require.NoError(t, os.RemoveAll(c.dirs[2]))
	c.start(t, 2)
	allocate(t, c.client[2], 1) // n3 serves once it has recovered
	c.procs[0].stop(t)          // now n3 is in every quorum
	r2 := allocate(t, c.client[2], 1)
	require.GreaterOrEqual(t, r2.GetFrom(), r.GetTo(), "the wiped node did not start over at 1")
}

func TestProcessPeerAPIIsApart(t *testing.T) {
	c := newCluster3(t)
	for i := range 3 {
		c.start(t, i)
	}
	allocate(t, c.client[0], 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	evil := &pb.SetRequest{Name: "one", Base: 1<<64 - 2, Value: 1<<64 - 1}
	cc, err := grpc.NewClient("passthrough:///"+c.client[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc.Close()
	_, err = pb.NewPeerClient(cc).Set(ctx, evil)
	require.Equal(t, codes.Unimplemented, status.Code(err), "the client port serves no peer API: %v", err)
	pc, err := grpc.NewClient("passthrough:///"+c.peer[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer pc.Close()
	_, err = pb.NewPeerClient(pc).Set(ctx, evil)
	require.Equal(t, codes.Unauthenticated, status.Code(err), "no secret, no peer API: %v", err)
	r, err := nextRange(t, c.client[1], 1)
	require.NoError(t, err, "the sequence still works")
	require.Less(t, r.GetFrom(), uint64(1000))
	_, err = nextRange(t, c.client[1], 1<<21)
	require.Equal(t, codes.InvalidArgument, status.Code(err), "a range over the limit: %v", err)
}

// TestProcessLogsListeningAfterBind: the node binds its ports before it
// logs anything else, "ready" included. Asked for port 0, only a bound
// listener knows its port, and the port logged takes a connection.
func TestProcessLogsListeningAfterBind(t *testing.T) {
	peer := freeAddr(t)
	p := startProc(t, "--listen", "127.0.0.1:0", "--peer-listen", peer, "--peers", peer,
		"--name", "n1", "--peer-secret-file", writeSecret(t), "--bootstrap", "--round-life", "50ms")
	require.Eventually(t, func() bool { return strings.Contains(p.stderrString(), `msg="ready`) },
		20*time.Second, 10*time.Millisecond, "never ready")
	log := p.stderrString()
	m := regexp.MustCompile(`msg=listening node=n1 clients=(\S+) peers=(\S+)`).FindStringSubmatchIndex(log)
	require.NotNil(t, m, "no listening line in:\n%s", log)
	require.Less(t, m[0], strings.Index(log, `msg="ready`), "ready logged before the ports were bound:\n%s", log)
	require.Less(t, m[0], strings.Index(log, `msg="node started"`), "the node started before its ports were bound")
	addr := log[m[2]:m[3]]
	require.NotEqual(t, "127.0.0.1:0", addr, "the bound port, not the flag")
	require.Equal(t, peer, log[m[4]:m[5]])
	c, err := net.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err)
	c.Close()
	require.NotContains(t, log, "level=ERROR")
}
