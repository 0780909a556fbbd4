package sim

import (
	"slices"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/nemesis"
	"github.com/seqlab/seqlab/simnet"
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
	inflight map[rpcKey]rpc
	nextRPC  rpcKey
}

// rpcKey numbers the requests in flight, from 1; 0 is no request.
type rpcKey uint64

// rpc is a request in flight: from a host to another, and who to tell if
// it breaks.
type rpc struct {
	from, to string
	b        breaker
}

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

// send delivers fn at l.to after the link's delay, unless the link is cut
// when it is sent or when it arrives, or loss drops it. owner, if not nil,
// is the receiving node: the message is lost if its process dies first.
func (n *network) send(l label, owner *node, fn func()) {
	n.post(event{l: l, fn: fn}, owner)
}

// sendH is send with a handler instead of a closure.
func (n *network) sendH(l label, owner *node, h handler, op uint8) {
	n.post(event{l: l, h: h, op: op}, owner)
}

func (n *network) post(e event, owner *node) {
	from, to := e.l.from, e.l.to
	if n.cut[[2]string{from, to}] {
		n.s.note(label{kind: "drop-cut", from: from, to: to, a: e.l.a, b: e.l.b})
		return
	}
	if n.loss > 0 && n.s.rng.Float64() < n.loss {
		n.s.note(label{kind: "drop-loss", from: from, to: to, a: e.l.a, b: e.l.b})
		return
	}
	e.wire = true
	if owner != nil {
		e.owner, e.epoch = owner, owner.epoch
	}
	e.at = n.s.now + n.delay(from, to)
	n.s.schedule(e)
	if n.s.cfg.Dup > 0 && n.s.rng.Float64() < n.s.cfg.Dup {
		e.l.kind += "-dup"
		e.at = n.s.now + n.delay(from, to)
		n.s.schedule(e)
	}
}

// breaker is told when a reset or a crash breaks its request.
type breaker interface{ broken() }

// open notes a request in flight; b hears if a reset or crash breaks it.
func (n *network) open(from, to string, b breaker) rpcKey {
	n.nextRPC++
	n.inflight[n.nextRPC] = rpc{from: from, to: to, b: b}
	return n.nextRPC
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
func (n *network) breakWhere(match func(r rpc) bool) {
	keys := make([]rpcKey, 0, len(n.inflight))
	for k := range n.inflight {
		keys = append(keys, k)
	}
	slices.Sort(keys) // in the order they opened, not the map's
	for _, k := range keys {
		if r, ok := n.inflight[k]; ok && match(r) {
			delete(n.inflight, k)
			r.b.broken()
		}
	}
}

func (n *network) crash(host string) {
	n.breakWhere(func(r rpc) bool { return r.to == host || r.from == host })
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
	n.breakWhere(func(r rpc) bool { return r.from == from && r.to == to || r.from == to && r.to == from })
}

// SetHost validates l as simnet does: a bad delay changes nothing.
func (n *network) SetHost(host string, l *nemesis.Link) error {
	if l == nil {
		delete(n.hosts, host)
		return nil
	}
	if err := (simnet.LinkConfig{Latency: l.Latency, Jitter: l.Jitter}).Validate(); err != nil {
		return errors.Wrapf(err, "sim: set-host %s", host)
	}
	n.hosts[host] = *l
	return nil
}

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
		n.breakWhere(func(rpc) bool { return n.s.rng.Float64() < resetConn })
	}
}
