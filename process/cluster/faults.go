package cluster

import (
	"context"
	"math/rand/v2"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/nemesis"
	"github.com/seqlab/seqlab/process/faultfs"
	"github.com/seqlab/seqlab/process/proxy"
)

// Nodes returns the node names, in order.
func (c *Cluster) Nodes() []string { return append([]string(nil), c.names...) }

// Clients returns nil: the lab's buffering clients belong to whoever runs
// the workload, not to the cluster.
func (c *Cluster) Clients() []string { return nil }

// CrashClient is the workload's to do.
func (c *Cluster) CrashClient(name string) error {
	return errors.Wrapf(ErrUnsupported, "crash client %s: the workload owns its clients", name)
}

// Net is the cluster's network.
func (c *Cluster) Net() nemesis.Network { return (*network)(c) }

// Rand is the nemesis's seeded source.
func (c *Cluster) Rand() *rand.Rand { return c.rng }

// DefaultLink is the peer links' normal delay.
func (c *Cluster) DefaultLink() nemesis.Link { return c.cfg.Link }

// Crash kills a node's processes with SIGKILL. With powerLoss, the host
// goes silent until Restart and its disk loses what was not synced (torn,
// if torn); a node without a disk loses nothing more than its process.
func (c *Cluster) Crash(node string, powerLoss, torn bool) error {
	n := c.nodes[node]
	if n == nil {
		return errors.Errorf("cluster: no node %q", node)
	}
	if !n.Running() {
		return nil
	}
	if powerLoss {
		c.mu.Lock()
		already := c.silent[node] != nil
		c.mu.Unlock()
		if !already {
			var cuts []nemesis.Edge
			for _, o := range append(c.Nodes(), ClientHost) {
				if o != node {
					cuts = append(cuts, nemesis.Edge{From: node, To: o}, nemesis.Edge{From: o, To: node})
				}
			}
			for _, e := range cuts {
				if err := c.lab.Cut(e.From, e.To); err != nil {
					return err
				}
			}
			c.mu.Lock()
			c.silent[node] = cuts
			c.mu.Unlock()
		}
	}
	if err := n.Kill(); err != nil {
		return err
	}
	if d := c.disks[node]; d != nil && powerLoss {
		mode := faultfs.LoseUnsynced
		if torn {
			mode = faultfs.Torn
		}
		if err := d.PowerLoss(mode); err != nil {
			return errors.Wrapf(err, "cluster: power loss of %s", node)
		}
	}
	return nil
}

// Restart starts a crashed node again, from its disk, and powers its host
// back on.
func (c *Cluster) Restart(node string) error {
	n := c.nodes[node]
	if n == nil {
		return errors.Errorf("cluster: no node %q", node)
	}
	c.mu.Lock()
	cuts := c.silent[node]
	delete(c.silent, node)
	c.mu.Unlock()
	for _, e := range cuts {
		if err := c.lab.HealLink(e.From, e.To); err != nil {
			return err
		}
	}
	if n.Running() {
		return nil
	}
	return n.Start(context.Background())
}

// network is the Cluster as nemesis.Network.
type network Cluster

func (w *network) c() *Cluster { return (*Cluster)(w) }

func (w *network) Partition(groups ...[]string) []nemesis.Edge {
	edges := nemesis.PartitionEdges(groups...)
	var out []nemesis.Edge
	for _, e := range edges {
		if err := w.c().lab.Cut(e.From, e.To); err != nil {
			w.c().record(err)
			continue
		}
		out = append(out, e)
	}
	return out
}

func (w *network) Cut(from, to string)      { w.c().record(w.c().lab.Cut(from, to)) }
func (w *network) HealLink(from, to string) { w.c().record(w.c().lab.HealLink(from, to)) }

// Heal removes every cut but those that keep a powered-off host silent.
func (w *network) Heal() {
	c := w.c()
	c.record(c.lab.Heal())
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cuts := range c.silent {
		for _, e := range cuts {
			if err := c.lab.Cut(e.From, e.To); err != nil {
				c.errs = append(c.errs, err)
			}
		}
	}
}

func (w *network) Reset(from, to string) {
	c := w.c()
	for _, k := range [][2]string{{from, to}, {to, from}} {
		if p := c.proxies[k]; p != nil {
			p.Reset()
		}
	}
	c.record(c.lab.Reset(from, to))
}

func (w *network) AddHostDelay(host string, l nemesis.Link) error {
	c := w.c()
	if c.nodes[host] == nil {
		return errors.Errorf("cluster: no node %q", host)
	}
	if err := (proxy.Settings{Latency: l.Latency, Jitter: l.Jitter}).Validate(); err != nil {
		return err
	}
	c.mu.Lock()
	c.delays[host] = append(c.delays[host], l)
	c.mu.Unlock()
	return c.applyDelays()
}

func (w *network) RemoveHostDelay(host string, l nemesis.Link) {
	c := w.c()
	c.mu.Lock()
	ds := c.delays[host]
	for i, d := range ds {
		if d == l {
			c.delays[host] = append(ds[:i:i], ds[i+1:]...)
			break
		}
	}
	c.mu.Unlock()
	c.record(c.applyDelays())
}

func (w *network) Pause(host string) {
	if n := w.c().nodes[host]; n != nil {
		w.c().record(n.Pause())
	}
}

func (w *network) Resume(host string) {
	if n := w.c().nodes[host]; n != nil {
		w.c().record(n.Resume())
	}
}

func (w *network) SetLoss(dropDial, resetConn float64) {
	if dropDial != 0 || resetConn != 0 {
		w.c().record(errors.Wrap(ErrUnsupported, "loss"))
	}
}

// applyDelays sets every proxy to the slowest delay of its link's ends,
// or the normal one.
func (c *Cluster) applyDelays() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	slowest := func(a, b string) nemesis.Link {
		var best nemesis.Link
		found := false
		for _, h := range []string{a, b} {
			for _, d := range c.delays[h] {
				if !found || d.Latency+d.Jitter > best.Latency+best.Jitter {
					best, found = d, true
				}
			}
		}
		if !found {
			return c.cfg.Link
		}
		return best
	}
	for k, p := range c.proxies {
		fw, bw := slowest(k[0], k[1]), slowest(k[1], k[0])
		if err := p.Set(proxy.Forward, proxy.Settings{Latency: fw.Latency, Jitter: fw.Jitter}); err != nil {
			return err
		}
		if err := p.Set(proxy.Backward, proxy.Settings{Latency: bw.Latency, Jitter: bw.Jitter}); err != nil {
			return err
		}
	}
	return nil
}
