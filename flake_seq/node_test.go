package flake_seq_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/seqlab/seqlab/flake_seq"
	"github.com/seqlab/seqlab/fsys"
	"github.com/seqlab/seqlab/rr_seq/pb"
	"github.com/seqlab/seqlab/seq"
	"github.com/seqlab/seqlab/simnet/disk"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a clock a test moves by hand, safe for the node's goroutines.
type clock struct{ ns atomic.Int64 }

func newClock(at time.Time) *clock {
	c := &clock{}
	c.ns.Store(at.UnixNano())
	return c
}

func (c *clock) Now() time.Time                 { return time.Unix(0, c.ns.Load()) }
func (c *clock) Add(d time.Duration)            { c.ns.Add(int64(d)) }
func (c *clock) Set(t time.Time)                { c.ns.Store(t.UnixNano()) }
func (c *clock) Since() time.Duration           { return c.Now().Sub(flake_seq.DefaultEpoch) }
func at(d time.Duration) time.Time              { return flake_seq.DefaultEpoch.Add(d) }
func tsOf(id uint64) int64                      { ts, _, _ := flake_seq.Unpack(seq.ID(id)); return ts }
func codeOf(err error) codes.Code               { return status.Code(err) }
func nodeOf(id uint64) (node int)               { _, node, _ = flake_seq.Unpack(seq.ID(id)); return node }
func counterOf(id uint64) (counter int)         { _, _, counter = flake_seq.Unpack(seq.ID(id)); return counter }
func rangeOf(r *pb.NextRangeResponse) [2]uint64 { return [2]uint64{r.GetFrom(), r.GetTo()} }

// serve starts node on a bufconn listener, both APIs, and returns a client
// connection; cleanup closes it all and checks that Serve returned nil.
func serve(t *testing.T, node *flake_seq.Node) *grpc.ClientConn {
	t.Helper()
	lis, peers := bufconn.Listen(1<<20), bufconn.Listen(1<<20)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); errs[0] = node.Serve(lis) }()
	go func() { defer wg.Done(); errs[1] = node.ServePeers(peers) }()
	dial := func(l *bufconn.Listener) *grpc.ClientConn {
		cc, err := grpc.NewClient("passthrough:///bufnet", grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) }))
		require.NoError(t, err)
		return cc
	}
	cc, pc := dial(lis), dial(peers)
	t.Cleanup(func() {
		cc.Close()
		pc.Close()
		require.NoError(t, node.Close())
		wg.Wait()
		require.NoError(t, errs[0])
		require.NoError(t, errs[1])
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h, err := healthpb.NewHealthClient(pc).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err, "the peer listener answers health")
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, h.GetStatus())
	return cc
}

func call(t *testing.T, cc *grpc.ClientConn, name string, n uint64) (*pb.NextRangeResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return pb.NewSequencerClient(cc).NextRange(ctx, &pb.NextRangeRequest{Name: name, N: n})
}

// TestNodeServes: a node in memory hands out increasing ranges of one
// millisecond over gRPC, refuses bad requests as InvalidArgument, and
// names itself.
func TestNodeServes(t *testing.T) {
	node, err := flake_seq.NewNode(flake_seq.NodeConfig{Name: "f1", NodeID: 7})
	require.NoError(t, err)
	cc := serve(t, node)
	var last uint64
	for i := range 100 {
		r, err := call(t, cc, "orders", uint64(1+i%20))
		require.NoError(t, err)
		assert.Equal(t, "f1", r.GetNode())
		assert.Equal(t, uint64(1+i%20), r.GetTo()-r.GetFrom())
		assert.Equal(t, 7, nodeOf(r.GetFrom()))
		assert.Equal(t, tsOf(r.GetFrom()), tsOf(r.GetTo()-1), "one millisecond")
		assert.Greater(t, r.GetFrom(), last)
		last = r.GetTo() - 1
	}
	now := time.Since(flake_seq.DefaultEpoch).Milliseconds()
	assert.InDelta(t, now, tsOf(last), 5000, "timestamps are the real clock's")
	for _, tc := range []struct {
		name string
		n    uint64
		want string
	}{
		{"", 1, "sequence name is empty"},
		{"a\x00", 1, "NUL"},
		{"a", 0, "range size 0"},
		{"a", flake_seq.PerMilli + 1, "range size 4097"},
		{"a", 1 << 63, "outside 1..4096"},
	} {
		_, err := call(t, cc, tc.name, tc.n)
		require.Equal(t, codes.InvalidArgument, codeOf(err), "%q %d: %v", tc.name, tc.n, err)
		assert.ErrorContains(t, err, tc.want)
	}
}

// TestNodeClock: the node reads the clock it is given; a clock stepped
// back keeps the last timestamp while its counters last, then the node
// refuses as Unavailable after MaxWait; a full millisecond waits for the
// next.
func TestNodeClock(t *testing.T) {
	c := newClock(at(time.Hour))
	node, err := flake_seq.NewNode(flake_seq.NodeConfig{Name: "f1", NodeID: 1, Clock: c.Now, MaxWait: 20 * time.Millisecond})
	require.NoError(t, err)
	cc := serve(t, node)
	r, err := call(t, cc, "a", 4000)
	require.NoError(t, err)
	assert.Equal(t, time.Hour.Milliseconds(), tsOf(r.GetFrom()))

	c.Add(-10 * time.Second)
	r2, err := call(t, cc, "a", 96)
	require.NoError(t, err)
	assert.Equal(t, r.GetTo(), r2.GetFrom(), "the last timestamp, on")
	start := time.Now()
	_, err = call(t, cc, "a", 1)
	require.Equal(t, codes.Unavailable, codeOf(err), "%v", err)
	assert.ErrorContains(t, err, "clock behind the last timestamp")
	assert.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond, "after MaxWait")

	// A full millisecond: the call waits for the clock to move on.
	c.Add(10*time.Second + time.Millisecond)
	_, err = call(t, cc, "a", flake_seq.PerMilli)
	require.NoError(t, err)
	done := make(chan *pb.NextRangeResponse)
	go func() {
		r, err := call(t, cc, "a", 1)
		assert.NoError(t, err)
		done <- r
	}()
	time.Sleep(5 * time.Millisecond)
	c.Add(time.Millisecond)
	r3 := <-done
	assert.Equal(t, time.Hour.Milliseconds()+2, tsOf(r3.GetFrom()))
	assert.Equal(t, 0, counterOf(r3.GetFrom()))
}

// TestNodeDataDir: a node on disk keeps its mark across restarts, so one
// that restarts with its clock far behind starts above what it handed
// out; the data dir is locked, and is one node's.
func TestNodeDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "f1")
	c := newClock(at(time.Hour))
	cfg := flake_seq.NodeConfig{Name: "f1", NodeID: 3, DataDir: dir, Clock: c.Now, MaxWait: time.Second}
	node, err := flake_seq.NewNode(cfg)
	require.NoError(t, err)
	assert.Equal(t, time.Hour.Milliseconds()+1000, node.Mark(), "reserved a second ahead")
	_, err = flake_seq.NewNode(cfg)
	require.ErrorIs(t, err, fsys.ErrLocked)
	cc := serve(t, node)
	r, err := call(t, cc, "a", 10)
	require.NoError(t, err)
	require.NoError(t, node.Close())
	b, err := os.ReadFile(filepath.Join(dir, flake_seq.MarkFile))
	require.NoError(t, err)
	assert.Regexp(t, `^flake_seq mark v1 node=3 epoch=1735689600000 mark=3601000 crc=[0-9a-f]{8}\n$`, string(b))

	c.Add(-time.Minute)
	again, err := flake_seq.NewNode(cfg)
	require.NoError(t, err)
	assert.Equal(t, time.Hour.Milliseconds()+2000, again.Mark(), "reserved past the old mark")
	cc2 := serve(t, again)
	r2, err := call(t, cc2, "a", 10)
	require.NoError(t, err)
	assert.Greater(t, r2.GetFrom(), r.GetTo(), "above everything handed out before")
	assert.Equal(t, time.Hour.Milliseconds()+1000, tsOf(r2.GetFrom()), "from the old mark")
	require.NoError(t, again.Close())

	other := cfg
	other.NodeID = 4
	_, err = flake_seq.NewNode(other)
	require.ErrorContains(t, err, "the data dir is node 3's, not node 4's")
	require.NoError(t, os.WriteFile(filepath.Join(dir, flake_seq.MarkFile), []byte("flake_seq mark v1 node=3 epoch=1 mark=5 crc=00000000\n"), 0o644))
	_, err = flake_seq.NewNode(cfg)
	require.ErrorContains(t, err, "corrupt")
}

// TestNodePlantedClockRollback: with the planted bug, a node on disk that
// restarts with its clock behind hands out an ID it handed out before.
func TestNodePlantedClockRollback(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "f1")
	c := newClock(at(time.Hour))
	cfg := flake_seq.NodeConfig{Name: "f1", DataDir: dir, Clock: c.Now, Planted: flake_seq.Planted{ClockRollback: true}}
	node, err := flake_seq.NewNode(cfg)
	require.NoError(t, err)
	r, err := node.Allocate(context.Background(), "a", 5)
	require.NoError(t, err)
	require.NoError(t, node.Close())
	c.Add(-time.Second)
	node, err = flake_seq.NewNode(cfg)
	require.NoError(t, err)
	defer node.Close()
	c.Add(time.Second)
	r2, err := node.Allocate(context.Background(), "a", 5)
	require.NoError(t, err)
	assert.Equal(t, r, r2, "the planted bug hands out the same IDs again")
}

// TestNodeCloseEndsWaits: Close refuses the calls waiting for the clock
// and leaves no goroutine behind (TestMain checks).
func TestNodeCloseEndsWaits(t *testing.T) {
	c := newClock(at(time.Hour))
	node, err := flake_seq.NewNode(flake_seq.NodeConfig{Name: "f1", Clock: c.Now, MaxWait: time.Minute})
	require.NoError(t, err)
	_, err = node.Allocate(context.Background(), "a", flake_seq.PerMilli)
	require.NoError(t, err)
	errc := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := node.Allocate(context.Background(), "a", 1)
			errc <- err
		}()
	}
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, node.Close())
	for range 3 {
		err := <-errc
		assert.Equal(t, codes.Unavailable, codeOf(err))
		assert.ErrorContains(t, err, "closing")
	}
	require.NoError(t, node.Close(), "twice is fine")
	lis := bufconn.Listen(1 << 10)
	require.NoError(t, node.Serve(lis), "Serve after Close returns at once")
	_, err = node.Allocate(context.Background(), "a", 1)
	assert.Equal(t, codes.Unavailable, codeOf(err))

	_, err = flake_seq.NewNode(flake_seq.NodeConfig{})
	require.ErrorContains(t, err, "needs a name")
	_, err = flake_seq.NewNode(flake_seq.NodeConfig{Name: "x", NodeID: 2000})
	require.ErrorContains(t, err, "node ID 2000")
	y2k := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) // where a synctest bubble's clock starts
	_, err = flake_seq.NewNode(flake_seq.NodeConfig{Name: "x", Clock: func() time.Time { return y2k }})
	require.ErrorContains(t, err, "the clock reads 2000-01-01T00:00:00Z, before the epoch 2025-01-01T00:00:00Z")
	node, err = flake_seq.NewNode(flake_seq.NodeConfig{Name: "x", Clock: func() time.Time { return y2k }, Epoch: y2k})
	require.NoError(t, err)
	require.NoError(t, node.Close())
}

// TestNodeConcurrent: many callers at once get disjoint ranges. (A node
// hands out PerMilli IDs a millisecond at most; callers that ask for more
// wait, and past MaxWait are refused, first come or not.)
func TestNodeConcurrent(t *testing.T) {
	node, err := flake_seq.NewNode(flake_seq.NodeConfig{Name: "f1"})
	require.NoError(t, err)
	cc := serve(t, node)
	var mu sync.Mutex
	var got [][2]uint64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				r, err := call(t, cc, "a", 10)
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				got = append(got, rangeOf(r))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Len(t, got, 1600)
	seen := map[uint64]bool{}
	for _, r := range got {
		for id := r[0]; id < r[1]; id++ {
			require.False(t, seen[id], "ID %d twice", id)
			seen[id] = true
		}
	}
}

// failingFS is the real filesystem, whose file creations fail while fail
// is set.
type failingFS struct {
	fsys.OSFS
	fail atomic.Bool
}

func (f *failingFS) Create(name string) (fsys.File, error) {
	if f.fail.Load() {
		return nil, errors.New("disk on fire")
	}
	return f.OSFS.Create(name)
}

// TestNodeDiskFails: while the mark cannot be renewed, the node hands out
// what its durable mark still covers, then refuses as Unavailable and
// says why; once the disk works again, so does the node.
func TestNodeDiskFails(t *testing.T) {
	c := newClock(at(time.Hour))
	disk := &failingFS{}
	node, err := flake_seq.NewNode(flake_seq.NodeConfig{Name: "f1", DataDir: filepath.Join(t.TempDir(), "d"), FS: disk,
		Clock: c.Now, MaxWait: 20 * time.Millisecond})
	require.NoError(t, err)
	cc := serve(t, node)
	disk.fail.Store(true)
	c.Add(900 * time.Millisecond)
	_, err = call(t, cc, "a", 1)
	require.NoError(t, err, "below the mark, which the failing renewal does not take away")
	c.Add(200 * time.Millisecond)
	_, err = call(t, cc, "a", 1)
	require.Equal(t, codes.Unavailable, codeOf(err), "%v", err)
	assert.ErrorContains(t, err, "the last fsync of the mark failed: disk on fire")
	disk.fail.Store(false)
	r, err := call(t, cc, "a", 1)
	require.NoError(t, err)
	assert.Equal(t, time.Hour.Milliseconds()+1100, tsOf(r.GetFrom()))
	assert.Greater(t, node.Mark(), time.Hour.Milliseconds()+2000)
}

// FuzzNodeAPI feeds arbitrary requests to a node's NextRange: none may
// panic; each is refused as InvalidArgument (and then was bad) or answered
// with exactly n IDs of one millisecond and node.
func FuzzNodeAPI(f *testing.F) {
	f.Add("s", uint64(1))
	f.Add("", uint64(0))
	f.Add("x", ^uint64(0))
	f.Add("a\x00b", uint64(3))
	f.Add("\xff", uint64(4096))
	node, err := flake_seq.NewNode(flake_seq.NodeConfig{Name: "f1", NodeID: 12})
	require.NoError(f, err)
	defer node.Close()
	f.Fuzz(func(t *testing.T, name string, n uint64) {
		r, err := node.NextRange(context.Background(), &pb.NextRangeRequest{Name: name, N: n})
		if err != nil {
			require.Equal(t, codes.InvalidArgument, codeOf(err), "%v", err)
			require.True(t, flake_seq.ValidateName(name) != nil || n == 0 || n > flake_seq.PerMilli)
			return
		}
		require.Equal(t, n, r.GetTo()-r.GetFrom())
		require.Equal(t, 12, nodeOf(r.GetFrom()))
		require.Equal(t, tsOf(r.GetFrom()), tsOf(r.GetTo()-1))
	})
}

// TestNodePowerLoss: on the lab's simulated disk, which loses what was not
// synced, a node's mark survives power losses (torn writes included) at
// any moment, so every restart, its clock stepped back, starts above
// every ID it handed out.
func TestNodePowerLoss(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		d := disk.New(seed)
		c := newClock(at(time.Hour))
		var last seq.ID
		for restart := range 6 {
			node, err := flake_seq.NewNode(flake_seq.NodeConfig{Name: "f1", NodeID: 2, DataDir: "/data/f1", FS: d.Mount(),
				Clock: c.Now, MaxWait: time.Second})
			require.NoError(t, err, "seed %d restart %d", seed, restart)
			for range 1 + restart*7 {
				c.Add(time.Duration(1+restart) * 100 * time.Millisecond)
				r, err := node.Allocate(context.Background(), "a", 3)
				require.NoError(t, err)
				require.Greater(t, r.From, last, "seed %d restart %d: above everything before", seed, restart)
				last = r.To - 1
			}
			require.NoError(t, node.Close())
			d.Crash(disk.CrashMode(seed % 2)) // a power loss, clean or torn
			c.Add(-2 * time.Second)
		}
	}
}

// TestNodeInBubble: in a synctest bubble, as the lab's gRPC mode runs
// nodes, the node waits for the next millisecond on the bubble's clock,
// and Close leaves no goroutine in the bubble.
func TestNodeInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		node, err := flake_seq.NewNode(flake_seq.NodeConfig{Name: "f1", Epoch: start})
		require.NoError(t, err)
		var last seq.ID
		for range 100 {
			r, err := node.Allocate(context.Background(), "a", 3000) // one range a millisecond
			require.NoError(t, err)
			require.Greater(t, r.From, last)
			last = r.To - 1
		}
		// Timestamp 0 is never used: the first range waits for 1ms.
		assert.Equal(t, int64(100), tsOf(uint64(last)))
		assert.Equal(t, 100*time.Millisecond, time.Since(start), "waited a millisecond a range")
		require.NoError(t, node.Close())
	})
}
