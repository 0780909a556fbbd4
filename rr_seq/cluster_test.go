package rr_seq

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/seqlab/seqlab/rr_seq/pb"
	"github.com/seqlab/seqlab/seq"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testCluster is N nodes on real loopback TCP.
type testCluster struct {
	t     testing.TB
	addrs []string // the client API's
	peers []string // the peer API's
	dirs  []string
	nodes []*Node
	mod   func(i int, c *Config)
	wg    sync.WaitGroup
}

// startCluster starts n nodes; dirs (if not nil) are their data dirs.
func startCluster(t testing.TB, n int, persist bool, mod func(i int, c *Config)) *testCluster {
	tc := &testCluster{t: t, mod: mod}
	lis := make([]net.Listener, n)
	plis := make([]net.Listener, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		lis[i] = l
		tc.addrs = append(tc.addrs, l.Addr().String())
		pl, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		plis[i] = pl
		tc.peers = append(tc.peers, pl.Addr().String())
		if persist {
			tc.dirs = append(tc.dirs, t.TempDir())
		} else {
			tc.dirs = append(tc.dirs, "")
		}
	}
	tc.nodes = make([]*Node, n)
	for i := range n {
		tc.start(i, lis[i], plis[i])
	}
	t.Cleanup(tc.stop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, node := range tc.nodes {
		require.NoError(t, node.WaitReady(ctx))
	}
	return tc
}

const testSecret = "test-cluster-secret"

// start starts node i: the first time on the given listeners, as a new
// node of a new cluster; later (nil listeners) as a restart.
func (tc *testCluster) start(i int, l, pl net.Listener) {
	first := l != nil
	if !first {
		var err error
		l, err = net.Listen("tcp", tc.addrs[i])
		require.NoError(tc.t, err)
		pl, err = net.Listen("tcp", tc.peers[i])
		require.NoError(tc.t, err)
	}
	cfg := Config{Self: tc.peers[i], Name: fmt.Sprintf("n%d", i+1), Peers: tc.peers, DataDir: tc.dirs[i], Seed: int64(i),
		PeerSecret: testSecret, Bootstrap: true, FirstStart: first}
	if tc.mod != nil {
		tc.mod(i, &cfg)
	}
	n, err := NewNode(cfg)
	require.NoError(tc.t, err)
	tc.nodes[i] = n
	tc.wg.Add(2)
	go func() {
		defer tc.wg.Done()
		if err := n.Serve(l); err != nil {
			tc.t.Errorf("serve: %v", err)
		}
	}()
	go func() {
		defer tc.wg.Done()
		if err := n.ServePeers(pl); err != nil {
			tc.t.Errorf("serve peers: %v", err)
		}
	}()
}

func (tc *testCluster) stop() {
	for _, n := range tc.nodes {
		if n != nil {
			n.Close()
		}
	}
	tc.wg.Wait()
}

func (tc *testCluster) client(t testing.TB, size uint64, start int) *Client {
	c, err := NewClient(ClientConfig{Nodes: tc.addrs, RangeSize: size, StartNode: start})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func dial(t testing.TB, addr string) pb.SequencerClient {
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { cc.Close() })
	return pb.NewSequencerClient(cc)
}

// rawNextRange encodes a NextRangeRequest by hand, so that its name can
// be bytes that Go's proto encoder refuses to send.
func rawNextRange(name string, n uint64) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendString(b, name)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	return protowire.AppendVarint(b, n)
}

// invokeRaw sends req, already encoded, to method at addr, as a hostile
// client that does not use our generated code would.
func invokeRaw(t testing.TB, addr, secret, method string, req []byte) error {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if secret != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(peerSecret(secret).Creds(false)))
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, opts...)
	require.NoError(t, err)
	defer cc.Close()
	var reply []byte
	return cc.Invoke(context.Background(), method, req, &reply, grpc.ForceCodecV2(rawCodec{}))
}

// rawCodec sends and receives messages as bytes, unchanged.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}
func (rawCodec) Name() string { return "proto" }

// dialPeer dials a node's peer API with the cluster's secret.
func dialPeer(t testing.TB, addr, secret string) pb.PeerClient {
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(peerSecret(secret).Creds(false)))
	require.NoError(t, err)
	t.Cleanup(func() { cc.Close() })
	return pb.NewPeerClient(cc)
}

// drive runs clients concurrently, each taking perClient IDs, and checks
// every ID is unique and each client's IDs increase.
func drive(t *testing.T, clients []*Client, perClient int, seen map[seq.ID]int) {
	t.Helper()
	ids := make([][]seq.ID, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for range perClient {
				id, err := c.Next(ctx)
				if err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
				ids[i] = append(ids[i], id)
			}
		})
	}
	wg.Wait()
	for i, list := range ids {
		for j, id := range list {
			if prev, dup := seen[id]; dup {
				t.Fatalf("ID %d handed out to client %d and client %d", id, prev, i)
			}
			seen[id] = i
			if j > 0 && id <= list[j-1] {
				t.Fatalf("client %d: ID %d after %d", i, id, list[j-1])
			}
		}
	}
}

func TestClusterUniqueAndIncreasing(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("nodes=%d", n), func(t *testing.T) {
			tc := startCluster(t, n, false, nil)
			sizes := []uint64{1, 2, 3, 7, 64, 1}
			var clients []*Client
			for i, s := range sizes {
				clients = append(clients, tc.client(t, s, i))
			}
			seen := map[seq.ID]int{}
			drive(t, clients, 150, seen)
			require.Len(t, seen, len(sizes)*150)
		})
	}
}

func TestClusterPersistsAcrossTotalRestart(t *testing.T) {
	tc := startCluster(t, 3, true, nil)
	seen := map[seq.ID]int{}
	c1 := tc.client(t, 5, 0)
	drive(t, []*Client{c1, tc.client(t, 3, 1)}, 40, seen)
	maxBefore := maxID(seen)
	tc.stop()
	for i := range tc.nodes {
		tc.start(i, nil, nil)
	}
	drive(t, []*Client{tc.client(t, 4, 2), tc.client(t, 1, 0)}, 40, seen)
	require.Len(t, seen, 160, "no ID handed out twice across the restart")
	// Every node resumed from disk: its value is past everything before.
	for _, n := range tc.nodes {
		require.Greater(t, n.Values()["default"], uint64(maxBefore))
	}
}

func maxID(m map[seq.ID]int) seq.ID {
	var out seq.ID
	for id := range m {
		out = max(out, id)
	}
	return out
}

func TestNodeRejectsBadInput(t *testing.T) {
	tc := startCluster(t, 3, false, nil)
	c := dial(t, tc.addrs[0])
	pc := dialPeer(t, tc.peers[0], testSecret)
	ctx := context.Background()
	long := string(make([]byte, MaxNameLen+1))
	for _, tt := range []struct {
		name string
		call func() error
	}{
		{"n=0", func() error { _, err := c.NextRange(ctx, &pb.NextRangeRequest{Name: "s", N: 0}); return err }},
		{"empty name", func() error { _, err := c.NextRange(ctx, &pb.NextRangeRequest{Name: "", N: 1}); return err }},
		{"long name", func() error { _, err := c.NextRange(ctx, &pb.NextRangeRequest{Name: long, N: 1}); return err }},
		{"n overflows", func() error { _, err := c.NextRange(ctx, &pb.NextRangeRequest{Name: "s", N: ^uint64(0)}); return err }},
		{"n over the limit", func() error {
			_, err := c.NextRange(ctx, &pb.NextRangeRequest{Name: "s", N: DefaultMaxRange + 1})
			return err
		}},
		{"non-UTF-8 name", func() error {
			return invokeRaw(t, tc.addrs[0], "", "/rrseq.v1.Sequencer/NextRange", rawNextRange("\xff\xfeab", 1))
		}},
		{"get non-UTF-8 name", func() error {
			return invokeRaw(t, tc.peers[0], testSecret, "/rrseq.v1.Peer/Get", protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "\xc3("))
		}},
		{"get empty name", func() error { _, err := pc.Get(ctx, &pb.GetRequest{}); return err }},
		{"set value <= base", func() error { _, err := pc.Set(ctx, &pb.SetRequest{Name: "s", Base: 5, Value: 5}); return err }},
		{"set base 0", func() error { _, err := pc.Set(ctx, &pb.SetRequest{Name: "s", Base: 0, Value: 5}); return err }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, codes.InvalidArgument, status.Code(tt.call()))
		})
	}
	for _, n := range tc.nodes {
		require.Empty(t, n.Values(), "bad input changed nothing")
	}
	// Overflow discovered at allocation time also changes nothing.
	_, err := pc.Set(ctx, &pb.SetRequest{Name: "big", Base: 1, Value: ^uint64(0) - 1})
	require.NoError(t, err)
	_, err = c.NextRange(ctx, &pb.NextRangeRequest{Name: "big", N: 10})
	require.Equal(t, codes.OutOfRange, status.Code(err), "got %v", err)
	require.Equal(t, ^uint64(0)-1, tc.nodes[0].Values()["big"])
}

func TestNodeStatusCodes(t *testing.T) {
	tc := startCluster(t, 3, false, func(i int, c *Config) { c.PeerTimeout = 50 * time.Millisecond })
	c := dial(t, tc.addrs[0])
	r, err := c.NextRange(context.Background(), &pb.NextRangeRequest{Name: "s", N: 3})
	require.NoError(t, err)
	require.Equal(t, uint64(1), r.GetFrom())
	require.Equal(t, "n1", r.GetNode())

	// With two of three nodes gone, no quorum is reachable.
	tc.nodes[1].Close()
	tc.nodes[2].Close()
	// The node gives up 20 ms before the caller's deadline, to say why;
	// a machine under load (-race, CI) can miss that window now and then.
	for try := 0; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err = c.NextRange(ctx, &pb.NextRangeRequest{Name: "s", N: 3})
		cancel()
		if status.Code(err) != codes.DeadlineExceeded || try == 4 {
			break
		}
	}
	require.Equal(t, codes.Unavailable, status.Code(err), "got %v", err)
	require.Contains(t, status.Convert(err).Message(), tc.peers[1]+": ", "the error names the peers that failed")

	// An already expired deadline is DeadlineExceeded.
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	_, err = c.NextRange(ctx, &pb.NextRangeRequest{Name: "s", N: 3})
	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "got %v", err)
}

func TestConfigValidate(t *testing.T) {
	base := Config{Self: "a", Peers: []string{"a", "b", "c"}, PeerSecret: "s"}
	for _, tc := range []struct {
		name string
		mod  func(c *Config)
		ok   bool
	}{
		{"defaults", func(c *Config) {}, true},
		{"no self", func(c *Config) { c.Self = "" }, false},
		{"self not in peers", func(c *Config) { c.Self = "d" }, false},
		{"self twice", func(c *Config) { c.Peers = []string{"a", "a", "b"} }, false},
		{"R too big", func(c *Config) { c.R = 4 }, false},
		{"W negative", func(c *Config) { c.W = -1 }, false},
		{"R+W<=N", func(c *Config) { c.R, c.W = 1, 2 }, false},
		{"R+W<=N unsafe", func(c *Config) { c.R, c.W, c.Unsafe = 1, 1, true }, true},
		{"bad rule", func(c *Config) { c.WriteRule = 7 }, false},
		{"no peer auth", func(c *Config) { c.PeerSecret = "" }, false},
		{"peer with a space", func(c *Config) { c.Peers = []string{"a", " b", "c"} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.mod(&c)
			err := c.WithDefaults().Validate()
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, seq.ErrInvalidArgument)
			}
		})
	}
}

func TestNodeRefusesCorruptState(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenStorage(OSFS{}, dir)
	require.NoError(t, err)
	require.NoError(t, st.Init(Identity{Cluster: DefaultClusterID([]string{"a"}), Node: "a"}, map[string]uint64{"s": 9}))
	path := st.Path()
	require.NoError(t, st.Close())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, writeFile(path, b[:len(b)-4]))
	cfg := Config{Self: "a", Peers: []string{"a"}, DataDir: dir, PeerSecret: "s"}
	_, err = NewNode(cfg)
	require.ErrorIs(t, err, ErrCorruptState)
	require.Contains(t, err.Error(), "--recover")
	// A node of another name on the same dir is refused too.
	require.NoError(t, writeFile(path, b))
	_, err = NewNode(Config{Self: "b", Peers: []string{"b"}, Cluster: DefaultClusterID([]string{"a"}), DataDir: dir, PeerSecret: "s"})
	require.ErrorIs(t, err, ErrForeignState)
}

func TestPeerAPIIsApart(t *testing.T) {
	tc := startCluster(t, 3, false, nil)
	ctx := context.Background()
	cc, err := grpc.NewClient("passthrough:///"+tc.addrs[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc.Close()
	_, err = pb.NewPeerClient(cc).Set(ctx, &pb.SetRequest{Name: "one", Base: 1, Value: ^uint64(0)})
	require.Equal(t, codes.Unimplemented, status.Code(err), "the client listener never serves the peer API: %v", err)
	for _, secret := range []string{"", "wrong"} {
		_, err = dialPeer(t, tc.peers[0], secret).Set(ctx, &pb.SetRequest{Name: "one", Base: 1, Value: ^uint64(0)})
		require.Equal(t, codes.Unauthenticated, status.Code(err), "secret %q: %v", secret, err)
	}
	require.Empty(t, tc.nodes[0].Values(), "refused calls change nothing")
	r, err := dial(t, tc.addrs[1]).NextRange(ctx, &pb.NextRangeRequest{Name: "one", N: 2})
	require.NoError(t, err)
	require.Equal(t, uint64(1), r.GetFrom())
}

// TestMemoryNodeRecoversAfterRestart is the amnesia bug over real gRPC: a
// node in memory restarts empty; until it has recovered it refuses to act
// as a replica, and then it holds what was allocated.
func TestMemoryNodeRecoversAfterRestart(t *testing.T) {
	tc := startCluster(t, 3, false, func(i int, c *Config) { c.RoundLife = 200 * time.Millisecond })
	ctx := context.Background()
	c := dial(t, tc.addrs[0])
	r, err := c.NextRange(ctx, &pb.NextRangeRequest{Name: "s", N: 10})
	require.NoError(t, err)
	tc.nodes[2].Close()
	tc.start(2, nil, nil)
	require.False(t, tc.nodes[2].Ready(), "a restarted node in memory recovers first")
	_, err = dial(t, tc.addrs[2]).NextRange(ctx, &pb.NextRangeRequest{Name: "s", N: 1})
	require.Equal(t, codes.Unavailable, status.Code(err))
	_, err = dialPeer(t, tc.peers[2], testSecret).Get(ctx, &pb.GetRequest{Name: "s"})
	require.Equal(t, codes.Unavailable, status.Code(err), "no quorum reads while recovering")
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, tc.nodes[2].WaitReady(wctx))
	require.GreaterOrEqual(t, tc.nodes[2].Values()["s"], r.GetTo(), "recovered what was allocated")
	// Now only n3 and one other: the allocation must not repeat.
	tc.nodes[0].Close()
	r2, err := dial(t, tc.addrs[2]).NextRange(ctx, &pb.NextRangeRequest{Name: "s", N: 1})
	require.NoError(t, err)
	require.GreaterOrEqual(t, r2.GetFrom(), r.GetTo())
}

// TestInFlightBound: past MaxInFlight, calls are refused at once with
// ResourceExhausted, and the gauge never passes the bound.
func TestInFlightBound(t *testing.T) {
	const bound = 8
	tc := startCluster(t, 3, false, func(i int, c *Config) { c.MaxInFlight = bound })
	// Many connections: one connection alone is already held to bound
	// streams at a time by gRPC's MaxConcurrentStreams.
	var conns []pb.SequencerClient
	for range 25 {
		conns = append(conns, dial(t, tc.addrs[0]))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	codesSeen := map[codes.Code]int{}
	for i := range 200 {
		c := conns[i%len(conns)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := c.NextRange(ctx, &pb.NextRangeRequest{Name: "hot", N: 1})
			mu.Lock()
			codesSeen[status.Code(err)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	_, most := tc.nodes[0].InFlight()
	require.LessOrEqual(t, most, int64(bound+1), "the gauge counts the refused call before it refuses")
	require.Positive(t, codesSeen[codes.ResourceExhausted], "%v", codesSeen)
	require.Positive(t, codesSeen[codes.OK], "%v", codesSeen)
}

func TestClientHookReportsFetches(t *testing.T) {
	tc := startCluster(t, 3, false, nil)
	var mu sync.Mutex
	var evs []FetchEvent
	c, err := NewClient(ClientConfig{Nodes: tc.addrs, RangeSize: 4, OnFetch: func(e FetchEvent) {
		mu.Lock()
		evs = append(evs, e)
		mu.Unlock()
	}})
	require.NoError(t, err)
	for range 10 {
		_, err := c.Next(context.Background())
		require.NoError(t, err)
	}
	require.NoError(t, c.Close())
	mu.Lock()
	defer mu.Unlock()
	var ranges []seq.Range
	nodes := map[string]bool{}
	for _, e := range evs {
		if e.Phase == FetchOK {
			ranges = append(ranges, e.Range)
			nodes[e.Node] = true
		}
	}
	require.GreaterOrEqual(t, len(ranges), 3, "10 IDs from ranges of 4")
	require.Len(t, nodes, 1, "fetches stay with the node that answers")
	sort.Slice(ranges, func(i, j int) bool { return ranges[i].From < ranges[j].From })
	for i := 1; i < len(ranges); i++ {
		require.False(t, ranges[i].Overlaps(ranges[i-1]))
	}
	_, err = c.Next(context.Background())
	require.ErrorIs(t, err, seq.ErrClosed)
}

func TestClientFailsOverToAnotherNode(t *testing.T) {
	tc := startCluster(t, 3, false, nil)
	c := tc.client(t, 2, 0)
	tc.nodes[0].Close() // the first node asked is down; n2 and n3 still make a quorum
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var last seq.ID
	for range 6 {
		id, err := c.Next(ctx)
		require.NoError(t, err)
		require.Greater(t, id, last)
		last = id
	}
}

// TestClientAdaptiveRangeSize: a caller that outruns the fetches doubles
// the range size up to the cap; after a pause it shrinks again.
func TestClientAdaptiveRangeSize(t *testing.T) {
	tc := startCluster(t, 3, false, nil)
	var mu sync.Mutex
	var sizes []uint64
	c, err := NewClient(ClientConfig{Nodes: tc.addrs, RangeSize: 2, AdaptiveMax: 16, IdleAfter: 50 * time.Millisecond,
		OnFetch: func(e FetchEvent) {
			if e.Phase == FetchInvoke {
				mu.Lock()
				sizes = append(sizes, e.N)
				mu.Unlock()
			}
		}})
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	var last seq.ID
	for range 200 {
		id, err := c.Next(ctx)
		require.NoError(t, err)
		require.Greater(t, id, last)
		last = id
	}
	mu.Lock()
	grown, seen := slices.Max(sizes), slices.Clone(sizes)
	mu.Unlock()
	require.EqualValues(t, 16, grown, "stalls doubled the size to the cap: %v", seen)
	time.Sleep(150 * time.Millisecond) // idle; the fetches under way have started
	mu.Lock()
	before := len(sizes)
	mu.Unlock()
	for started := false; !started; { // take IDs until the next fetch starts
		_, err := c.Next(ctx)
		require.NoError(t, err)
		mu.Lock()
		started = len(sizes) > before
		mu.Unlock()
	}
	mu.Lock()
	defer mu.Unlock()
	require.EqualValues(t, 8, sizes[before], "idle: halved: %v", sizes)
	_, err = NewClient(ClientConfig{Nodes: tc.addrs, RangeSize: 8, AdaptiveMax: 4})
	require.ErrorIs(t, err, seq.ErrInvalidArgument)
}
