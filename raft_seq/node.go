package raft_seq

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/errors"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/seqlab/seqlab/raft_seq/pb"
	rrpb "github.com/seqlab/seqlab/rr_seq/pb"
	"github.com/seqlab/seqlab/seq"
)

// NodeConfig configures a Node. Zero optional fields get defaults.
type NodeConfig struct {
	// Self is this node's peer address as it appears in Peers.
	Self string
	// Name is the node's name in replies and logs; default Self.
	Name string
	// Peers lists the peer address of every node, Self included, in the
	// same order on every node: a node's raft ID is its place in the list,
	// from 1.
	Peers []string
	// Cluster is the cluster ID, recorded in the data dir and checked on
	// every peer call; default "raftseq-" and a hash of Peers in order.
	Cluster string
	// DataDir holds the node's write-ahead log. Empty keeps the log in
	// memory: a restart is then a node that lost its state, which cannot
	// rejoin (see Bootstrap); use it for tests only.
	DataDir string
	// FS is the filesystem under DataDir; default the real one.
	FS FS
	// Bootstrap lets a node with no state start a new cluster, once every
	// peer answers that it is fresh too (see the package doc). A node with
	// state ignores it. Without it, a node with no state refuses to start.
	Bootstrap bool
	// Dialer, when set, dials peers (the lab's simulated network).
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
	// PeerSecret is the shared cluster secret every peer call must carry.
	// Without TLS it travels in the clear.
	PeerSecret string
	// PeerServerTLS and PeerClientTLS, set together, make the peer API
	// mutual TLS (see rr_seq.LoadPeerTLS). The peer API needs TLS, a
	// secret, or both.
	PeerServerTLS, PeerClientTLS *tls.Config
	// ClientTLS, when set, serves the client API over TLS.
	ClientTLS *tls.Config
	// Seed seeds the core's elections (the node mixes in nothing else, so
	// give each cluster its own).
	Seed uint64
	// Core holds the core's settings; ID, Peers, Seed, Incarnation and
	// Logger are the node's to fill in.
	Core Config
	// DefaultTimeout bounds a NextRange whose caller set no deadline;
	// default 10s.
	DefaultTimeout time.Duration
	// MaxInFlight bounds the NextRange calls served at once; default 1024.
	MaxInFlight int
	// UnsafeNoSync acknowledges what reached the page cache, never
	// fsynced: a planted bug for the lab.
	UnsafeNoSync bool
	// Logger receives structured logs; default discards them.
	Logger *slog.Logger
}

// DefaultCluster derives a cluster ID from the peer addresses, in order.
func DefaultCluster(peers []string) string {
	sum := sha256.Sum256([]byte(strings.Join(peers, "\n")))
	return "raftseq-" + hex.EncodeToString(sum[:6])
}

// WithDefaults returns c with unset optional fields filled in.
func (c NodeConfig) WithDefaults() NodeConfig {
	if c.Name == "" {
		c.Name = c.Self
	}
	if c.Cluster == "" {
		c.Cluster = DefaultCluster(c.Peers)
	}
	if c.FS == nil {
		c.FS = OSFS{}
	}
	if c.DefaultTimeout <= 0 {
		c.DefaultTimeout = 10 * time.Second
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 1024
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Core = c.Core.WithDefaults()
	return c
}

// Validate returns an error unless c (after WithDefaults) is usable.
func (c NodeConfig) Validate() error {
	seen := map[string]bool{}
	for _, p := range c.Peers {
		if p == "" || strings.TrimSpace(p) != p || strings.ContainsAny(p, " \t,") {
			return errors.Wrapf(seq.ErrInvalidArgument, "config: bad peer address %q", p)
		}
		if seen[p] {
			return errors.Wrapf(seq.ErrInvalidArgument, "config: peer %q is listed twice", p)
		}
		seen[p] = true
	}
	switch {
	case c.Self == "":
		return errors.Wrap(seq.ErrInvalidArgument, "config: Self is empty")
	case !seen[c.Self]:
		return errors.Wrapf(seq.ErrInvalidArgument, "config: Self %q is not in Peers %v", c.Self, c.Peers)
	case (c.PeerServerTLS == nil) != (c.PeerClientTLS == nil):
		return errors.Wrap(seq.ErrInvalidArgument, "config: PeerServerTLS and PeerClientTLS go together")
	case c.PeerServerTLS == nil && c.PeerSecret == "":
		return errors.Wrap(seq.ErrInvalidArgument, "config: the peer API needs mutual TLS or a shared secret (PeerSecret)")
	case strings.ContainsAny(c.Cluster, " \t\n") || len(c.Cluster) > 128:
		return errors.Wrapf(seq.ErrInvalidArgument, "config: cluster ID %q has spaces or is over 128 bytes", c.Cluster)
	}
	cc := c.Core
	cc.ID, cc.Peers = c.id(), c.ids()
	return cc.Validate()
}

func (c NodeConfig) id() uint64 { return uint64(slices.Index(c.Peers, c.Self) + 1) }

func (c NodeConfig) ids() []uint64 {
	ids := make([]uint64, len(c.Peers))
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	return ids
}

const (
	peerMaxMsg   = 64 << 20
	sendBatchMax = 256  // messages in one Batch
	peerQueueMax = 8192 // messages waiting for one peer; more are dropped
)

// Node is one raft_seq node: the gRPC shell around a Core. It serves the
// client API (rrseq.v1.Sequencer/NextRange, health, reflection) on one
// listener (Serve) and its raft transport (raftseq.v1.Raft) to its peers
// on another (ServePeers).
type Node struct {
	rrpb.UnimplementedSequencerServer

	cfg        NodeConfig
	id         uint64
	log        *slog.Logger
	server     *grpc.Server
	peerServer *grpc.Server
	health     *health.Server
	peers      map[uint64]*peer
	wal        *WAL
	born       time.Time
	inflight   atomic.Int64
	// incarnation names this process to the probes of its peers (see
	// the package doc): random, so a restart without state is a new node.
	incarnation uint64

	mu       sync.Mutex
	core     *Core // nil until the node has its state
	waiters  map[uint64]chan Reply
	nextReq  uint64
	why      string            // why the node does not serve, while it does not
	lived    bool              // no state, but a peer showed the cluster lived: never fresh
	counted  map[uint64]uint64 // raft ID to the incarnation it answered fresh with, when this node bootstrapped
	serving  bool              // health as last published
	writes   []Write
	writec   chan struct{}
	persist  error
	fsyncs   atomic.Int64
	replies  atomic.Int64
	lastWake time.Duration

	stop     context.Context
	stopNow  context.CancelFunc
	wg       sync.WaitGroup
	closed   atomic.Bool
	lifeMu   sync.Mutex
	serveWG  sync.WaitGroup
	closeErr error
}

// peer is the connection to one other node and the queue of what to send.
type peer struct {
	id     uint64
	addr   string
	cc     *grpc.ClientConn
	client pb.RaftClient
	mu     sync.Mutex
	queue  [][]byte
	snaps  int // MsgSnap messages in queue
	notify chan struct{}
}

// NewNode validates cfg, opens the node's data dir, and starts its raft
// (or, for a node with no state and Bootstrap, its probe of the peers).
// Call Serve and ServePeers to serve.
func NewNode(cfg NodeConfig) (*Node, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, id: cfg.id(), log: cfg.Logger.With("node", cfg.Name), born: time.Now(),
		peers: map[uint64]*peer{}, waiters: map[uint64]chan Reply{}, writec: make(chan struct{}, 1),
		why: "starting", incarnation: randUint64(),
	}
	n.stop, n.stopNow = context.WithCancel(context.Background())
	var st State
	if cfg.DataDir != "" {
		w, loaded, err := OpenWAL(cfg.FS, cfg.DataDir, Identity{Cluster: cfg.Cluster, Node: n.id})
		if err != nil {
			return nil, err
		}
		n.wal, st = w, loaded
	}
	if st.Snapshot == nil && !cfg.Bootstrap {
		n.closeWAL()
		where := "it keeps its state in memory"
		if cfg.DataDir != "" {
			where = "its data dir " + cfg.DataDir + " holds no raft state"
		}
		return nil, errors.Errorf("node %s has no state (%s): start it with Bootstrap (--bootstrap) to create a new cluster; "+
			"a node that lost the state of a cluster that lived cannot rejoin it safely", cfg.Name, where)
	}

	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(peerMaxMsg)),
		// A peer that restarts must hear from its leader within an
		// election or two, not after gRPC's default reconnect backoff
		// (up to 120s, 4s after a 3s outage): until then it knows no
		// leader and refuses its clients.
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{
			BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second}}),
	}
	if cfg.Dialer != nil {
		opts = append(opts, grpc.WithContextDialer(cfg.Dialer))
	}
	if cfg.PeerClientTLS != nil {
		opts[0] = grpc.WithTransportCredentials(credentials.NewTLS(cfg.PeerClientTLS))
	}
	if cfg.PeerSecret != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(peerSecret(cfg.PeerSecret).Creds(cfg.PeerClientTLS != nil)))
	}
	for i, addr := range cfg.Peers {
		id := uint64(i + 1)
		if id == n.id {
			continue
		}
		cc, err := grpc.NewClient("passthrough:///"+addr, opts...)
		if err != nil {
			n.closeConns()
			n.closeWAL()
			return nil, errors.Wrapf(err, "connect to peer %s", addr)
		}
		n.peers[id] = &peer{id: id, addr: addr, cc: cc, client: pb.NewRaftClient(cc), notify: make(chan struct{}, 1)}
	}

	var clientOpts []grpc.ServerOption
	if cfg.ClientTLS != nil {
		clientOpts = append(clientOpts, grpc.Creds(credentials.NewTLS(cfg.ClientTLS)))
	}
	n.server = grpc.NewServer(append(clientOpts, grpc.MaxConcurrentStreams(uint32(cfg.MaxInFlight)))...)
	rrpb.RegisterSequencerServer(n.server, n)
	n.health = health.NewServer()
	healthpb.RegisterHealthServer(n.server, n.health)
	reflection.Register(n.server)
	peerOpts := append([]grpc.ServerOption{grpc.MaxRecvMsgSize(peerMaxMsg)}, peerSecret(cfg.PeerSecret).ServerOptions()...)
	if cfg.PeerServerTLS != nil {
		peerOpts = append(peerOpts, grpc.Creds(credentials.NewTLS(cfg.PeerServerTLS)))
	}
	n.peerServer = grpc.NewServer(peerOpts...)
	pb.RegisterRaftServer(n.peerServer, raftService{n: n})
	n.publishHealth(false)

	n.log.Info("node started", "raft_id", n.id, "peers", cfg.Peers, "cluster", cfg.Cluster, "data_dir", cfg.DataDir,
		"has_state", st.Snapshot != nil)
	for _, p := range n.peers {
		n.go_(func() { n.sender(p) })
	}
	n.go_(n.persister)
	n.go_(n.ticker)
	if st.Snapshot != nil {
		if err := n.startCore(st); err != nil {
			n.Close()
			return nil, err
		}
	} else {
		n.go_(n.bootstrap)
	}
	return n, nil
}

func (n *Node) go_(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

func (n *Node) now() time.Duration { return time.Since(n.born) }

// startCore starts the core from the node's durable state.
func (n *Node) startCore(st State) error {
	cc := n.cfg.Core
	cc.ID, cc.Peers, cc.Seed, cc.Logger = n.id, n.cfg.ids(), n.cfg.Seed, n.log
	cc.Incarnation = randUint64()
	n.mu.Lock()
	defer n.mu.Unlock()
	c, out, err := NewCore(cc, st, n.now())
	if err != nil {
		return errors.Wrapf(err, "node %s", n.cfg.Name)
	}
	n.core = c
	n.dispatch(out)
	n.log.Info("raft started", "term", c.Status().Term, "applied", c.Status().Applied)
	return nil
}

// bootstrap waits until every peer answers its probe; if all are fresh it
// starts a new cluster, if a peer bootstrapped counting this incarnation's
// fresh answer it joins, else it stays out (see the package doc).
func (n *Node) bootstrap() {
	for attempt := 0; ; attempt++ {
		p := n.probe()
		switch {
		case p.fresh || p.countedBy != "":
			if n.wal != nil {
				if err := n.wal.Init(Bootstrap(n.cfg.ids())); err != nil {
					n.setWhy("cannot write the bootstrap state: " + err.Error())
					n.log.Error("bootstrap: write the initial state", "err", err.Error())
					break
				}
			}
			if p.fresh {
				// Remembered before the core starts, so that no peer's
				// probe sees this node's state without it.
				n.mu.Lock()
				n.counted = p.incarnations
				n.mu.Unlock()
			}
			if err := n.startCore(Bootstrap(n.cfg.ids())); err != nil {
				n.setWhy(err.Error())
				n.log.Error("bootstrap", "err", err.Error())
				return
			}
			if p.fresh {
				n.log.Info("bootstrapped a new cluster: every peer is fresh")
			} else {
				n.log.Info("joined a new cluster from its bootstrap state: " + p.countedBy +
					" bootstrapped it counting this node's fresh answer, and this node has held no state since")
			}
			return
		case p.why != "" && !strings.HasPrefix(p.why, "unreachable"):
			n.mu.Lock()
			n.why, n.lived = p.why, true
			n.mu.Unlock()
			n.log.Error("not bootstrapping: " + p.why)
			return
		default:
			n.setWhy("waiting for every peer to answer before bootstrapping: " + p.why)
		}
		select {
		case <-n.stop.Done():
			return
		case <-time.After(min(50*time.Millisecond<<min(attempt, 4), time.Second)):
		}
	}
}

// probeResult is what one round of probes found.
type probeResult struct {
	fresh        bool              // every peer answered fresh
	incarnations map[uint64]uint64 // with fresh: each peer's incarnation
	countedBy    string            // a peer that bootstrapped counting this incarnation
	why          string            // unless fresh: why not
}

// probe asks every peer whether it is fresh.
func (n *Node) probe() probeResult {
	type answer struct {
		p    *peer
		resp *pb.ProbeResponse
		err  error
	}
	ch := make(chan answer, len(n.peers))
	for _, p := range n.peers {
		go func() {
			ctx, cancel := context.WithTimeout(n.stop, time.Second)
			defer cancel()
			resp, err := p.client.Probe(ctx, &pb.ProbeRequest{Cluster: n.cfg.Cluster, From: n.id, Incarnation: n.incarnation})
			ch <- answer{p, resp, err}
		}()
	}
	var unreachable, lived, counted []string
	incarnations := map[uint64]uint64{}
	for range n.peers {
		a := <-ch
		switch {
		case a.err != nil:
			unreachable = append(unreachable, a.p.addr+": "+status.Convert(a.err).Message())
		case a.resp.GetCluster() != n.cfg.Cluster:
			lived = append(lived, a.p.addr+" is of cluster "+a.resp.GetCluster())
		case a.resp.GetCounted():
			counted = append(counted, a.p.addr)
		case !a.resp.GetFresh():
			lived = append(lived, a.p.addr+" holds state (term "+itoa(a.resp.GetTerm())+", last index "+itoa(a.resp.GetLastIndex())+")")
		default:
			incarnations[a.p.id] = a.resp.GetIncarnation()
		}
	}
	slices.Sort(unreachable)
	slices.Sort(lived)
	slices.Sort(counted)
	switch {
	case len(counted) > 0:
		return probeResult{countedBy: strings.Join(counted, ", ")}
	case len(lived) > 0:
		return probeResult{why: "this node has no state but the cluster lived: " + strings.Join(lived, "; ") +
			"; a node that lost its state cannot rejoin safely (it may have voted or acknowledged entries it forgot)"}
	case len(unreachable) > 0:
		return probeResult{why: "unreachable: " + strings.Join(unreachable, "; ")}
	}
	return probeResult{fresh: true, incarnations: incarnations}
}

func randUint64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

func (n *Node) setWhy(why string) {
	n.mu.Lock()
	n.why = why
	n.mu.Unlock()
}

// dispatch carries out a core output; it is called with mu held, and
// only queues: it never blocks.
func (n *Node) dispatch(out Output) {
	for _, m := range out.Msgs {
		p := n.peers[m.GetTo()]
		if p == nil {
			continue
		}
		b, err := proto.Marshal(m)
		if err != nil {
			continue
		}
		p.mu.Lock()
		if len(p.queue) >= peerQueueMax {
			p.mu.Unlock()
			continue // dropped, as a lossy network would: raft sends again
		}
		p.queue = append(p.queue, b)
		if m.GetType() == raftpb.MessageType_MsgSnap {
			p.snaps++
		}
		p.mu.Unlock()
		select {
		case p.notify <- struct{}{}:
		default:
		}
	}
	if len(out.Writes) > 0 {
		n.writes = append(n.writes, out.Writes...)
		select {
		case n.writec <- struct{}{}:
		default:
		}
	}
	for _, r := range out.Replies {
		if w := n.waiters[r.ID]; w != nil {
			delete(n.waiters, r.ID)
			w <- r
		}
	}
	n.lastWake = out.Wake
	n.updateHealth()
}

// updateHealth publishes SERVING while the node has its state, a leader,
// and a working disk; it is called with mu held.
func (n *Node) updateHealth() {
	ok := n.core != nil && n.persist == nil
	if ok {
		s := n.core.Status()
		ok = s.Broken == nil && s.Leader != 0
		switch {
		case s.Broken != nil:
			n.why = s.Broken.Error()
		case s.Leader == 0:
			n.why = "no leader known"
		}
	}
	if ok != n.serving {
		n.serving = ok
		n.publishHealth(ok)
	}
}

func (n *Node) publishHealth(ok bool) {
	if n.closed.Load() {
		return
	}
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	n.health.SetServingStatus("", st)
	n.health.SetServingStatus(rrpb.Sequencer_ServiceDesc.ServiceName, st)
}

// step applies f to the core and carries out its output.
func (n *Node) step(f func(c *Core) Output) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.core != nil {
		n.dispatch(f(n.core))
	}
}

// ticker calls Tick whenever the core's wake time has come.
func (n *Node) ticker() {
	iv := min(n.cfg.Core.TickInterval/4, 10*time.Millisecond)
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-n.stop.Done():
			return
		case <-t.C:
		}
		now := n.now()
		n.step(func(c *Core) Output {
			if now < n.lastWake {
				return Output{Wake: n.lastWake}
			}
			return c.Tick(now)
		})
	}
}

// persister makes the core's writes durable, all that are queued in one
// append and one fsync, and tells the core. A failing disk is retried;
// until it works, health says NOT_SERVING and nothing that waits on the
// writes is sent.
func (n *Node) persister() {
	var batch []Write
	for {
		n.mu.Lock()
		batch = append(batch, n.writes...)
		n.writes = nil
		n.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-n.stop.Done():
				return
			case <-n.writec:
				continue
			}
		}
		var err error
		if n.wal != nil {
			err = n.wal.Append(batch, !n.cfg.UnsafeNoSync)
		}
		n.mu.Lock()
		was := n.persist
		n.persist = err
		if err != nil {
			n.why = "cannot persist: " + err.Error()
			n.updateHealth()
			n.mu.Unlock()
			if was == nil {
				n.log.Error("persist failed; retrying", "err", err.Error())
			}
			select {
			case <-n.stop.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if was != nil {
			n.log.Info("persisting again")
		}
		n.fsyncs.Add(1)
		if n.core != nil {
			n.dispatch(n.core.Durable(n.now(), batch[len(batch)-1].Seq))
		}
		n.mu.Unlock()
		batch = batch[:0]
	}
}

// sender streams the queued messages to one peer. A broken stream loses
// what it carried; raft sends again.
func (n *Node) sender(p *peer) {
	var cur *sendStream
	defer func() {
		if cur != nil {
			cur.cancel()
		}
	}()
	backoff := 10 * time.Millisecond
	for {
		p.mu.Lock()
		msgs := p.queue[:min(len(p.queue), sendBatchMax)]
		p.queue = p.queue[len(msgs):]
		snaps := p.snaps
		if len(p.queue) == 0 {
			p.snaps = 0
		}
		p.mu.Unlock()
		if len(msgs) == 0 {
			select {
			case <-n.stop.Done():
				return
			case <-p.notify:
				continue
			}
		}
		var err error
		if cur == nil {
			cur, err = n.openStream(p)
		}
		if err == nil {
			err = cur.s.Send(&pb.Batch{Cluster: n.cfg.Cluster, From: n.id, Messages: msgs})
		}
		if err != nil {
			if cur != nil {
				cur.cancel()
				cur = nil
			}
			n.step(func(c *Core) Output { return c.Unreachable(n.now(), p.id) })
			if snaps > 0 {
				n.step(func(c *Core) Output { return c.SnapshotSent(n.now(), p.id, false) })
			}
			select {
			case <-n.stop.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 10 * time.Millisecond
		if snaps > 0 && len(msgs) > 0 {
			n.step(func(c *Core) Output { return c.SnapshotSent(n.now(), p.id, true) })
		}
	}
}

type sendStream struct {
	s      pb.Raft_SendClient
	cancel context.CancelFunc
}

func (n *Node) openStream(p *peer) (*sendStream, error) {
	ctx, cancel := context.WithCancel(n.stop)
	s, err := p.client.Send(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	return &sendStream{s: s, cancel: cancel}, nil
}

// raftService serves the peer API.
type raftService struct {
	pb.UnimplementedRaftServer
	n *Node
}

// Send implements pb.RaftServer.
func (s raftService) Send(stream pb.Raft_SendServer) error {
	n := s.n
	for {
		b, err := stream.Recv()
		if err != nil {
			return err
		}
		if b.GetCluster() != n.cfg.Cluster {
			return status.Errorf(codes.FailedPrecondition, "%s is of cluster %q, not %q", n.cfg.Name, n.cfg.Cluster, b.GetCluster())
		}
		if p := n.peers[b.GetFrom()]; p == nil {
			return status.Errorf(codes.InvalidArgument, "raft ID %d is no peer of %s", b.GetFrom(), n.cfg.Name)
		}
		for _, raw := range b.GetMessages() {
			m := &raftpb.Message{}
			if err := proto.Unmarshal(raw, m); err != nil {
				return status.Errorf(codes.InvalidArgument, "a message that does not decode: %v", err)
			}
			// A proposal raft forwards keeps its origin's From: only
			// other messages must come from the peer that sent them.
			if m.GetFrom() != b.GetFrom() && m.GetType() != raftpb.MessageType_MsgProp {
				return status.Errorf(codes.InvalidArgument, "a message from %d in a batch from %d", m.GetFrom(), b.GetFrom())
			}
			var stepErr error
			n.step(func(c *Core) Output {
				out, err := c.Step(n.now(), m)
				stepErr = err
				return out
			})
			if stepErr != nil && !errors.Is(stepErr, ErrBroken) {
				return status.Errorf(codes.InvalidArgument, "refused %s: %v", DescribeMessage(m), stepErr)
			}
		}
	}
}

// Probe implements pb.RaftServer.
func (s raftService) Probe(ctx context.Context, req *pb.ProbeRequest) (*pb.ProbeResponse, error) {
	n := s.n
	resp := &pb.ProbeResponse{Cluster: n.cfg.Cluster, Fresh: true}
	n.mu.Lock()
	// A node that stays out because the cluster lived is no fresh node:
	// else the last node with the cluster's state, restarting without it,
	// would find every peer fresh and start the cluster over.
	resp.Fresh = !n.lived
	resp.Incarnation = n.incarnation
	if n.core != nil {
		st := n.core.Status()
		resp.Fresh, resp.Term, resp.LastIndex = st.Fresh(), st.Term, st.LastIndex
	}
	// The prober answered fresh, in the incarnation it names, to the round
	// this node bootstrapped on: it has acted in none of the cluster's
	// history, and may join it (see the package doc).
	inc, ok := n.counted[req.GetFrom()]
	resp.Counted = ok && inc != 0 && inc == req.GetIncarnation()
	n.mu.Unlock()
	return resp, nil
}

// NextRange implements rrpb.SequencerServer: it allocates through the
// raft log. Errors: InvalidArgument (bad name or n), OutOfRange (past the
// last ID), ResourceExhausted (too busy, too many names),
// FailedPrecondition (not the leader, with Core.Redirect), Unavailable
// (no leader, or nothing allocated), DeadlineExceeded (the outcome is
// unknown: the IDs may be allocated, and are then a gap).
func (n *Node) NextRange(ctx context.Context, req *rrpb.NextRangeRequest) (*rrpb.NextRangeResponse, error) {
	if cur := n.inflight.Add(1); cur > int64(n.cfg.MaxInFlight) {
		n.inflight.Add(-1)
		return nil, status.Errorf(codes.ResourceExhausted, "%d requests in flight on %s, the limit", cur-1, n.cfg.Name)
	}
	defer n.inflight.Add(-1)
	r, err := n.Allocate(ctx, req.GetName(), req.GetN())
	if err != nil {
		return nil, err
	}
	return &rrpb.NextRangeResponse{From: uint64(r.From), To: uint64(r.To), Node: n.cfg.Name}, nil
}

// Allocate allocates n IDs of name through the raft log. Its errors are
// gRPC statuses, as NextRange's.
func (n *Node) Allocate(ctx context.Context, name string, count uint64) (seq.Range, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.DefaultTimeout)
		defer cancel()
	}
	done := make(chan Reply, 1)
	n.mu.Lock()
	if n.core == nil {
		why := n.why
		n.mu.Unlock()
		return seq.Range{}, status.Errorf(codes.Unavailable, "%s is not serving: %s", n.cfg.Name, why)
	}
	n.nextReq++
	id := n.nextReq
	n.waiters[id] = done
	n.dispatch(n.core.Request(n.now(), Request{ID: id, Name: name, N: count}))
	n.mu.Unlock()
	select {
	case r := <-done:
		if r.Err != nil {
			return seq.Range{}, n.replyStatus(r.Err)
		}
		n.replies.Add(1)
		return r.Range, nil
	case <-ctx.Done():
	case <-n.stop.Done():
	}
	n.mu.Lock()
	if n.core != nil {
		n.dispatch(n.core.Cancel(n.now(), id))
	}
	delete(n.waiters, id)
	n.mu.Unlock()
	select {
	case r := <-done: // it finished meanwhile
		if r.Err == nil {
			return r.Range, nil
		}
	default:
	}
	if n.stop.Err() != nil {
		return seq.Range{}, status.Error(codes.Unavailable, "node is shutting down; the outcome is unknown")
	}
	return seq.Range{}, status.Errorf(status.FromContextError(ctx.Err()).Code(), "%v before the entry committed: the outcome is unknown", ctx.Err())
}

func (n *Node) replyStatus(err error) error {
	var nl *NotLeaderError
	switch {
	case errors.As(err, &nl):
		leader := "unknown"
		if i := int(nl.Leader) - 1; i >= 0 && i < len(n.cfg.Peers) {
			leader = n.cfg.Peers[i]
		}
		return status.Errorf(codes.FailedPrecondition, "%s is not the leader; the leader is raft node %d (peer address %s)", n.cfg.Name, nl.Leader, leader)
	case errors.Is(err, seq.ErrInvalidArgument):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, seq.ErrOverflow):
		return status.Error(codes.OutOfRange, err.Error())
	case errors.Is(err, ErrBusy):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, ErrUnknown):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Unavailable, err.Error())
}

// Serve serves the client API on lis until Close; it returns nil after
// Close.
func (n *Node) Serve(lis net.Listener) error { return n.serve(n.server, lis, "clients") }

// ServePeers serves the raft transport on lis until Close.
func (n *Node) ServePeers(lis net.Listener) error { return n.serve(n.peerServer, lis, "peers") }

func (n *Node) serve(srv *grpc.Server, lis net.Listener, what string) error {
	n.lifeMu.Lock()
	if n.closed.Load() {
		n.lifeMu.Unlock()
		lis.Close()
		return nil
	}
	n.serveWG.Add(1)
	n.lifeMu.Unlock()
	defer n.serveWG.Done()
	err := srv.Serve(lis)
	if n.closed.Load() {
		return nil
	}
	return errors.Wrap(err, "serve "+what)
}

// Status returns the core's status (zero until the node has its state)
// and why the node does not serve, if it does not.
func (n *Node) Status() (Status, string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var s Status
	if n.core != nil {
		s = n.core.Status()
	}
	why := ""
	if !n.serving {
		why = n.why
	}
	return s, why
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// NodeStats counts a node's work.
type NodeStats struct {
	Allocations int64 // NextRange calls that returned a range
	Persists    int64 // batches made durable (one fsync each with a data dir)
	WAL         WALStats
}

// Stats returns the node's counters.
func (n *Node) Stats() NodeStats {
	s := NodeStats{Allocations: n.replies.Load(), Persists: n.fsyncs.Load()}
	if n.wal != nil {
		s.WAL = n.wal.Stats()
	}
	return s
}

// Close stops serving, abandons requests in progress, stops every
// goroutine and closes the data dir.
func (n *Node) Close() error {
	n.lifeMu.Lock()
	if !n.closed.CompareAndSwap(false, true) {
		n.lifeMu.Unlock()
		return n.closeErr
	}
	n.lifeMu.Unlock()
	n.health.Shutdown()
	n.stopNow()
	n.server.Stop()
	n.peerServer.Stop()
	n.serveWG.Wait()
	n.wg.Wait()
	n.closeConns()
	n.closeErr = n.closeWAL()
	return n.closeErr
}

func (n *Node) closeConns() {
	for _, p := range n.peers {
		p.cc.Close()
	}
}

func (n *Node) closeWAL() error {
	if n.wal == nil {
		return nil
	}
	return n.wal.Close()
}
