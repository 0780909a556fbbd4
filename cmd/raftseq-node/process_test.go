package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/seqlab/seqlab/process/supervisor"
	"github.com/seqlab/seqlab/rr_seq/pb"
)

// These tests run raftseq-node as real processes on loopback.

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
		dir, err := os.MkdirTemp("", "raftseq-node-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "raftseq-node")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	require.NoError(t, binErr)
	return binPath
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type proc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

func startProc(t *testing.T, args []string) *proc {
	p := &proc{cmd: exec.Command(nodeBinary(t), args...), stderr: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Stderr = p.stderr
	p.cmd.Env = append(os.Environ(), "RRSEQ_PEER_SECRET=s3cret")
	require.NoError(t, p.cmd.Start())
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Signal(os.Interrupt)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				p.cmd.Process.Kill()
				<-p.done
				t.Errorf("node did not stop on SIGINT")
			}
		}
	})
	return p
}

// TestProcessClusterKillOne runs three node processes from the lab's
// command template, SIGKILLs one and restarts it from its data dir; the
// IDs handed out stay unique throughout.
func TestProcessClusterKillOne(t *testing.T) {
	tmpl, err := supervisor.ParseTemplate(nodeBinary(t) + " --listen {listen} --peer-listen {peer_listen} --peers {peers} --name {name}" +
		" --data-dir {data_dir} --bootstrap --election-timeout 2s --tick 100ms")
	require.NoError(t, err)
	var client, peer, dirs []string
	for range 3 {
		client, peer, dirs = append(client, freeAddr(t)), append(peer, freeAddr(t)), append(dirs, t.TempDir())
	}
	procs := make([]*proc, 3)
	start := func(i int) {
		argv := tmpl.Expand(supervisor.Vars{Listen: client[i], PeerListen: peer[i], Peers: strings.Join(peer, ","),
			Name: fmt.Sprintf("n%d", i+1), Index: i, N: 3, DataDir: dirs[i]})
		procs[i] = startProc(t, argv[1:])
	}
	for i := range 3 {
		start(i)
	}
	conns := make([]pb.SequencerClient, 3)
	for i := range 3 {
		cc, err := grpc.NewClient("passthrough:///"+client[i], grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		defer cc.Close()
		conns[i] = pb.NewSequencerClient(cc)
	}
	seen := map[uint64]string{}
	ok := 0
	alloc := func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := conns[i].NextRange(ctx, &pb.NextRangeRequest{Name: "ids", N: 5})
		if err != nil {
			return err
		}
		for id := resp.GetFrom(); id < resp.GetTo(); id++ {
			if prev, dup := seen[id]; dup {
				t.Fatalf("ID %d handed out by %s and again by %s", id, prev, resp.GetNode())
			}
			seen[id] = resp.GetNode()
		}
		ok++
		return nil
	}
	require.Eventually(t, func() bool { return alloc(0) == nil }, 10*time.Second, 50*time.Millisecond, "%s", procs[0].stderr.String())
	for round := range 3 {
		for i := range 30 {
			_ = alloc(i % 3)
		}
		victim := round % 3
		require.NoError(t, procs[victim].cmd.Process.Kill())
		<-procs[victim].done
		for i := range 20 {
			_ = alloc((victim + 1 + i%2) % 3) // the others go on without it
		}
		start(victim)
		require.Eventually(t, func() bool { return alloc(victim) == nil }, 10*time.Second, 50*time.Millisecond,
			"%s", procs[victim].stderr.String())
	}
	require.Greater(t, ok, 100)
}
