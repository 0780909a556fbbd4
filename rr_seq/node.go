package rr_seq

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/errors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/seqlab/seqlab/rr_seq/pb"
	"github.com/seqlab/seqlab/seq"
)

// Node is one member of a read-repair cluster: the gRPC shell around a
// Replica (its own values), a Coordinator (the NextRange protocol) and, after
// it lost its state, a Recovery. It serves NextRange to clients on one
// listener (Serve) and the peer API (Get, Set, State) to its peers on
// another (ServePeers).
type Node struct {
	pb.UnimplementedSequencerServer

	cfg        Config
	log        *slog.Logger
	server     *grpc.Server // the client API
	peerServer *grpc.Server // the peer API
	health     *health.Server
	peers      map[string]*peerConns
	logs       logLimiter

	// rmu guards the replica, the recovery and the persistence state.
	rmu        sync.Mutex
	replica    *Replica
	rec        *Recovery // set while the node recovers
	ready      bool      // holds its acknowledged state: acts as a replica
	gen        uint64    // bumped by every accepted change
	dirty      map[string]uint64
	store      *Storage
	persistErr error // the last save's failure, nil once a save works

	readyc      chan struct{} // closed once ready
	inflightN   atomic.Int64  // NextRange calls being served
	inflightMax atomic.Int64  // the most ever at once
	untrimmed   struct{ goroutinePerMsg, deadlineHeader bool }

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

	born     time.Time  // the node's clock: durations since born
	lifeMu   sync.Mutex // orders spawn against Close
	stop     context.Context
	stopNow  context.CancelFunc
	inflight sync.WaitGroup
	senders  sync.WaitGroup
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

// waiter is a request waiting for its Done.
type waiter struct {
	done chan Done
}

type peerConns struct {
	conns   []*grpc.ClientConn
	clients []pb.PeerClient
	next    atomic.Uint64
	// queue hands messages to the peer's long-lived senders; it is
	// unbuffered, so a message goes to an idle sender or, when all are
	// busy, to a goroutine of its own: never behind a slow call.
	queue chan Msg
}

// sendersPerPeer is how many long-lived goroutines send to each peer. A
// goroutine per message paid for its stack growing through gRPC's call
// path on every message (7% of a node's time in a profile).
const sendersPerPeer = 4

// untrim turns the trims of a profile off, each on its own, so that a
// benchmark can measure what each one buys (BenchmarkTrims). Nodes read it
// when they are made; nothing else sets it.
var untrim struct {
	goroutinePerMsg bool // no long-lived senders: a goroutine per peer message
	deadlineHeader  bool // a deadline on each peer call, not a timer that cancels it
}

func (p *peerConns) pick() pb.PeerClient {
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
		born:    time.Now(),
	}
	n.pcond = sync.NewCond(&n.pmu)
	n.untrimmed = untrim
	n.coord.SetLimits(Limits{RoundLife: cfg.RoundLife, MaxRange: cfg.MaxRange, ReadFirst: cfg.ReadFirst})
	n.coord.Plant(cfg.UnsafePlanted)
	values, ready, err := n.open()
	if err != nil {
		return nil, err
	}
	if cfg.UnsafePlanted.RejoinEmpty {
		ready = true // the planted bug: no recovery
	}
	n.replica = NewReplica(cfg.WriteRule, values)
	n.replica.LimitNames(cfg.MaxNames)
	n.dirty = map[string]uint64{}
	n.ready = ready
	n.readyc = make(chan struct{})
	if ready {
		close(n.readyc)
	}
	n.stop, n.stopNow = context.WithCancel(context.Background())

	opts := dialOptions()
	if cfg.Dialer != nil {
		opts = append(opts, grpc.WithContextDialer(cfg.Dialer))
	}
	if cfg.PeerClientTLS != nil {
		opts[0] = grpc.WithTransportCredentials(credentials.NewTLS(cfg.PeerClientTLS))
	}
	if cfg.PeerSecret != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(peerSecret(cfg.PeerSecret).Creds(cfg.PeerClientTLS != nil)))
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
			pc.clients = append(pc.clients, pb.NewPeerClient(cc))
		}
		n.peers[p] = pc
	}

	serverOpts := []grpc.ServerOption{
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
		// Fixed windows turn off gRPC's bandwidth-delay estimator, whose
		// pings cost a frame per small RPC; our messages are tiny.
		grpc.InitialWindowSize(windowSize),
		grpc.InitialConnWindowSize(windowSize),
		grpc.MaxConcurrentStreams(uint32(cfg.MaxInFlight)),
		grpc.ForceServerCodecV2(newLaxCodec()),
	}
	clientOpts := slices.Clone(serverOpts)
	if cfg.ClientTLS != nil {
		clientOpts = append(clientOpts, grpc.Creds(credentials.NewTLS(cfg.ClientTLS)))
	}
	n.server = grpc.NewServer(clientOpts...)
	pb.RegisterSequencerServer(n.server, n)
	n.health = health.NewServer()
	healthpb.RegisterHealthServer(n.server, n.health)
	reflection.Register(n.server)

	peerOpts := append(slices.Clone(serverOpts), peerSecret(cfg.PeerSecret).ServerOptions()...)
	if cfg.PeerServerTLS != nil {
		peerOpts = append(peerOpts, grpc.Creds(credentials.NewTLS(cfg.PeerServerTLS)))
	}
	n.peerServer = grpc.NewServer(peerOpts...)
	pb.RegisterPeerServer(n.peerServer, peerService{n: n})
	healthpb.RegisterHealthServer(n.peerServer, n.health)

	n.log.Info("node started", "peers", cfg.Peers, "cluster", cfg.Cluster, "quorum", cfg.Quorum().String(),
		"rule", cfg.WriteRule.String(), "data_dir", cfg.DataDir, "sequences", len(values), "recovering", !ready)
	n.setHealth()
	for _, pc := range n.peers {
		pc.queue = make(chan Msg)
		if n.untrimmed.goroutinePerMsg {
			continue // no sender ever takes from the queue
		}
		for range sendersPerPeer {
			n.senders.Add(1)
			go n.sender(pc.queue)
		}
	}
	if !ready {
		n.startRecovery()
	}
	return n, nil
}

// sender is a long-lived goroutine that sends messages to one peer.
func (n *Node) sender(q <-chan Msg) {
	defer n.senders.Done()
	for {
		select {
		case m := <-q:
			n.deliverRemote(n.stop, m)
		case <-n.stop.Done():
			return
		}
	}
}

// open loads the node's state: its values, and whether it can show that
// they are its acknowledged state (ready) or must recover them.
func (n *Node) open() (map[string]uint64, bool, error) {
	cfg := n.cfg
	if cfg.DataDir == "" {
		return map[string]uint64{}, false, nil // in memory: nothing survives a restart
	}
	st, err := OpenStorage(cfg.FS, cfg.DataDir)
	if err != nil {
		return nil, false, err
	}
	fail := func(err error) (map[string]uint64, bool, error) {
		st.Close()
		return nil, false, err
	}
	id := Identity{Cluster: cfg.Cluster, Node: cfg.Name}
	loaded, err := st.Load()
	switch {
	case err != nil && cfg.Recover && (errors.Is(err, ErrCorruptState) || errors.Is(err, ErrMissingState)):
		n.log.Warn("state is missing or corrupt; recovering from the peers (--recover)", "err", err.Error())
		n.store = st
		return map[string]uint64{}, false, nil
	case err != nil:
		return fail(err)
	case loaded.Identity != nil:
		if err := loaded.Identity.Check(id); err != nil {
			return fail(err)
		}
		n.store = st
		return loaded.Values, true, nil
	case loaded.Legacy:
		// A data dir of the first format holds acknowledged state: it
		// becomes this node's, in the new format.
		if err := st.Init(id, loaded.Values); err != nil {
			return fail(errors.Wrap(err, "migrate the data dir to the log format"))
		}
		n.log.Info("migrated the data dir from state.json to the log format", "sequences", len(loaded.Values))
		n.store = st
		return loaded.Values, true, nil
	}
	// No marker: a new node, or one whose data dir was wiped.
	n.store = st
	return map[string]uint64{}, false, nil
}

// setHealth publishes whether the node serves: it does once it holds its
// acknowledged state and can persist.
func (n *Node) setHealth() {
	n.rmu.Lock()
	ok := n.ready && n.persistErr == nil
	n.rmu.Unlock()
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	if n.closed.Load() {
		return
	}
	n.health.SetServingStatus("", st)
	n.health.SetServingStatus(pb.Sequencer_ServiceDesc.ServiceName, st)
}

// Ready reports whether the node acts as a replica (it is not
// recovering).
func (n *Node) Ready() bool {
	n.rmu.Lock()
	defer n.rmu.Unlock()
	return n.ready
}

// WaitReady waits until the node acts as a replica, or ctx is done.
func (n *Node) WaitReady(ctx context.Context) error {
	select {
	case <-n.readyc:
		return nil
	case <-ctx.Done():
		return errors.Wrapf(ctx.Err(), "%s is still recovering", n.cfg.Name)
	}
}

// InFlight returns the NextRange calls in progress now and the most there
// ever were at once.
func (n *Node) InFlight() (now, most int64) { return n.inflightN.Load(), n.inflightMax.Load() }

// spawn runs fn on a goroutine that Close waits for, unless the node is
// closed.
func (n *Node) spawn(fn func()) {
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	if n.closed.Load() {
		return
	}
	n.inflight.Add(1)
	go func() {
		defer n.inflight.Done()
		fn()
	}()
}

// startRecovery begins the recovery of a node that lost its state.
func (n *Node) startRecovery() {
	wait := RecoveryWait(n.cfg.RoundLife)
	if n.cfg.FirstStart {
		wait = 0
	}
	rec, out, err := NewRecovery(RecoveryConfig{
		Self: n.cfg.Self, Peers: n.cfg.Peers, W: n.cfg.W, Cluster: n.cfg.Cluster,
		Bootstrap: n.cfg.Bootstrap, Wait: wait,
	}, n.now())
	if err != nil {
		n.log.Error("cannot recover", "err", err.Error())
		return
	}
	n.rmu.Lock()
	n.rec = rec
	n.rmu.Unlock()
	n.log.Info("recovering", "status", rec.Status())
	n.recovery(out)
}

// recovery carries out a step of the recovery.
func (n *Node) recovery(out RecoveryOutput) {
	for _, note := range out.Notes {
		n.log.Warn("recovery", "note", note)
	}
	if out.After > 0 {
		time.AfterFunc(out.After, func() {
			n.spawn(func() {
				n.rmu.Lock()
				var o RecoveryOutput
				if n.rec != nil {
					o = n.rec.Poll(n.now())
				}
				n.rmu.Unlock()
				n.recovery(o)
			})
		})
	}
	for _, m := range out.Msgs {
		n.spawn(func() { n.askState(m) })
	}
	if d := out.Done; d != nil {
		n.spawn(func() { n.finishRecovery(d) })
	}
}

// askState asks a peer for its state and feeds the answer to the recovery.
func (n *Node) askState(m Msg) {
	ctx, cancel := context.WithTimeout(n.stop, 4*n.cfg.PeerTimeout)
	defer cancel()
	st, err := n.fetchState(ctx, m.To)
	n.rmu.Lock()
	var out RecoveryOutput
	if n.rec != nil {
		if err != nil {
			n.logs.log(n.log, "recovery: state of "+m.To, "err", err.Error())
			out = n.rec.PeerFailed(n.now(), m.Round, m.To)
		} else {
			out = n.rec.StateReply(n.now(), m.Round, m.To, st)
		}
	}
	n.rmu.Unlock()
	n.recovery(out)
}

func (n *Node) fetchState(ctx context.Context, peer string) (PeerState, error) {
	stream, err := n.peers[peer].pick().State(ctx, &pb.StateRequest{Cluster: n.cfg.Cluster})
	if err != nil {
		return PeerState{}, err
	}
	var st PeerState
	for {
		chunk, err := stream.Recv()
		if err != nil {
			return PeerState{}, errors.Wrap(err, "state stream ended before its last chunk")
		}
		st.Initialised, st.Cluster = chunk.GetInitialised(), chunk.GetCluster()
		for _, e := range chunk.GetEntries() {
			if ValidateName(e.GetName()) != nil || e.GetValue() < uint64(seq.FirstID) {
				return PeerState{}, errors.Errorf("peer %s sent a bad entry %q=%d", peer, e.GetName(), e.GetValue())
			}
			if st.Values == nil {
				st.Values = map[string]uint64{}
			}
			st.Values[e.GetName()] = max(st.Values[e.GetName()], e.GetValue())
		}
		if chunk.GetLast() {
			return st, nil
		}
	}
}

// finishRecovery makes the recovered state durable, with the marker, and
// starts acting as a replica. It retries a failing save until it works or
// the node closes.
func (n *Node) finishRecovery(d *Recovered) {
	n.rmu.Lock()
	n.replica.Merge(d.Values)
	snap := n.replica.Snapshot()
	n.rmu.Unlock()
	for n.store != nil {
		err := n.store.Init(Identity{Cluster: n.cfg.Cluster, Node: n.cfg.Name}, snap)
		if err == nil {
			break
		}
		n.rmu.Lock()
		n.persistErr = err
		n.rmu.Unlock()
		n.logs.log(n.log, "recovery: save the recovered state", "err", err.Error())
		select {
		case <-n.stop.Done():
			return
		case <-time.After(time.Second):
		}
	}
	n.rmu.Lock()
	n.ready, n.rec, n.persistErr = true, nil, nil
	close(n.readyc)
	n.rmu.Unlock()
	n.setHealth()
	how := "recovered"
	if d.Bootstrapped {
		how = "bootstrapped a new cluster"
	}
	n.log.Info("ready: "+how, "from", d.From, "sequences", len(snap))
}

// logLimiter keeps a failure that repeats to one log line a second.
type logLimiter struct {
	mu         sync.Mutex
	last       map[string]time.Time
	suppressed map[string]int
}

func (l *logLimiter) log(log *slog.Logger, what string, args ...any) {
	l.mu.Lock()
	if l.last == nil {
		l.last, l.suppressed = map[string]time.Time{}, map[string]int{}
	}
	now := time.Now()
	if now.Sub(l.last[what]) < time.Second {
		l.suppressed[what]++
		l.mu.Unlock()
		return
	}
	l.last[what] = now
	n := l.suppressed[what]
	l.suppressed[what] = 0
	l.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	log.Error(what, args...)
}

// now is the node's monotonic clock, as the core takes it.
func (n *Node) now() time.Duration { return time.Since(n.born) }

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Serve serves the client API (NextRange, health, reflection) on lis until
// Close. It returns nil after Close.
func (n *Node) Serve(lis net.Listener) error { return n.serve(n.server, lis, "clients") }

// ServePeers serves the peer API on lis until Close.
func (n *Node) ServePeers(lis net.Listener) error { return n.serve(n.peerServer, lis, "peers") }

func (n *Node) serve(srv *grpc.Server, lis net.Listener, what string) error {
	n.lifeMu.Lock()
	if n.closed.Load() {
		n.lifeMu.Unlock()
		lis.Close()
		return nil
	}
	n.serving.Add(1)
	n.lifeMu.Unlock()
	defer n.serving.Done()
	n.log.Debug("serving "+what, "addr", lis.Addr().String())
	err := srv.Serve(lis)
	if n.closed.Load() {
		return nil
	}
	return errors.Wrap(err, "serve "+what)
}

// Close stops serving, abandons operations in progress and closes every
// peer connection. It waits for the node's goroutines to finish.
func (n *Node) Close() error {
	n.lifeMu.Lock()
	if !n.closed.CompareAndSwap(false, true) {
		n.lifeMu.Unlock()
		return nil
	}
	n.lifeMu.Unlock()
	n.health.Shutdown()
	n.stopNow()
	n.server.Stop()
	n.peerServer.Stop()
	n.serving.Wait()
	n.inflight.Wait()
	n.senders.Wait()
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
	cur := n.inflightN.Add(1)
	defer n.inflightN.Add(-1)
	if cur > int64(n.cfg.MaxInFlight) {
		return nil, status.Errorf(codes.ResourceExhausted, "%d requests in flight on %s, the limit is %d: retry later or on another node",
			cur-1, n.cfg.Name, n.cfg.MaxInFlight)
	}
	for m := n.inflightMax.Load(); cur > m && !n.inflightMax.CompareAndSwap(m, cur); m = n.inflightMax.Load() {
	}
	r, err := n.Allocate(ctx, Request{Name: req.GetName(), N: req.GetN(), After: req.GetAfter()})
	if err != nil {
		return nil, err
	}
	return &pb.NextRangeResponse{From: uint64(r.From), To: uint64(r.To), Node: n.cfg.Name}, nil
}

// Allocate runs the NextRange protocol with this node as coordinator. Its
// errors are gRPC statuses: InvalidArgument, OutOfRange (past the last
// ID), ResourceExhausted (too many names), Unavailable (recovering, or no
// quorum before the deadline), DeadlineExceeded or Canceled.
func (n *Node) Allocate(ctx context.Context, req Request) (seq.Range, error) {
	name := req.Name
	n.rmu.Lock()
	ready, full := n.ready, n.replica.Full(name)
	var why string
	if n.rec != nil {
		why = n.rec.Status()
	}
	n.rmu.Unlock()
	if !ready {
		return seq.Range{}, status.Errorf(codes.Unavailable, "node %s is recovering its state: %s", n.cfg.Name, why)
	}
	if full && ValidateName(name) == nil {
		return seq.Range{}, status.Errorf(codes.ResourceExhausted, "node %s holds %d sequence names, its limit", n.cfg.Name, n.cfg.MaxNames)
	}
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
	id, out, err := n.coord.Start(n.now(), req)
	if err != nil {
		n.cmu.Unlock()
		return seq.Range{}, status.Error(codes.InvalidArgument, err.Error())
	}
	w := &waiter{done: make(chan Done, 1)}
	n.waiters[id] = w
	out = n.collect(out)
	n.cmu.Unlock()
	n.dispatch(out)

	select {
	case d := <-w.done:
		if d.Err != nil {
			return seq.Range{}, doneStatus(d.Err)
		}
		return d.Range, nil
	case <-ctx.Done():
		n.cmu.Lock()
		unreachable, why := n.coord.Stuck(id)
		failures := describeFailures(why)
		left := n.coord.Cancel(n.now(), id)
		delete(n.waiters, id)
		left = n.collect(left)
		n.cmu.Unlock()
		n.dispatch(left)
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
			return seq.Range{}, status.Errorf(codes.Unavailable, "no quorum (%s) reachable before the deadline: %s", n.cfg.Quorum(), failures)
		}
		return seq.Range{}, status.FromContextError(ctx.Err()).Err()
	}
}

func doneStatus(err error) error {
	if errors.Is(err, seq.ErrOverflow) {
		return status.Error(codes.OutOfRange, err.Error())
	}
	return status.Error(codes.InvalidArgument, err.Error())
}

// describeFailures lists why peers failed, in peer order.
func describeFailures(f map[string]string) string {
	if len(f) == 0 {
		return "peers refused the writes (lost to concurrent allocations)"
	}
	peers := make([]string, 0, len(f))
	for p := range f {
		peers = append(peers, p)
	}
	slices.Sort(peers)
	parts := make([]string, len(peers))
	for i, p := range peers {
		parts[i] = p + ": " + f[p]
	}
	return strings.Join(parts, "; ")
}

// failed tells the coordinator that a peer's call failed, and why.
func (n *Node) failed(m Msg, err error) {
	why := status.Convert(err).Message()
	n.step(func(c *Coordinator) Output { return c.PeerFailed(n.now(), m.Op, m.Round, m.To, why) })
}

// collect hands finished requests to their waiters; it is called with
// cmu held and returns what is left to dispatch.
func (n *Node) collect(out Output) Output {
	for _, d := range out.Done {
		if w := n.waiters[d.Op]; w != nil {
			delete(n.waiters, d.Op)
			w.done <- d
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
	// A message serves a batch of requests, not one caller: it lives
	// until the node stops or the peer timeout, and the coordinator stops
	// sending for a batch once every member has left.
	for _, m := range out.Msgs {
		if m.To == n.cfg.Self && (m.Kind == MsgGet || n.store == nil) {
			n.deliverLocal(n.stop, m)
			continue
		}
		if pc := n.peers[m.To]; pc != nil {
			select {
			case pc.queue <- m:
				continue
			default:
			}
		}
		// spawn, not a bare inflight.Add: a retry's timer can dispatch
		// while Close waits for inflight.
		n.spawn(func() {
			if m.To == n.cfg.Self {
				n.deliverLocal(n.stop, m)
				return
			}
			n.deliverRemote(n.stop, m)
		})
	}
}

func (n *Node) deliverLocal(ctx context.Context, m Msg) {
	if m.Kind == MsgGet {
		v := n.get(m.Name)
		n.step(func(c *Coordinator) Output { return c.GetReply(n.now(), m.Op, m.Round, m.To, v) })
		return
	}
	ok, cur, err := n.set(ctx, m.Name, m.Base, m.Value)
	if err != nil {
		n.failed(m, errors.Wrap(err, "self"))
		return
	}
	n.step(func(c *Coordinator) Output { return c.SetReply(n.now(), m.Op, m.Round, m.To, ok, cur) })
}

func (n *Node) deliverRemote(ctx context.Context, m Msg) {
	// A timer cancels the call rather than a deadline on it: a deadline
	// goes out as a grpc-timeout header that differs on every call, which
	// hpack cannot index. The peer hears of the cancel all the same.
	var cancel context.CancelFunc
	if n.untrimmed.deadlineHeader {
		ctx, cancel = context.WithTimeout(ctx, n.cfg.PeerTimeout)
		defer cancel()
	} else {
		ctx, cancel = context.WithCancel(ctx)
		t := time.AfterFunc(n.cfg.PeerTimeout, cancel)
		defer func() {
			t.Stop()
			cancel()
		}()
	}
	client := n.peers[m.To].pick()
	switch m.Kind {
	case MsgGet:
		resp, err := client.Get(ctx, &pb.GetRequest{Name: m.Name})
		if err != nil {
			n.log.Debug("get failed", "msg", m.String(), "err", err)
			n.failed(m, n.timedOut(ctx, err))
			return
		}
		n.step(func(c *Coordinator) Output { return c.GetReply(n.now(), m.Op, m.Round, m.To, resp.GetValue()) })
	case MsgSet:
		resp, err := client.Set(ctx, &pb.SetRequest{Name: m.Name, Base: m.Base, Value: m.Value})
		if err != nil {
			n.log.Debug("set failed", "msg", m.String(), "err", err)
			n.failed(m, n.timedOut(ctx, err))
			return
		}
		n.step(func(c *Coordinator) Output {
			return c.SetReply(n.now(), m.Op, m.Round, m.To, resp.GetAccepted(), resp.GetCurrent())
		})
	}
}

// timedOut says that a peer call cut off by its timer took too long,
// rather than that it was canceled.
func (n *Node) timedOut(ctx context.Context, err error) error {
	if ctx.Err() != nil && n.stop.Err() == nil {
		return status.Errorf(codes.DeadlineExceeded, "no answer within the peer timeout of %v", n.cfg.PeerTimeout)
	}
	return err
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
		n.step(func(c *Coordinator) Output { return c.Retry(n.now(), b.Op) })
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
		n.dirty[name] = cur
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
// covers all of them: one append and one fsync serve many writes.
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
		entries := make([]Entry, 0, len(n.dirty))
		for k, v := range n.dirty {
			entries = append(entries, Entry{Name: k, Value: v})
		}
		slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
		n.dirty = map[string]uint64{}
		g := n.gen
		n.rmu.Unlock()
		err := n.store.Append(entries, !n.cfg.UnsafeAckBeforeSync)
		n.rmu.Lock()
		wasBroken := n.persistErr != nil
		n.persistErr = err
		if err != nil {
			for _, e := range entries { // a later save carries them
				n.dirty[e.Name] = max(n.dirty[e.Name], e.Value)
			}
		}
		n.rmu.Unlock()
		if (err != nil) != wasBroken {
			n.setHealth()
		}
		n.pmu.Lock()
		n.flushing = false
		n.pcond.Broadcast()
		if err != nil {
			n.logs.log(n.log, "persist failed", "err", err.Error())
			return status.Errorf(codes.Unavailable, "%s cannot persist: %v", n.cfg.Name, err)
		}
		n.durable = max(n.durable, g)
	}
	return nil
}

// peerService serves the peer API. It is its own type so that the client
// API's server cannot serve it by mistake.
type peerService struct {
	pb.UnimplementedPeerServer
	n *Node
}

// refuseUnlessReady refuses peer reads and writes while the node recovers.
func (n *Node) refuseUnlessReady() error {
	n.rmu.Lock()
	defer n.rmu.Unlock()
	if !n.ready {
		return status.Errorf(codes.Unavailable, "%s is recovering its state", n.cfg.Name)
	}
	return nil
}

// Get implements pb.PeerServer.
func (p peerService) Get(ctx context.Context, req *pb.GetRequest) (*pb.GetResponse, error) {
	if err := ValidateName(req.GetName()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := p.n.refuseUnlessReady(); err != nil {
		return nil, err
	}
	return &pb.GetResponse{Value: p.n.get(req.GetName())}, nil
}

// Set implements pb.PeerServer.
func (p peerService) Set(ctx context.Context, req *pb.SetRequest) (*pb.SetResponse, error) {
	n := p.n
	if err := ValidateName(req.GetName()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if req.GetBase() < uint64(seq.FirstID) || req.GetValue() <= req.GetBase() {
		return nil, status.Errorf(codes.InvalidArgument, "set needs 1 <= base < value, got base=%d value=%d", req.GetBase(), req.GetValue())
	}
	if err := n.refuseUnlessReady(); err != nil {
		return nil, err
	}
	n.rmu.Lock()
	full := n.replica.Full(req.GetName())
	n.rmu.Unlock()
	if full {
		return nil, status.Errorf(codes.ResourceExhausted, "%s holds %d sequence names, its limit", n.cfg.Name, n.cfg.MaxNames)
	}
	ok, cur, err := n.set(ctx, req.GetName(), req.GetBase(), req.GetValue())
	if err != nil {
		return nil, err
	}
	return &pb.SetResponse{Accepted: ok, Current: cur}, nil
}

// stateChunk is the number of entries in one chunk of a State stream.
const stateChunk = 1000

// State implements pb.PeerServer.
func (p peerService) State(req *pb.StateRequest, stream pb.Peer_StateServer) error {
	n := p.n
	if c := req.GetCluster(); c != "" && c != n.cfg.Cluster {
		return status.Errorf(codes.FailedPrecondition, "%s is of cluster %q, not %q", n.cfg.Name, n.cfg.Cluster, c)
	}
	n.rmu.Lock()
	ready := n.ready
	var snap map[string]uint64
	if ready {
		snap = n.replica.Snapshot()
	}
	n.rmu.Unlock()
	cluster := ""
	if ready {
		cluster = n.cfg.Cluster
	}
	names := make([]string, 0, len(snap))
	for k := range snap {
		names = append(names, k)
	}
	slices.Sort(names)
	for i := 0; ; i += stateChunk {
		chunk := &pb.StateChunk{Initialised: ready, Cluster: cluster}
		for _, k := range names[i:min(i+stateChunk, len(names))] {
			chunk.Entries = append(chunk.Entries, &pb.Entry{Name: k, Value: snap[k]})
		}
		chunk.Last = i+stateChunk >= len(names)
		if err := stream.Send(chunk); err != nil {
			return err
		}
		if chunk.Last {
			return nil
		}
	}
}
