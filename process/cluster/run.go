package cluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/nemesis"
	"github.com/seqlab/seqlab/process/faultfs"
	"github.com/seqlab/seqlab/process/netns"
	"github.com/seqlab/seqlab/process/proxy"
	"github.com/seqlab/seqlab/process/supervisor"
)

// Ports every node listens on, at its own address.
const (
	ClientPort = 7001
	PeerPort   = 7101
	proxyBase  = 20000 // proxy of the link to node j: 127.0.0.1:proxyBase+j
)

// ClientHost is the namespace the lab's clients dial from.
const ClientHost = "client"

// ErrUnsupported is recorded for a fault this mode does not offer.
var ErrUnsupported = errors.New("cluster: not supported in process mode")

// Config is a cluster to start.
type Config struct {
	// Nodes is how many nodes: n1, n2, ...
	Nodes int
	// Command is the node's command template (supervisor.ParseTemplate);
	// see RRSeqNode for rrseq-node's.
	Command string
	// Env is added to every node's environment (RRSEQ_PEER_SECRET, say).
	Env []string
	// Dir is the run's directory: nodes/NAME.log, and nodes/NAME/ for
	// the data dirs. It must exist.
	Dir string
	// Disk puts every node's {data_dir} on a faultfs disk; without it,
	// {data_dir} is a plain directory.
	Disk bool
	// Seed drives the nemesis's choices, the jitter and the torn writes.
	Seed int64
	// Link is the normal delay of every peer link.
	Link nemesis.Link
	// Ready says when a node is ready (default: it accepts connections
	// on its client port).
	Ready func(c *Cluster, node string) func(ctx context.Context) error
	// ReadyTimeout bounds each start (default 30s).
	ReadyTimeout time.Duration
}

// RRSeqNode is the command template of rrseq-node at bin.
func RRSeqNode(bin string, disk bool) string {
	s := supervisor.Quote([]string{bin}) + " --listen {listen} --peer-listen {peer_listen} --peers {peers} --name {name} --bootstrap"
	if disk {
		s += " --data-dir {data_dir}"
	}
	return s
}

// RaftSeqNode is the command template of raftseq-node at bin: its log on
// the node's disk, or in memory (a restart is then a node that lost its
// state, which stays out).
func RaftSeqNode(bin string, disk bool) string {
	s := supervisor.Quote([]string{bin}) + " --listen {listen} --peer-listen {peer_listen} --peers {peers} --name {name} --bootstrap"
	if disk {
		return s + " --data-dir {data_dir}"
	}
	return s + " --in-memory"
}

// FlakeSeqNode is the command template of flakeseq-node at bin: each node
// its place as its node ID, its high-water mark on its disk or in memory.
// A flake node has no peers.
func FlakeSeqNode(bin string, disk bool) string {
	s := supervisor.Quote([]string{bin}) + " --listen {listen} --name {name} --node-id {index}"
	if disk {
		s += " --data-dir {data_dir}"
	}
	return s
}

// Cluster is a running cluster. Its methods are safe for concurrent use.
type Cluster struct {
	cfg   Config
	names []string
	lab   *netns.Lab
	rng   *rand.Rand

	nodes   map[string]*supervisor.Node
	disks   map[string]*faultfs.FS
	proxies map[[2]string]*proxy.Link
	cmds    []string

	mu     sync.Mutex
	delays map[string][]nemesis.Link
	silent map[string][]nemesis.Edge // powered-off hosts: the cuts that silence them
	errs   []error
	closed bool
}

var (
	_ nemesis.Cluster = (*Cluster)(nil)
	_ nemesis.Network = (*network)(nil)
)

// Start makes the namespaces, proxies and disks, and starts every node,
// waiting until each is ready. On any error it removes whatever it made.
func Start(ctx context.Context, cfg Config) (_ *Cluster, err error) {
	if cfg.Nodes < 1 || cfg.Nodes > 99 {
		return nil, errors.Errorf("cluster: %d nodes, want 1 to 99", cfg.Nodes)
	}
	tmpl, err := supervisor.ParseTemplate(cfg.Command)
	if err != nil {
		return nil, err
	}
	if !tmpl.Uses("listen") {
		return nil, errors.New("cluster: the node command must take {listen}, where the lab's clients call it")
	}
	if cfg.Disk && !tmpl.Uses("data_dir") {
		return nil, errors.New("cluster: a node on a disk must take {data_dir}")
	}
	if st, err := os.Stat(cfg.Dir); err != nil || !st.IsDir() {
		return nil, errors.Errorf("cluster: run directory %q does not exist", cfg.Dir)
	}
	if err := (proxy.Settings{Latency: cfg.Link.Latency, Jitter: cfg.Link.Jitter}).Validate(); err != nil {
		return nil, errors.Wrap(err, "cluster: link")
	}
	c := &Cluster{
		cfg:     cfg,
		rng:     rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6e656d)),
		nodes:   map[string]*supervisor.Node{},
		disks:   map[string]*faultfs.FS{},
		proxies: map[[2]string]*proxy.Link{},
		delays:  map[string][]nemesis.Link{},
		silent:  map[string][]nemesis.Edge{},
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	for i := range cfg.Nodes {
		c.names = append(c.names, fmt.Sprintf("n%d", i+1))
	}
	if c.lab, err = netns.New(netns.Config{Hosts: append(append([]string(nil), c.names...), ClientHost)}); err != nil {
		return nil, err
	}
	if err := c.makeProxies(); err != nil {
		return nil, err
	}
	nodesDir := filepath.Join(cfg.Dir, "nodes")
	if err := os.MkdirAll(nodesDir, 0o755); err != nil {
		return nil, errors.Wrap(err, "cluster")
	}
	peers := make([]string, len(c.names))
	for i, n := range c.names {
		peers[i] = c.PeerAddr(n)
	}
	for i, name := range c.names {
		dataDir := filepath.Join(nodesDir, name, "data")
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return nil, errors.Wrap(err, "cluster")
		}
		if cfg.Disk {
			real := filepath.Join(nodesDir, name, "disk")
			if err := os.MkdirAll(real, 0o755); err != nil {
				return nil, errors.Wrap(err, "cluster")
			}
			d, err := faultfs.Mount(faultfs.Config{Dir: real, Mountpoint: dataDir, Seed: uint64(cfg.Seed) + uint64(i) + 1})
			if err != nil {
				return nil, errors.Wrapf(err, "cluster: disk of %s", name)
			}
			c.disks[name] = d
		}
		args := tmpl.Expand(supervisor.Vars{
			Listen: c.ClientAddr(name), PeerListen: c.PeerAddr(name), Peers: strings.Join(peers, ","),
			Name: name, Index: i, N: cfg.Nodes, DataDir: dataDir,
		})
		name := name
		ready := func(ctx context.Context) error {
			return supervisor.Accepting(c.Dial, c.ClientAddr(name))(ctx)
		}
		if cfg.Ready != nil {
			ready = cfg.Ready(c, name)
		}
		n, err := supervisor.New(supervisor.Config{
			Name: name, Args: args, Env: cfg.Env, Dir: cfg.Dir,
			Log:   filepath.Join(nodesDir, name+".log"),
			Start: c.lab.Host(name).Start, Ready: ready, ReadyTimeout: cfg.ReadyTimeout,
		})
		if err != nil {
			return nil, err
		}
		c.nodes[name] = n
		c.cmds = append(c.cmds, n.Command())
	}
	// Nodes wait for their peers as they start (bootstrap), so they
	// start together.
	errs := make(chan error, len(c.names))
	for _, name := range c.names {
		go func() { errs <- c.nodes[name].Start(ctx) }()
	}
	var first error
	for range c.names {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return nil, first
	}
	return c, nil
}

// makeProxies puts a proxy on every directed peer link: in the sender's
// namespace, on 127.0.0.1, where the sender's connections to the peer's
// peer port are redirected.
func (c *Cluster) makeProxies() error {
	for i, from := range c.names {
		for j, to := range c.names {
			if i == j {
				continue
			}
			h := c.lab.Host(from)
			port := uint16(proxyBase + j)
			lis, err := h.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				return errors.Wrapf(err, "cluster: proxy %s->%s", from, to)
			}
			target := c.PeerAddr(to)
			p, err := proxy.New(proxy.Config{
				Name: from + "->" + to, Listener: lis,
				Dial: func(ctx context.Context) (net.Conn, error) { return h.Dial(ctx, "tcp", target) },
				Seed: uint64(c.cfg.Seed)<<8 ^ uint64(i)<<4 ^ uint64(j),
			})
			if err != nil {
				lis.Close()
				return err
			}
			c.proxies[[2]string{from, to}] = p
			if err := h.Redirect(netip.MustParseAddrPort(target), port); err != nil {
				return err
			}
		}
	}
	return c.applyDelays()
}

// ClientAddr is where node serves the client API.
func (c *Cluster) ClientAddr(node string) string {
	return netip.AddrPortFrom(c.lab.Host(node).Addr(), ClientPort).String()
}

// PeerAddr is where node serves the peer API.
func (c *Cluster) PeerAddr(node string) string {
	return netip.AddrPortFrom(c.lab.Host(node).Addr(), PeerPort).String()
}

// Dial connects from the clients' namespace, for the lab's clients.
func (c *Cluster) Dial(ctx context.Context, address string) (net.Conn, error) {
	return c.lab.Host(ClientHost).Dial(ctx, "tcp", address)
}

// Commands returns the exact command each node runs, in order.
func (c *Cluster) Commands() []string { return append([]string(nil), c.cmds...) }

// Node returns a node's supervisor, or nil.
func (c *Cluster) Node(name string) *supervisor.Node { return c.nodes[name] }

// Disk returns a node's disk, or nil.
func (c *Cluster) Disk(name string) *faultfs.FS { return c.disks[name] }

// Lab returns the namespaces.
func (c *Cluster) Lab() *netns.Lab { return c.lab }

// Err returns the errors of faults that could not be applied (the
// nemesis.Network methods return none), joined, or nil.
func (c *Cluster) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) == 0 {
		return nil
	}
	msgs := make([]string, len(c.errs))
	for i, e := range c.errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

// Errs returns the errors of faults that could not be applied, in the
// order they happened.
func (c *Cluster) Errs() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]error(nil), c.errs...)
}

func (c *Cluster) record(err error) {
	if err == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, err)
}

// Close kills every node, then removes the proxies, disks and
// namespaces. A second Close does nothing.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	for _, n := range c.nodes {
		keep(n.Kill())
	}
	for _, p := range c.proxies {
		keep(p.Close())
	}
	for _, d := range c.disks {
		keep(d.Close())
	}
	if c.lab != nil {
		keep(c.lab.Close())
	}
	return first
}
