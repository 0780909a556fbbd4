package sim

import (
	"time"

	"github.com/seqlab/seqlab/nemesis"
)

// LinkDelay is a host's delay: latency plus seeded jitter.
type LinkDelay = nemesis.Link

// network carries messages between hosts with the same fault model as the
// connection-level network, at the level of messages: a cut drops what
// crosses it (a request then times out, as over a blackholed TCP link), a
// reset or a crash fails the requests in flight at once, loss drops a
// share of messages, and Config.Dup delivers a share twice. Unlike TCP,
// messages of one pair may overtake each other under jitter.
type network struct {
	s        *sim
	cut      map[[2]string]bool
	hosts    map[string]LinkDelay
	loss     float64
	inflight map[rpcKey]*rpc
	nextRPC  uint64
}

type rpcKey struct {
	id       uint64
	from, to string
}

type rpc struct{ fail func() }

var _ nemesis.Network = (*network)(nil)

// delay draws one message's delay from→to: the slower host's setting, else
// the run's.
func (n *network) delay(from, to string) time.Duration {
	l := LinkDelay{Latency: n.s.cfg.Latency, Jitter: n.s.cfg.Jitter}
	hf, okf := n.hosts[from]
	ht, okt := n.hosts[to]
	switch {
	case okf && okt:
		l = hf
		if ht.Latency+ht.Jitter > hf.Latency+hf.Jitter {
			l = ht
		}
	case okf:
		l = hf
	case okt:
		l = ht
	}
	d := l.Latency
	if l.Jitter > 0 {
		d += time.Duration(n.s.rng.Int64N(int64(l.Jitter) + 1))
	}
	return d
}

// send delivers fn at to after the link's delay, unless the link is cut
// when it is sent or when it arrives, or loss drops it.
func (n *network) send(l label, fn func()) {
	from, to := l.from, l.to
	if n.cut[[2]string{from, to}] {
		n.s.note(label{kind: "drop-cut", from: from, to: to, a: l.a, b: l.b})
		return
	}
	if n.loss > 0 && n.s.rng.Float64() < n.loss {
		n.s.note(label{kind: "drop-loss", from: from, to: to, a: l.a, b: l.b})
		return
	}
	deliver := func() {
		if n.cut[[2]string{from, to}] {
			n.s.note(label{kind: "drop-in-flight", from: from, to: to, a: l.a, b: l.b})
			return
		}
		fn()
	}
	n.s.at(n.delay(from, to), l, deliver)
	if n.s.cfg.Dup > 0 && n.s.rng.Float64() < n.s.cfg.Dup {
		l.kind += "-dup"
		n.s.at(n.delay(from, to), l, deliver)
	}
}

// open notes a request in flight; fail runs if a reset or crash breaks it.
func (n *network) open(from, to string, fail func()) rpcKey {
	n.nextRPC++
	k := rpcKey{n.nextRPC, from, to}
	n.inflight[k] = &rpc{fail: fail}
	return k
}

// close ends a request; false if it had already ended.
func (n *network) close(k rpcKey) bool {
	if _, ok := n.inflight[k]; !ok {
		return false
	}
	delete(n.inflight, k)
	return true
}

// breakWhere fails, at once, the requests in flight that match.
func (n *network) breakWhere(match func(k rpcKey) bool) {
	for _, k := range sortedKeys(n.inflight) {
		if match(k) {
			r := n.inflight[k]
			delete(n.inflight, k)
			r.fail()
		}
	}
}

func (n *network) crash(host string) {
	n.breakWhere(func(k rpcKey) bool { return k.to == host || k.from == host })
}

func (n *network) Partition(groups ...[]string) {
	n.cut = map[[2]string]bool{}
	for i, g := range groups {
		for j, o := range groups {
			if i == j {
				continue
			}
			for _, a := range g {
				for _, b := range o {
					if a != b {
						n.cut[[2]string{a, b}] = true
					}
				}
			}
		}
	}
}

func (n *network) Cut(from, to string) { n.cut[[2]string{from, to}] = true }
func (n *network) Heal()               { n.cut = map[[2]string]bool{} }

func (n *network) Reset(from, to string) {
	n.breakWhere(func(k rpcKey) bool { return k.from == from && k.to == to || k.from == to && k.to == from })
}

func (n *network) SetHost(host string, l nemesis.Link) { n.hosts[host] = l }

func (n *network) Pause(host string) {
	if nd := n.s.nodes[host]; nd != nil && nd.up {
		nd.paused = true
	}
}

func (n *network) Resume(host string) {
	nd := n.s.nodes[host]
	if nd == nil || !nd.paused {
		return
	}
	nd.paused = false
	held := nd.held
	nd.held = nil
	for _, fn := range held {
		fn()
	}
}

// SetLoss drops a share dropDial of messages from now on (the message
// level's counterpart of dropped connection attempts) and breaks a share
// resetConn of the requests in flight.
func (n *network) SetLoss(dropDial, resetConn float64) {
	n.loss = max(0, min(1, dropDial))
	if resetConn > 0 {
		n.breakWhere(func(rpcKey) bool { return n.s.rng.Float64() < resetConn })
	}
}
