package raft_seq

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	rrpb "github.com/seqlab/seqlab/rr_seq/pb"
	"github.com/seqlab/seqlab/simnet"
)

// simCluster is a cluster of in-memory nodes on a simulated network, to
// be used inside a synctest bubble, so that the times at which nodes
// start are exact.
type simCluster struct {
	t     *testing.T
	net   *simnet.Network
	names []string
	peers []string
	nodes []*Node
}

func newSimCluster(t *testing.T, n int) *simCluster {
	c := &simCluster{t: t, net: simnet.New(simnet.Config{Seed: 7, Default: simnet.LinkConfig{Latency: time.Millisecond}}),
		nodes: make([]*Node, n)}
	for i := range n {
		c.names = append(c.names, "n"+itoa(uint64(i+1)))
		c.peers = append(c.peers, c.names[i]+":peer")
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			if c.nodes[i] != nil {
				c.stop(i)
			}
		}
		c.net.Close()
	})
	return c
}

func (c *simCluster) start(i int) {
	n, err := NewNode(NodeConfig{Self: c.peers[i], Name: c.names[i], Peers: c.peers, Bootstrap: true,
		Dialer: c.net.Dialer(c.names[i]), PeerSecret: "s3cret", Seed: uint64(i + 1),
		Core: Config{ElectionTimeout: 100 * time.Millisecond, TickInterval: 20 * time.Millisecond}})
	require.NoError(c.t, err)
	cl, err := c.net.Listen(c.names[i] + ":client")
	require.NoError(c.t, err)
	pl, err := c.net.Listen(c.peers[i])
	require.NoError(c.t, err)
	go n.Serve(cl)
	go n.ServePeers(pl)
	c.nodes[i] = n
}

// stop kills node i's process: its state, in memory, is gone.
func (c *simCluster) stop(i int) {
	require.NoError(c.t, c.nodes[i].Close())
	c.nodes[i] = nil
	c.net.Crash(c.names[i])
	c.net.Restart(c.names[i])
}

func (c *simCluster) allocate(i int) (uint64, error) {
	cc, err := grpc.NewClient("passthrough:///"+c.names[i]+":client", grpc.WithContextDialer(c.net.Dialer("c1")),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(c.t, err)
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r, err := rrpb.NewSequencerClient(cc).NextRange(ctx, &rrpb.NextRangeRequest{Name: "x", N: 5})
	return r.GetTo(), err
}

// waitFor polls cond every 10ms of virtual time, for at most 10s.
func (c *simCluster) waitFor(what string, cond func() bool) {
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatalf("never: %s", what)
}

func (c *simCluster) why(i int) string {
	_, why := c.nodes[i].Status()
	return why
}

// TestStaggeredStartJoins: n1 starts first and answers its peers' probes
// fresh, but its own probes find nobody (its peers do not listen yet); n2
// and n3 start 800ms later, just after one of n1's probes (its retries
// back off to 800ms apart, and its peers reconnect within a second), so
// the next comes too late,
// count n1's fresh answer, bootstrap and elect a leader between them. When
// n1's probe reaches them at last, they hold state: n1 joins from the
// bootstrap state, where it used to refuse forever ("the cluster lived").
// A restart of n1 in memory is a new incarnation nobody counted, and it
// stays out.
func TestStaggeredStartJoins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newSimCluster(t, 3)
		c.start(0)
		time.Sleep(800 * time.Millisecond)
		c.start(1)
		c.start(2)
		c.waitFor("n2 and n3 elect a leader", func() bool {
			s, _ := c.nodes[1].Status()
			return s.Leader != 0 && s.Term >= 2
		})
		s, why := c.nodes[0].Status()
		require.Zero(t, s.Term, "n1 must not have bootstrapped yet (%s), or the test shows nothing", why)

		c.waitFor("n1 joins and knows the leader", func() bool {
			s, _ := c.nodes[0].Status()
			return s.Leader != 0
		})
		to, err := c.allocate(0)
		require.NoError(t, err, "n1 serves: %s", c.why(0))
		require.Equal(t, uint64(6), to)

		// n1's quorum with n2 alone holds: the state is whole without n3.
		c.stop(2)
		to, err = c.allocate(0)
		require.NoError(t, err, "n1 and n2 are a quorum: %s", c.why(0))
		require.Equal(t, uint64(11), to)

		// n1 restarts without its state: n2 counted its old incarnation,
		// not this one, so it must stay out.
		c.stop(0)
		c.start(0)
		c.waitFor("n1 stays out", func() bool { return strings.Contains(c.why(0), "cannot rejoin safely") })
	})
}

// TestNodesThatLostStateTogetherStayOut: n2 and n3 restart in memory at
// once, while n1 holds the cluster's state. Each answers the other's probe
// fresh, and is then shown by n1 that the cluster lived: having answered
// fresh is not enough to join (they voted and acknowledged entries in
// their last lives, which they forgot), only being counted by a peer's
// bootstrap is, and neither bootstrapped. With n1, either could otherwise
// make a quorum that forgot the allocations.
func TestNodesThatLostStateTogetherStayOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newSimCluster(t, 3)
		for i := range 3 {
			c.start(i)
		}
		c.waitFor("a leader", func() bool {
			s, _ := c.nodes[0].Status()
			return s.Leader != 0
		})
		_, err := c.allocate(0)
		require.NoError(t, err)
		c.stop(1)
		c.stop(2)
		c.start(1)
		c.start(2)
		for _, i := range []int{1, 2} {
			c.waitFor(c.names[i]+" stays out", func() bool { return strings.Contains(c.why(i), "cannot rejoin safely") })
		}
		time.Sleep(2 * time.Second)
		for _, i := range []int{1, 2} {
			s, why := c.nodes[i].Status()
			require.Zero(t, s.Term, "%s: %s", c.names[i], why)
		}
	})
}
