package scenarios

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/nemesis"

	"github.com/seqlab/seqlab/simnet"
	"github.com/seqlab/seqlab/simnet/disk"
)

// cluster is a scenario's nodes of the system under test on the
// simulated network, with their disks and clocks. It implements
// nemesis.Cluster.
type cluster struct {
	sc    Scenario
	sys   System
	seed  int64
	net   *simnet.Network
	rng   *rand.Rand // the nemesis's choices
	names []string
	log   *slog.Logger

	mu      sync.Mutex
	slots   map[string]*nodeSlot
	clocks  map[string]*nemesis.SkewedClock // each node's, kept across restarts
	began   time.Time
	clients *clientSet
}

type nodeSlot struct {
	name    string
	index   int
	disk    *disk.Disk
	node    Node
	serving sync.WaitGroup
	starts  int
}

// peerAddr is a node's peer listener on the simulated network: the same
// host as its client listener, so that faults on the host hit both.
func peerAddr(name string) string { return name + ":peer" }

var (
	_ nemesis.Cluster = (*cluster)(nil)
	_ nemesis.Clocks  = (*cluster)(nil)
)

func newCluster(sc Scenario, sys System, seed int64, net *simnet.Network, clients *clientSet, log *slog.Logger) (*cluster, error) {
	c := &cluster{
		sc: sc, sys: sys, seed: seed, net: net, log: log, clients: clients,
		rng:   rand.New(rand.NewPCG(uint64(seed), 0x6e656d)),
		slots: map[string]*nodeSlot{}, clocks: map[string]*nemesis.SkewedClock{}, began: time.Now(),
	}
	for i := range sc.Cluster.Nodes {
		name := fmt.Sprintf("n%d", i+1)
		c.names = append(c.names, name)
		c.slots[name] = &nodeSlot{name: name, index: i, disk: disk.New(seed + int64(i) + 1)}
		c.clocks[name] = nemesis.NewSkewedClock(time.Now)
	}
	for _, name := range c.names {
		if err := c.start(name); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// start builds the node object and serves it; c.mu must not be held by
// anyone else for this slot.
func (c *cluster) start(name string) error {
	s := c.slots[name]
	peers := make([]string, len(c.names))
	for i, n := range c.names {
		peers[i] = peerAddr(n)
	}
	env := NodeEnv{
		Name: name, Index: s.index, Self: peerAddr(name), Peers: peers,
		Dialer:      c.net.Dialer(name),
		Starts:      s.starts,
		Seed:        c.seed ^ int64(s.starts+1)<<20 ^ int64(s.index+1)<<40,
		PeerTimeout: c.sc.Workload.OpTimeout / 4,
		Clock:       c.clock(name),
		Began:       c.began,
		Secret:      "lab",
		Logger:      c.log,
		Scenario:    c.sc,
	}
	if c.sc.Cluster.Persist == Disk {
		env.DataDir, env.FS = "data/"+name, s.disk.Mount()
	}
	node, err := c.sys.NewNode(env)
	if err != nil {
		return errors.Wrapf(err, "start %s", name)
	}
	lis, err := c.net.Listen(name)
	if err != nil {
		node.Close()
		return errors.Wrapf(err, "listen %s", name)
	}
	plis, err := c.net.Listen(peerAddr(name))
	if err != nil {
		lis.Close()
		node.Close()
		return errors.Wrapf(err, "listen %s", peerAddr(name))
	}
	s.node = node
	s.starts++
	s.serving.Add(2)
	go func() {
		defer s.serving.Done()
		node.Serve(lis)
	}()
	go func() {
		defer s.serving.Done()
		node.ServePeers(plis)
	}()
	return nil
}

func (c *cluster) Nodes() []string            { return append([]string(nil), c.names...) }
func (c *cluster) Clients() []string          { return c.clients.names() }
func (c *cluster) Net() nemesis.Network       { return netAdapter{c.net} }
func (c *cluster) Rand() *rand.Rand           { return c.rng }
func (c *cluster) CrashClient(n string) error { return c.clients.crash(n) }

func (c *cluster) DefaultLink() nemesis.Link {
	return nemesis.Link{Latency: c.sc.Cluster.Latency, Jitter: c.sc.Cluster.Jitter}
}

// Crash stops a node's process: the network drops its connections at once
// and the node object is gone. On power loss the machine goes silent
// instead, and its disk forgets (or tears) what was not synced.
func (c *cluster) Crash(name string, powerLoss, torn bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.slots[name]
	if s == nil {
		return errors.Errorf("no node %q", name)
	}
	if s.node == nil {
		return nil // already down
	}
	// The process dies at once and its disk takes nothing more from it,
	// however late its handlers run. A crashed process's kernel resets
	// its connections; a machine without power goes silent.
	switch {
	case powerLoss && torn:
		c.net.PowerOff(name)
		s.disk.Crash(disk.Torn)
	case powerLoss:
		c.net.PowerOff(name)
		s.disk.Crash(disk.LoseUnsynced)
	default:
		c.net.Crash(name)
		s.disk.Kill()
	}
	s.node.Close()
	s.serving.Wait()
	s.node = nil
	return nil
}

// Restart starts a crashed node again from its disk.
func (c *cluster) Restart(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.slots[name]
	if s == nil {
		return errors.Errorf("no node %q", name)
	}
	if s.node != nil {
		return nil
	}
	c.net.Restart(name)
	return c.start(name)
}

func (c *cluster) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, name := range c.names {
		if s := c.slots[name]; s.node != nil {
			s.node.Close()
			s.serving.Wait()
			s.node = nil
		}
	}
}

// netAdapter lets simnet serve as the nemesis's Network. simnet holds cuts
// and host delays per fault as nemesis.Network says: counted cuts, and one
// delay setting per AddHostDelay.
type netAdapter struct{ n *simnet.Network }

var _ nemesis.Network = netAdapter{}

func (a netAdapter) Partition(groups ...[]string) []nemesis.Edge {
	links := a.n.Partition(groups...)
	out := make([]nemesis.Edge, len(links))
	for i, l := range links {
		out[i] = nemesis.Edge{From: l.From, To: l.To}
	}
	return out
}
func (a netAdapter) Cut(from, to string)             { a.n.Cut(from, to) }
func (a netAdapter) HealLink(from, to string)        { a.n.HealLink(from, to) }
func (a netAdapter) Heal()                           { a.n.Heal() }
func (a netAdapter) Reset(from, to string)           { a.n.Reset(from, to) }
func (a netAdapter) Pause(host string)               { a.n.Pause(host) }
func (a netAdapter) Resume(host string)              { a.n.Resume(host) }
func (a netAdapter) SetLoss(dropDial, reset float64) { a.n.SetLoss(dropDial, reset) }
func (a netAdapter) AddHostDelay(host string, l nemesis.Link) error {
	return a.n.AddHostDelay(host, simnet.LinkConfig{Latency: l.Latency, Jitter: l.Jitter})
}
func (a netAdapter) RemoveHostDelay(host string, l nemesis.Link) {
	a.n.RemoveHostDelay(host, simnet.LinkConfig{Latency: l.Latency, Jitter: l.Jitter})
}

// linkConfig is the scenario's normal link.
func linkConfig(c Cluster) simnet.LinkConfig {
	return simnet.LinkConfig{Latency: c.Latency, Jitter: c.Jitter}
}

// clock is a node's own clock: the bubble's time plus the clock faults
// on the node. The skews belong to the machine: a restart keeps them.
func (c *cluster) clock(name string) func() time.Time { return c.clocks[name].Now }

// SkewClock implements nemesis.Clocks.
func (c *cluster) SkewClock(node string, s *nemesis.Skew) error {
	clk := c.clocks[node]
	if clk == nil {
		return errors.Errorf("no node %q", node)
	}
	clk.Add(s)
	return nil
}

// UnskewClock implements nemesis.Clocks.
func (c *cluster) UnskewClock(node string, s *nemesis.Skew) {
	if clk := c.clocks[node]; clk != nil {
		clk.Remove(s)
	}
}
