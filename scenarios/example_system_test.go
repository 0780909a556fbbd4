package scenarios_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pkg/errors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/checker/history"
	"github.com/seqlab/seqlab/rr_seq/pb"
	"github.com/seqlab/seqlab/scenarios"
	"github.com/seqlab/seqlab/simnet/sim"
)

// blocks is a sequencer of the simplest kind, to show what a system of
// one's own needs: node i hands out IDs from a block of its own, i<<48
// plus a counter that it keeps on disk. There is no coordination, so its
// IDs are unique and increase per node, and nothing more.
type blocks struct{}

func (blocks) ValidateName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	return nil
}

// Start starts a process of node h, from what its disk held.
func (blocks) Start(h *sim.Host, disk any, first bool) sim.Proc {
	p := &block{h: h, next: uint64(slices.Index(h.Nodes(), h.Name())+1) << 48}
	if disk != nil {
		p.next = disk.(uint64)
	}
	return p
}

type block struct {
	h    *sim.Host
	next uint64
}

// NextRange answers at once, after writing the new counter for good (an
// fsync that takes no time).
func (p *block) NextRange(c *sim.Call, name string, n, after uint64) {
	from := p.next
	p.next += n
	p.h.Written(p.next)
	p.h.Durable(p.next)
	p.h.Answer(c, sim.Label{Kind: "block"}, history.Ok, from, p.next, "")
}

func (p *block) Serve(r *sim.Request)  { r.Refuse() } // it has no peers
func (p *block) Replied(*sim.Request)  {}
func (p *block) Failed(r *sim.Request) {}
func (p *block) Crashed()              {}
func blockPromises(scenarios.Scenario) []string {
	return []string{checker.Unique, checker.NodeOrder, checker.Live}
}

// blockNode is the same system as a gRPC server: what the gRPC mode runs.
// It keeps its counter in memory (see TestOwnSystemGRPC).
type blockNode struct {
	pb.UnimplementedSequencerServer
	srv  *grpc.Server
	mu   sync.Mutex
	next uint64
	done chan struct{}
	once sync.Once
}

func newBlockNode(env scenarios.NodeEnv) (scenarios.Node, error) {
	n := &blockNode{srv: grpc.NewServer(), next: uint64(env.Index+1) << 48, done: make(chan struct{})}
	pb.RegisterSequencerServer(n.srv, n)
	return n, nil
}

func (n *blockNode) NextRange(ctx context.Context, req *pb.NextRangeRequest) (*pb.NextRangeResponse, error) {
	if req.GetName() == "" || req.GetN() == 0 || req.GetN() > 1<<20 {
		return nil, status.Error(codes.InvalidArgument, "want a name and 1 to 2^20 IDs")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	from := n.next
	n.next += req.GetN()
	return &pb.NextRangeResponse{From: from, To: n.next}, nil
}

func (n *blockNode) Serve(lis net.Listener) error { return n.srv.Serve(lis) }

// ServePeers serves nothing: the system has no peers.
func (n *blockNode) ServePeers(lis net.Listener) error {
	<-n.done
	return lis.Close()
}

func (n *blockNode) Close() error {
	n.once.Do(func() { close(n.done) })
	n.srv.Stop()
	return nil
}

// registerBlocks puts the system in the lab, once per process.
func registerBlocks() error {
	if _, err := scenarios.LookupSystem("blocks"); err == nil {
		return nil
	}
	return scenarios.Register(scenarios.System{
		Name:        "blocks",
		Description: "every node counts in a block of its own",
		Promises:    blockPromises,
		Sparse:      true, // IDs between the blocks are never handed out
		// The simulator's side: a configuration for plan.json (none
		// here) and the state machine.
		SimConfig: func(scenarios.Scenario) (any, error) { return struct{}{}, nil },
		NewSim:    func(json.RawMessage, int) (sim.System, error) { return blocks{}, nil },
		// The gRPC mode's side.
		NewNode: newBlockNode,
	})
}

// A system of one's own runs under the catalogue's faults: here a crash
// scenario in the simulator, from one seed, judged against the promises
// the system makes. Its counter is durable, so a restart hands out no ID
// twice.
func ExampleRegister() {
	if err := registerBlocks(); err != nil {
		fmt.Println(err)
		return
	}
	sc, err := scenarios.Find("Crash/restart-one-n5-disk")
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg, _, err := scenarios.SimConfig(sc, scenarios.Options{System: "blocks", Seed: 1, HasSeed: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := scenarios.Simulate(sc, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("promised:", out.Results.Promises)
	fmt.Println("met:", out.Met(), "violated:", out.Violated())
	fmt.Println("linearizable:", out.Results.Word(checker.Linearizable))
	// Output:
	// promised: [unique node-order live]
	// met: true violated: []
	// linearizable: not promised
}

// TestOwnSystemGRPC: the same system's gRPC server runs in the gRPC mode
// and keeps its promises under partitions. Unlike the state machine, it
// keeps its counter in memory only, and the lab sees it: a node that
// restarts hands out its IDs again. It has no binary, so the process mode
// refuses it.
func TestOwnSystemGRPC(t *testing.T) {
	require.NoError(t, registerBlocks())
	sc, err := scenarios.Find("Partition/halves-n3")
	require.NoError(t, err)
	rep, err := scenarios.Run(t, sc, scenarios.Options{System: "blocks", TimeLimit: 10 * time.Second, Store: t.TempDir(), Out: io.Discard})
	require.NoError(t, err)
	require.True(t, rep.Met(), rep.Block())
	assert.Contains(t, rep.Block(), "\nsystem    blocks\n")
	assert.Equal(t, checker.NotPromised, rep.Word(checker.Linearizable), "blocks promises no global order")

	crash, err := scenarios.Find("Crash/restart-one-n5-disk")
	require.NoError(t, err)
	rep, err = scenarios.Run(t, crash, scenarios.Options{System: "blocks", TimeLimit: 10 * time.Second, Store: t.TempDir(), Out: io.Discard})
	require.NoError(t, err)
	assert.Equal(t, checker.Violated, rep.Word(checker.Unique), "a counter in memory restarts at its block's start:\n%s", rep.Block())

	assert.False(t, sc.RunsOn("blocks", scenarios.ModeProcess))
	assert.ErrorContains(t, scenarios.Register(scenarios.System{Name: "blocks", Promises: blockPromises, NewNode: newBlockNode}),
		"registered already")
}
