package flake_seq

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pkg/errors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/seqlab/seqlab/fsys"
	"github.com/seqlab/seqlab/rr_seq/pb"
	"github.com/seqlab/seqlab/seq"
)

// DefaultEpoch is the epoch of IDs unless a node is configured otherwise:
// the timestamps count milliseconds from it, 41 bits of them, which last
// until 2094.
var DefaultEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// NodeConfig is one gRPC node. The zero value but for Name is an in-memory
// node 0 on the real clock.
type NodeConfig struct {
	// Name is the node's name in answers and logs.
	Name string
	// NodeID is the node's part of every ID, 0..MaxNodeID, unique in the
	// cluster.
	NodeID int
	// DataDir keeps the high-water mark; empty keeps it in memory only,
	// and a restart then starts from the clock alone (safe only if the
	// clock has passed every timestamp used before). FS is its file
	// access, fsys.OSFS by default.
	DataDir string
	FS      fsys.FS
	// Clock is the node's clock, time.Now by default: the lab's gRPC mode
	// gives each node a clock it can skew (nemesis.SkewedClock).
	Clock func() time.Time
	// Epoch is where timestamps start, DefaultEpoch by default. A data
	// dir remembers it, and refuses another.
	Epoch time.Time
	// Reserve and RenewAhead are the core's (Config).
	Reserve, RenewAhead time.Duration
	// MaxWait is how long a call waits for the clock to move on or for a
	// renewal to be durable before it is refused as Unavailable, within
	// its deadline. Default 50ms.
	MaxWait time.Duration
	// Planted plants a bug, for the lab.
	Planted Planted
	// Logger is slog.Default() if nil.
	Logger *slog.Logger
}

// WithDefaults fills unset fields.
func (c NodeConfig) WithDefaults() NodeConfig {
	if c.FS == nil {
		c.FS = fsys.OSFS{}
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Epoch.IsZero() {
		c.Epoch = DefaultEpoch
	}
	core := c.core().WithDefaults()
	c.Reserve, c.RenewAhead = core.Reserve, core.RenewAhead
	if c.MaxWait == 0 {
		c.MaxWait = 50 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports a configuration a node cannot run with.
func (c NodeConfig) Validate() error {
	if c.Name == "" {
		return errors.New("flake_seq: a node needs a name")
	}
	if c.MaxWait < 0 {
		return errors.New("flake_seq: negative MaxWait")
	}
	return c.core().Validate()
}

func (c NodeConfig) core() Config {
	return Config{NodeID: c.NodeID, Reserve: c.Reserve, RenewAhead: c.RenewAhead, Planted: c.Planted}
}

// Node is one flake node: the gRPC shell around a Core. It serves
// rrseq.v1.Sequencer's NextRange, with health and reflection, on its
// client listener (Serve); it has no peers, and its peer listener
// (ServePeers) serves health only. Its mark goes to its data dir on a
// goroutine of its own, one fsync at a time.
type Node struct {
	pb.UnimplementedSequencerServer

	cfg    NodeConfig
	log    *slog.Logger
	server *grpc.Server
	peers  *grpc.Server
	health *health.Server
	store  *markStore // nil in memory

	mu      sync.Mutex
	core    *Core
	durable chan struct{} // closed, and replaced, when a renewal ends
	saveErr error         // the last renewal's failure, nil once one works
	renew   chan int64    // the mark to persist: one at a time (Core.Renewal)

	life    sync.Mutex // orders Serve and calls against Close
	closed  bool
	stop    chan struct{}
	serving sync.WaitGroup
	calls   sync.WaitGroup
	saver   sync.WaitGroup
}

// NewNode opens the node's data dir, reads its mark and reserves a new
// one before it returns, so that a node that starts serves at once.
func NewNode(cfg NodeConfig) (*Node, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("node", cfg.Name), durable: make(chan struct{}),
		renew: make(chan int64, 1), stop: make(chan struct{})}
	if now := cfg.Clock(); now.Before(cfg.Epoch) {
		// A clock before the epoch would wait for it, and hand out nothing
		// (a synctest bubble's clock starts in 2000).
		return nil, errors.Errorf("flake_seq: the clock reads %v, before the epoch %v: set NodeConfig.Epoch at or before it",
			now.UTC().Format(time.RFC3339), cfg.Epoch.UTC().Format(time.RFC3339))
	}
	var mark int64
	if cfg.DataDir != "" && !cfg.Planted.ClockRollback {
		s, m, err := openMarks(cfg.FS, cfg.DataDir, cfg.NodeID, cfg.Epoch.UnixMilli())
		if err != nil {
			return nil, err
		}
		n.store, mark = s, m
	}
	core, err := NewCore(cfg.core(), mark)
	if err != nil {
		n.closeStore()
		return nil, err
	}
	n.core = core
	if cfg.Planted.ClockRollback {
		n.log.Warn("planted bug on: no high-water mark, a restart with the clock behind hands out IDs again", "bug", BugClockRollback)
	}
	if want, ok := core.Renewal(n.clock()); ok {
		if err := n.save(want); err != nil {
			n.closeStore()
			return nil, errors.Wrap(err, "flake_seq: reserve the first timestamps")
		}
		core.Persisted(want)
	}
	n.server = grpc.NewServer()
	pb.RegisterSequencerServer(n.server, n)
	n.health = health.NewServer()
	healthpb.RegisterHealthServer(n.server, n.health)
	reflection.Register(n.server)
	n.peers = grpc.NewServer()
	healthpb.RegisterHealthServer(n.peers, n.health)
	n.saver.Add(1)
	go n.persist()
	return n, nil
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Config returns the node's configuration, defaults filled.
func (n *Node) Config() NodeConfig { return n.cfg }

// clock reads the node's clock as time since the epoch.
func (n *Node) clock() time.Duration { return n.cfg.Clock().Sub(n.cfg.Epoch) }

// Mark returns the durable high-water mark, in milliseconds since the
// epoch.
func (n *Node) Mark() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.core.Mark()
}

// Serve serves the client API (NextRange, health, reflection) on lis until
// Close. It returns nil after Close.
func (n *Node) Serve(lis net.Listener) error { return n.serve(n.server, lis, "clients") }

// ServePeers serves health on lis until Close: flake nodes have no peer
// API, and a lab that gives every node a peer listener gets an answer
// there.
func (n *Node) ServePeers(lis net.Listener) error { return n.serve(n.peers, lis, "peers") }

func (n *Node) serve(srv *grpc.Server, lis net.Listener, what string) error {
	n.life.Lock()
	if n.closed {
		n.life.Unlock()
		lis.Close()
		return nil
	}
	n.serving.Add(1)
	n.life.Unlock()
	defer n.serving.Done()
	n.log.Debug("serving "+what, "addr", lis.Addr().String())
	err := srv.Serve(lis)
	n.life.Lock()
	closed := n.closed
	n.life.Unlock()
	if closed {
		return nil
	}
	return errors.Wrap(err, "serve "+what)
}

// Close stops serving, refuses the calls in progress and waits for them,
// stops the persister and releases the data dir. A second Close does
// nothing.
func (n *Node) Close() error {
	n.life.Lock()
	if n.closed {
		n.life.Unlock()
		return nil
	}
	n.closed = true
	close(n.stop)
	n.life.Unlock()
	n.health.Shutdown()
	n.server.Stop()
	n.peers.Stop()
	n.serving.Wait()
	n.calls.Wait()
	n.saver.Wait()
	return n.closeStore()
}

func (n *Node) closeStore() error {
	if n.store == nil {
		return nil
	}
	return n.store.close()
}

// NextRange implements pb.SequencerServer.
func (n *Node) NextRange(ctx context.Context, req *pb.NextRangeRequest) (*pb.NextRangeResponse, error) {
	r, err := n.Allocate(ctx, req.GetName(), req.GetN())
	if err != nil {
		return nil, err
	}
	return &pb.NextRangeResponse{From: uint64(r.From), To: uint64(r.To), Node: n.cfg.Name}, nil
}

// Allocate hands out n IDs of name. Its errors are gRPC statuses:
// InvalidArgument (a bad name, n = 0 or over PerMilli), OutOfRange (the
// clock is past the layout), Unavailable (the clock is behind the last
// timestamp, or the mark is not renewed, for longer than MaxWait; or
// the node is closing), or the context's.
func (n *Node) Allocate(ctx context.Context, name string, size uint64) (seq.Range, error) {
	n.life.Lock()
	if n.closed {
		n.life.Unlock()
		return seq.Range{}, status.Errorf(codes.Unavailable, "node %s is closing", n.cfg.Name)
	}
	n.calls.Add(1)
	n.life.Unlock()
	defer n.calls.Done()

	giveUp := time.NewTimer(n.cfg.MaxWait)
	defer giveUp.Stop()
	for {
		n.mu.Lock()
		clock := n.clock()
		r, err := n.core.NextRange(clock, name, size)
		if mark, ok := n.core.Renewal(clock); ok {
			n.renew <- mark // never blocks: the core asks for one renewal at a time
		}
		durable, saveErr := n.durable, n.saveErr
		n.mu.Unlock()

		var tick *time.Timer
		var w *WaitError
		switch {
		case err == nil:
			return r, nil
		case errors.Is(err, seq.ErrInvalidArgument):
			return seq.Range{}, status.Error(codes.InvalidArgument, err.Error())
		case errors.Is(err, seq.ErrOverflow):
			return seq.Range{}, status.Error(codes.OutOfRange, err.Error())
		case errors.As(err, &w):
			// The clock may be skewed: look again at least every
			// millisecond rather than trust the wait it says.
			tick = time.NewTimer(min(w.Until-w.Clock, time.Millisecond))
		case errors.Is(err, ErrNotReserved) && saveErr != nil:
			err = errors.Wrapf(err, "the last fsync of the mark failed: %v", saveErr)
			// A failing disk fails fast: try again in a while, not at once.
			durable, tick = nil, time.NewTimer(5*time.Millisecond)
		}
		var tc <-chan time.Time
		if tick != nil {
			tc = tick.C
		}
		select {
		case <-tc:
		case <-durable:
		case <-giveUp.C:
			return seq.Range{}, status.Errorf(codes.Unavailable, "node %s: %v", n.cfg.Name, err)
		case <-ctx.Done():
			return seq.Range{}, status.FromContextError(ctx.Err()).Err()
		case <-n.stop:
			return seq.Range{}, status.Errorf(codes.Unavailable, "node %s is closing", n.cfg.Name)
		}
		if tick != nil {
			tick.Stop()
		}
	}
}

// persist makes the marks the core asks for durable, one fsync at a time,
// and wakes the calls that wait for them.
func (n *Node) persist() {
	defer n.saver.Done()
	for {
		var mark int64
		select {
		case <-n.stop:
			return
		case mark = <-n.renew:
		}
		err := n.save(mark)
		n.mu.Lock()
		if err != nil {
			n.core.PersistFailed()
			n.saveErr = err
			n.log.Error("renewing the high-water mark", "mark", mark, "err", err)
		} else {
			n.core.Persisted(mark)
			n.saveErr = nil
		}
		close(n.durable)
		n.durable = make(chan struct{})
		n.mu.Unlock()
	}
}

// save makes mark durable, or keeps it in memory without a data dir.
func (n *Node) save(mark int64) error {
	if n.store == nil {
		return nil
	}
	return n.store.save(mark)
}
