package raft_seq

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/seqlab/seqlab/raft_seq/pb"
	rrpb "github.com/seqlab/seqlab/rr_seq/pb"
	"github.com/seqlab/seqlab/seq"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lcluster is a cluster of in-process nodes on loopback.
type lcluster struct {
	t          testing.TB
	peers      []string
	clientLis  []net.Listener
	peerLis    []net.Listener
	clientAddr []string
	dirs       []string
	nodes      []*Node
	errs       []chan error
	tweak      func(*NodeConfig)
}

func newLCluster(t testing.TB, n int, durable bool, tweak func(*NodeConfig)) *lcluster {
	c := &lcluster{t: t, tweak: tweak, nodes: make([]*Node, n), errs: make([]chan error, n),
		clientLis: make([]net.Listener, n), peerLis: make([]net.Listener, n)}
	for i := range n {
		pl, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		cl, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		c.peers = append(c.peers, pl.Addr().String())
		c.clientAddr = append(c.clientAddr, cl.Addr().String())
		c.peerLis[i], c.clientLis[i] = pl, cl
		dir := ""
		if durable {
			dir = t.TempDir()
		}
		c.dirs = append(c.dirs, dir)
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { c.start(i) })
	}
	wg.Wait()
	t.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
	})
	return c
}

func (c *lcluster) config(i int) NodeConfig {
	cfg := NodeConfig{Self: c.peers[i], Name: fmt.Sprintf("n%d", i+1), Peers: c.peers, DataDir: c.dirs[i],
		Bootstrap: true, PeerSecret: "s3cret", Seed: uint64(i), Core: Config{ElectionTimeout: 300 * time.Millisecond, TickInterval: 50 * time.Millisecond}}
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	return cfg
}

func (c *lcluster) start(i int) {
	if c.clientLis[i] == nil {
		var err error
		c.clientLis[i], err = net.Listen("tcp", c.clientAddr[i])
		require.NoError(c.t, err)
		c.peerLis[i], err = net.Listen("tcp", c.peers[i])
		require.NoError(c.t, err)
	}
	n, err := NewNode(c.config(i))
	require.NoError(c.t, err)
	c.nodes[i] = n
	errs := make(chan error, 2)
	cl, pl := c.clientLis[i], c.peerLis[i]
	go func() { errs <- n.Serve(cl) }()
	go func() { errs <- n.ServePeers(pl) }()
	c.errs[i] = errs
}

func (c *lcluster) stop(i int) {
	if c.nodes[i] == nil {
		return
	}
	require.NoError(c.t, c.nodes[i].Close())
	require.NoError(c.t, <-c.errs[i])
	require.NoError(c.t, <-c.errs[i])
	c.nodes[i], c.clientLis[i], c.peerLis[i] = nil, nil, nil
}

func (c *lcluster) client(i int) (rrpb.SequencerClient, func()) {
	cc, err := grpc.NewClient("passthrough:///"+c.clientAddr[i], grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(c.t, err)
	return rrpb.NewSequencerClient(cc), func() { cc.Close() }
}

func (c *lcluster) waitLeader() {
	require.Eventually(c.t, func() bool {
		for _, n := range c.nodes {
			if n == nil {
				continue
			}
			if s, _ := n.Status(); s.Leader == 0 {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "no leader")
}

func TestNodeClusterSurvivesTotalRestart(t *testing.T) {
	c := newLCluster(t, 3, true, nil)
	c.waitLeader()
	var got []seq.Range
	alloc := func(i int, count int) {
		cl, done := c.client(i)
		defer done()
		for range count {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			resp, err := cl.NextRange(ctx, &rrpb.NextRangeRequest{Name: "ids", N: 3})
			cancel()
			require.NoError(t, err)
			got = append(got, seq.Range{From: seq.ID(resp.GetFrom()), To: seq.ID(resp.GetTo())})
		}
	}
	for i := range 3 {
		alloc(i, 20) // followers forward to the leader
	}
	var fsyncs int64
	for i := range 3 {
		fsyncs += c.nodes[i].Stats().WAL.Syncs
		c.stop(i)
	}
	require.Positive(t, fsyncs)
	for i := range 3 {
		c.start(i)
	}
	c.waitLeader()
	for i := range 3 {
		alloc(i, 10)
	}
	for i := 1; i < len(got); i++ {
		require.GreaterOrEqual(t, got[i].From, got[i-1].To, "%v after %v", got[i], got[i-1])
	}
	require.Equal(t, seq.ID(1), got[0].From)
	require.Equal(t, seq.ID(1+90*3), got[len(got)-1].To, "no gaps without faults")
}

func TestNodeHealthAndErrors(t *testing.T) {
	c := newLCluster(t, 1, false, nil)
	c.waitLeader()
	cc, err := grpc.NewClient("passthrough:///"+c.clientAddr[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc.Close()
	h, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, h.GetStatus())
	cl := rrpb.NewSequencerClient(cc)
	for _, tc := range []struct {
		name string
		n    uint64
		code codes.Code
	}{
		{"", 1, codes.InvalidArgument},
		{"x", 0, codes.InvalidArgument},
		{"x", 1 << 40, codes.InvalidArgument},
	} {
		_, err := cl.NextRange(context.Background(), &rrpb.NextRangeRequest{Name: tc.name, N: tc.n})
		require.Equal(t, tc.code, status.Code(err), "%v", err)
	}
	resp, err := cl.NextRange(context.Background(), &rrpb.NextRangeRequest{Name: "x", N: 5})
	require.NoError(t, err)
	require.Equal(t, uint64(1), resp.GetFrom())
	require.Equal(t, "n1", resp.GetNode())

	// The peer API wants the secret.
	pc, err := grpc.NewClient("passthrough:///"+c.peers[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer pc.Close()
	_, err = pb.NewRaftClient(pc).Probe(context.Background(), &pb.ProbeRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
}

func TestNodeRefusesBadConfigAndDataDirs(t *testing.T) {
	dir := t.TempDir()
	base := NodeConfig{Self: "a:1", Peers: []string{"a:1", "b:1", "c:1"}, PeerSecret: "s", DataDir: dir}
	for _, tc := range []struct {
		tweak func(*NodeConfig)
		want  string
	}{
		{func(c *NodeConfig) { c.PeerSecret = "" }, "needs mutual TLS or a shared secret"},
		{func(c *NodeConfig) { c.Self = "d:1" }, "not in Peers"},
		{func(c *NodeConfig) { c.Peers = []string{"a:1", "a:1"} }, "listed twice"},
		{func(c *NodeConfig) { c.Core.ElectionTimeout = time.Millisecond }, "under two ticks"},
		{func(c *NodeConfig) {}, "has no state"},
	} {
		cfg := base
		tc.tweak(&cfg)
		_, err := NewNode(cfg)
		require.ErrorContains(t, err, tc.want)
	}
	// A data dir of another node is refused; so is one in use.
	w, _, err := OpenWAL(OSFS{}, dir, Identity{Cluster: DefaultCluster(base.Peers), Node: 2})
	require.NoError(t, err)
	require.NoError(t, w.Init(Bootstrap([]uint64{1, 2, 3})))
	cfg := base
	cfg.Self = "b:1"
	_, err = NewNode(cfg)
	require.ErrorIs(t, err, ErrLocked)
	require.NoError(t, w.Close())
	_, err = NewNode(base)
	require.ErrorIs(t, err, ErrIdentity)
}

// TestNodeWithoutStateStaysOut: a node whose state is gone, in a cluster
// that lived, does not bootstrap beside it.
func TestNodeWithoutStateStaysOut(t *testing.T) {
	c := newLCluster(t, 3, false, nil)
	c.waitLeader()
	cl, done := c.client(0)
	_, err := cl.NextRange(context.Background(), &rrpb.NextRangeRequest{Name: "x", N: 1})
	done()
	require.NoError(t, err)
	c.stop(2)
	c.start(2) // in memory: it lost everything
	require.Eventually(t, func() bool {
		_, why := c.nodes[2].Status()
		return strings.Contains(why, "cannot rejoin safely")
	}, 5*time.Second, 10*time.Millisecond)
	_, why := c.nodes[2].Status()
	require.Contains(t, why, "cannot rejoin safely")
	cl, done = c.client(2)
	defer done()
	_, err = cl.NextRange(context.Background(), &rrpb.NextRangeRequest{Name: "x", N: 1})
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)

	// The nodes that held the state lose it too. The node that stayed out
	// knows the cluster lived, so they do not start it over (which would
	// hand out x's IDs again): they stay out as well.
	c.stop(0)
	c.stop(1)
	c.start(0)
	c.start(1)
	for _, i := range []int{0, 1} {
		require.Eventually(t, func() bool {
			_, why := c.nodes[i].Status()
			return strings.Contains(why, "cannot rejoin safely")
		}, 5*time.Second, 10*time.Millisecond, "n%d", i+1)
	}
}
