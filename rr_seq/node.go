package rr_seq

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/errors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/seqlab/seqlab/rr_seq/pb"
	"github.com/seqlab/seqlab/seq"
)

// Node is one member of a read-repair cluster: the gRPC shell around a
// Replica (its own values) and a Coordinator (the NextRange protocol). It
// serves Get and Set to its peers and NextRange to clients.
type Node struct {
	pb.UnimplementedSequencerServer

	cfg    Config
	log    *slog.Logger
	server *grpc.Server
	health *health.Server
	peers  map[string]*peerConns

	// rmu guards the replica and the persistence generation.
	rmu     sync.Mutex
	replica *Replica
	gen     uint64 // bumped by every accepted change
	store   *Storage

	// pmu guards the group commit.
	pmu      sync.Mutex
	pcond    *sync.Cond
	durable  uint64
	flushing bool

	// cmu guards the coordinator and the callers waiting on it.
	cmu     sync.Mutex
	coord   *Coordinator
	waiters map[OpID]*waiter
	rng     *rand.Rand

	stop     context.Context
	stopNow  context.CancelFunc
	inflight sync.WaitGroup
	closed   atomic.Bool
	serving  sync.WaitGroup
}

const windowSize = 1 << 20

// dialOptions are the options of every connection to a node.
func dialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(windowSize),
		grpc.WithInitialConnWindowSize(windowSize),
	}
}

type waiter struct {
	ctx         context.Context
	done        chan Done
	unreachable bool
}

type peerConns struct {
	conns   []*grpc.ClientConn
	clients []pb.SequencerClient
	next    atomic.Uint64
}

func (p *peerConns) pick() pb.SequencerClient {
	return p.clients[p.next.Add(1)%uint64(len(p.clients))]
}

// NewNode validates cfg, loads the node's durable state if it has a data
// dir, and prepares its peer connections. Call Serve to start serving.
func NewNode(cfg Config) (*Node, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:     cfg,
		log:     cfg.Logger.With("node", cfg.Name),
		peers:   map[string]*peerConns{},
		coord:   NewCoordinator(cfg.Self, cfg.Peers, cfg.R, cfg.W, cfg.Fanout),
		waiters: map[OpID]*waiter{},
		rng:     rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed)),
	}
	n.pcond = sync.NewCond(&n.pmu)
	values := map[string]uint64{}
	if cfg.DataDir != "" {
		st, err := OpenStorage(cfg.FS, cfg.DataDir)
		if err != nil {
			return nil, err
		}
		loaded, err := st.Load()
		if err == nil && loaded.Identity == nil {
			// Until the node checks identities and offers --recover, a
			// fresh or legacy dir becomes this node's as it is.
			err = st.Init(Identity{Node: cfg.Name}, loaded.Values)
		}
		if err != nil {
			st.Close()
			return nil, err
		}
		values = loaded.Values
		n.store = st
	}
	n.replica = NewReplica(cfg.WriteRule, values)
	n.stop, n.stopNow = context.WithCancel(context.Background())

	opts := dialOptions()
	if cfg.Dialer != nil {
		opts = append(opts, grpc.WithContextDialer(cfg.Dialer))
	}
	opts = append(opts, cfg.DialOptions...)
	for _, p := range cfg.Peers {
		if p == cfg.Self {
			continue
		}
		pc := &peerConns{}
		for range cfg.ConnsPerPeer {
			cc, err := grpc.NewClient("passthrough:///"+p, opts...)
			if err != nil {
				n.closeConns()
				if n.store != nil {
					n.store.Close()
				}
				return nil, errors.Wrapf(err, "connect to peer %s", p)
			}
			pc.conns = append(pc.conns, cc)
			pc.clients = append(pc.clients, pb.NewSequencerClient(cc))
		}
		n.peers[p] = pc
	}

	n.server = grpc.NewServer(
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
		// Fixed windows turn off gRPC's bandwidth-delay estimator, whose
		// pings cost a frame per small RPC; our messages are tiny.
		grpc.InitialWindowSize(windowSize),
		grpc.InitialConnWindowSize(windowSize),
	)
	pb.RegisterSequencerServer(n.server, n)
	n.health = health.NewServer()
	healthpb.RegisterHealthServer(n.server, n.health)
	reflection.Register(n.server)
	n.log.Info("node ready", "peers", cfg.Peers, "quorum", cfg.Quorum().String(), "rule", cfg.WriteRule.String(), "data_dir", cfg.DataDir, "sequences", len(values))
	return n, nil
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Serve serves gRPC on lis until Close. It returns nil after Close.
func (n *Node) Serve(lis net.Listener) error {
	if n.closed.Load() {
		lis.Close()
		return nil
	}
	n.serving.Add(1)
	defer n.serving.Done()
	err := n.server.Serve(lis)
	if n.closed.Load() {
		return nil
	}
	return errors.Wrap(err, "serve")
}

// Close stops serving, abandons operations in progress and closes every
// peer connection. It waits for the node's goroutines to finish.
func (n *Node) Close() error {
	if !n.closed.CompareAndSwap(false, true) {
		return nil
	}
	n.health.Shutdown()
	n.stopNow()
	n.server.Stop()
	n.serving.Wait()
	n.inflight.Wait()
	n.closeConns()
	if n.store != nil {
		n.store.Close() // releases the data dir's lock
	}
	return nil
}

func (n *Node) closeConns() {
	for _, pc := range n.peers {
		for _, cc := range pc.conns {
			cc.Close()
		}
	}
}

// Values returns a copy of the node's current values.
func (n *Node) Values() map[string]uint64 {
	n.rmu.Lock()
	defer n.rmu.Unlock()
	return n.replica.Snapshot()
}

// NextRange implements pb.SequencerServer.
func (n *Node) NextRange(ctx context.Context, req *pb.NextRangeRequest) (*pb.NextRangeResponse, error) {
	r, err := n.Allocate(ctx, req.GetName(), req.GetN())
	if err != nil {
		return nil, err
	}
	return &pb.NextRangeResponse{From: uint64(r.From), To: uint64(r.To), Node: n.cfg.Name}, nil
}

// Allocate runs the NextRange protocol with this node as coordinator. Its
// errors are gRPC statuses: InvalidArgument, Unavailable (no quorum before
// the deadline), DeadlineExceeded or Canceled.
func (n *Node) Allocate(ctx context.Context, name string, count uint64) (seq.Range, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(n.cfg.DefaultTimeout)
	}
	// Give up a little before the caller does, so that the caller hears
	// why (Unavailable) rather than only that its deadline passed.
	margin := min(time.Until(deadline)/10, 20*time.Millisecond)
	ctx, cancel := context.WithDeadline(ctx, deadline.Add(-margin))
	defer cancel()
	stop := context.AfterFunc(n.stop, cancel)
	defer stop()

	n.cmu.Lock()
	id, out, err := n.coord.Start(name, count)
	if err != nil {
		n.cmu.Unlock()
		return seq.Range{}, status.Error(codes.InvalidArgument, err.Error())
	}
	w := &waiter{ctx: ctx, done: make(chan Done, 1)}
	n.waiters[id] = w
	out = n.collect(out)
	n.cmu.Unlock()
	n.dispatch(out)

	select {
	case d := <-w.done:
		if d.Err != nil {
			return seq.Range{}, status.Error(codes.InvalidArgument, d.Err.Error())
		}
		return d.Range, nil
	case <-ctx.Done():
		n.cmu.Lock()
		n.coord.Cancel(id)
		delete(n.waiters, id)
		unreachable := w.unreachable
		n.cmu.Unlock()
		select { // it may have finished meanwhile
		case d := <-w.done:
			if d.Err == nil {
				return d.Range, nil
			}
		default:
		}
		switch {
		case n.stop.Err() != nil:
			return seq.Range{}, status.Error(codes.Unavailable, "node is shutting down")
		case unreachable:
			return seq.Range{}, status.Errorf(codes.Unavailable, "no quorum (%s) reachable before the deadline", n.cfg.Quorum())
		}
		return seq.Range{}, status.FromContextError(ctx.Err()).Err()
	}
}

// collect hands finished ops to their waiters and notes backoffs; it is
// called with cmu held and returns what is left to dispatch.
func (n *Node) collect(out Output) Output {
	for _, d := range out.Done {
		if w := n.waiters[d.Op]; w != nil {
			delete(n.waiters, d.Op)
			w.done <- d
		}
	}
	for _, b := range out.Backoff {
		if w := n.waiters[b.Op]; w != nil {
			w.unreachable = b.Unreachable
		}
	}
	out.Done = nil
	return out
}

// step applies f to the coordinator and carries out its output.
func (n *Node) step(f func(c *Coordinator) Output) {
	n.cmu.Lock()
	out := n.collect(f(n.coord))
	n.cmu.Unlock()
	n.dispatch(out)
}

// dispatch sends messages and schedules retries. Messages to self are
// answered in place; messages to peers go out on their own goroutine.
func (n *Node) dispatch(out Output) {
	for _, b := range out.Backoff {
		n.scheduleRetry(b)
	}
	for _, h := range out.Hedge {
		time.AfterFunc(n.cfg.HedgeAfter, func() {
			if !n.closed.Load() {
				n.step(func(c *Coordinator) Output { return c.Hedge(h.Op, h.Round) })
			}
		})
	}
	for _, m := range out.Msgs {
		n.cmu.Lock()
		w := n.waiters[m.Op]
		n.cmu.Unlock()
		if w == nil || w.ctx.Err() != nil {
			continue
		}
		if m.To == n.cfg.Self && (m.Kind == MsgGet || n.store == nil) {
			n.deliverLocal(w.ctx, m)
			continue
		}
		n.inflight.Add(1)
		go func() {
			defer n.inflight.Done()
			if m.To == n.cfg.Self {
				n.deliverLocal(w.ctx, m)
				return
			}
			n.deliverRemote(w.ctx, m)
		}()
	}
}

func (n *Node) deliverLocal(ctx context.Context, m Msg) {
	if m.Kind == MsgGet {
		v := n.get(m.Name)
		n.step(func(c *Coordinator) Output { return c.GetReply(m.Op, m.Round, m.To, v) })
		return
	}
	ok, cur, err := n.set(ctx, m.Name, m.Base, m.Value)
	if err != nil {
		n.step(func(c *Coordinator) Output { return c.PeerFailed(m.Op, m.Round, m.To) })
		return
	}
	n.step(func(c *Coordinator) Output { return c.SetReply(m.Op, m.Round, m.To, ok, cur) })
}

func (n *Node) deliverRemote(ctx context.Context, m Msg) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.PeerTimeout)
	defer cancel()
	client := n.peers[m.To].pick()
	switch m.Kind {
	case MsgGet:
		resp, err := client.Get(ctx, &pb.GetRequest{Name: m.Name})
		if err != nil {
			n.log.Debug("get failed", "msg", m.String(), "err", err)
			n.step(func(c *Coordinator) Output { return c.PeerFailed(m.Op, m.Round, m.To) })
			return
		}
		n.step(func(c *Coordinator) Output { return c.GetReply(m.Op, m.Round, m.To, resp.GetValue()) })
	case MsgSet:
		resp, err := client.Set(ctx, &pb.SetRequest{Name: m.Name, Base: m.Base, Value: m.Value})
		if err != nil {
			n.log.Debug("set failed", "msg", m.String(), "err", err)
			n.step(func(c *Coordinator) Output { return c.PeerFailed(m.Op, m.Round, m.To) })
			return
		}
		n.step(func(c *Coordinator) Output {
			return c.SetReply(m.Op, m.Round, m.To, resp.GetAccepted(), resp.GetCurrent())
		})
	}
}

func (n *Node) scheduleRetry(b Backoff) {
	n.cmu.Lock()
	limit := time.Millisecond << min(b.Attempt-1, 16)
	limit = min(limit, n.cfg.MaxBackoff)
	d := limit/2 + time.Duration(n.rng.Int64N(int64(limit/2)+1))
	n.cmu.Unlock()
	time.AfterFunc(d, func() {
		if n.closed.Load() {
			return
		}
		n.step(func(c *Coordinator) Output { return c.Retry(b.Op) })
	})
}

func (n *Node) get(name string) uint64 {
	n.rmu.Lock()
	defer n.rmu.Unlock()
	return n.replica.Get(name)
}

// set applies the conditional write and, when it changed the value, waits
// until the change is durable.
func (n *Node) set(ctx context.Context, name string, base, value uint64) (bool, uint64, error) {
	n.rmu.Lock()
	ok, cur, changed := n.replica.Set(name, base, value)
	if changed {
		n.gen++
	}
	gen := n.gen
	n.rmu.Unlock()
	if !changed || n.store == nil {
		return ok, cur, nil
	}
	if err := n.waitDurable(ctx, gen); err != nil {
		return false, cur, err
	}
	return ok, cur, nil
}

// waitDurable returns once generation gen of the state is on disk. Callers
// that arrive while a save is running wait for the next one, which then
// covers all of them: one fsync pair serves many writes.
func (n *Node) waitDurable(ctx context.Context, gen uint64) error {
	n.pmu.Lock()
	defer n.pmu.Unlock()
	for n.durable < gen {
		if n.flushing {
			n.pcond.Wait()
			continue
		}
		n.flushing = true
		n.pmu.Unlock()
		n.rmu.Lock()
		snap, g := n.replica.Snapshot(), n.gen
		n.rmu.Unlock()
		err := n.store.Save(snap, !n.cfg.UnsafeAckBeforeSync)
		n.pmu.Lock()
		n.flushing = false
		n.pcond.Broadcast()
		if err != nil {
			n.log.Error("persist failed", "err", err)
			return status.Errorf(codes.Unavailable, "persist: %v", err)
		}
		n.durable = max(n.durable, g)
	}
	return nil
}

// Get implements pb.SequencerServer.
func (n *Node) Get(ctx context.Context, req *pb.GetRequest) (*pb.GetResponse, error) {
	if err := ValidateName(req.GetName()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &pb.GetResponse{Value: n.get(req.GetName())}, nil
}

// Set implements pb.SequencerServer.
func (n *Node) Set(ctx context.Context, req *pb.SetRequest) (*pb.SetResponse, error) {
	if err := ValidateName(req.GetName()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if req.GetBase() < uint64(seq.FirstID) || req.GetValue() <= req.GetBase() {
		return nil, status.Errorf(codes.InvalidArgument, "set needs 1 <= base < value, got base=%d value=%d", req.GetBase(), req.GetValue())
	}
	ok, cur, err := n.set(ctx, req.GetName(), req.GetBase(), req.GetValue())
	if err != nil {
		return nil, err
	}
	return &pb.SetResponse{Accepted: ok, Current: cur}, nil
}
