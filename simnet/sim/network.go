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
//
// Cuts and host delays are held per fault, as nemesis.Network says: cuts
// counts the cuts of each directed link, and cut, which the hot path
// reads, holds the links with at least one; held lists each host's
// settings, and hosts the slowest of them, which delay reads.
type network struct {
	s     *sim
	cut   map[[2]string]bool
	cuts  map[[2]string]int
	hosts map[string]LinkDelay
	held  map[string][]LinkDelay
	loss  float64
	// rpcs are the requests in flight, each in a slot of its own (key 0:
	// a free slot), freeRPC the free slots, and nextRPC numbers them.
	rpcs    []rpc
	freeRPC []uint32
	nextRPC uint64
}

// rpcKey names a request in flight: the order it opened in, above
// rpcSlotBits, and its slot below them. 0 is no request.
type rpcKey uint64

// rpcSlotBits is how many bits of a key hold its slot.
const rpcSlotBits = 24

// rpc is a request in flight: from a host to another, and who to tell if
// it breaks.
type rpc struct {
	key      rpcKey
	from, to string
	b        breaker
}

var _ nemesis.Network = (*network)(nil)

// delay draws one message's delay from→to: the slower host's setting, else
// the run's. A run with no host slowed and no jitter has one delay.
func (n *network) delay(from, to string) time.Duration {
	if len(n.hosts) == 0 && n.s.cfg.Jitter <= 0 {
		return n.s.cfg.Latency
	}
	return n.drawDelay(from, to)
}

func (n *network) drawDelay(from, to string) time.Duration {
	l := LinkDelay{Latency: n.s.cfg.Latency, Jitter: n.s.cfg.Jitter}
	var hf, ht LinkDelay
	var okf, okt bool
	if len(n.hosts) > 0 {
		hf, okf = n.hosts[from]
		ht, okt = n.hosts[to]
	}
	switch {
	case okf && okt:
		l = hf
		if slower(ht, hf) {
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
func (n *network) send(l label, owner *Host, fn func()) {
	n.post(&event{l: l, fn: fn}, owner)
}

// sendH is send with a handler instead of a closure.
func (n *network) sendH(l label, owner *Host, h handler, op uint8) {
	n.post(&event{l: l, h: h, op: op}, owner)
}

func (n *network) post(e *event, owner *Host) {
	n.s.msgs++
	from, to := e.l.from, e.l.to
	if n.isCut(from, to) {
		n.s.note(&label{kind: "drop-cut", from: from, to: to, a: e.l.a, b: e.l.b})
		return
	}
	if n.loss > 0 && n.s.rng.Float64() < n.loss {
		n.s.note(&label{kind: "drop-loss", from: from, to: to, a: e.l.a, b: e.l.b})
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

// isCut reports whether the link from→to is cut. Most of a run has no
// cut at all, and then it hashes no names.
func (n *network) isCut(from, to string) bool {
	return len(n.cut) > 0 && n.cut[[2]string{from, to}]
}

// open notes a request in flight; b hears if a reset or crash breaks it.
func (n *network) open(from, to string, b breaker) rpcKey {
	n.nextRPC++
	var slot uint32
	if k := len(n.freeRPC); k > 0 {
		slot, n.freeRPC = n.freeRPC[k-1], n.freeRPC[:k-1]
	} else {
		slot = uint32(len(n.rpcs))
		if slot >= 1<<rpcSlotBits {
			panic("sim: too many requests in flight")
		}
		n.rpcs = append(n.rpcs, rpc{})
	}
	k := rpcKey(n.nextRPC<<rpcSlotBits | uint64(slot))
	n.rpcs[slot] = rpc{key: k, from: from, to: to, b: b}
	return k
}

// close ends a request; false if it had already ended.
func (n *network) close(k rpcKey) bool {
	slot := uint64(k) & (1<<rpcSlotBits - 1)
	if k == 0 || slot >= uint64(len(n.rpcs)) || n.rpcs[slot].key != k {
		return false
	}
	n.rpcs[slot] = rpc{}
	n.freeRPC = append(n.freeRPC, uint32(slot))
	return true
}

// breakWhere fails, at once, the requests in flight that match, in the
// order they opened.
func (n *network) breakWhere(match func(r rpc) bool) {
	var keys []rpcKey
	for _, r := range n.rpcs {
		if r.key != 0 {
			keys = append(keys, r.key)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		r := n.rpcs[uint64(k)&(1<<rpcSlotBits-1)]
		if r.key == k && match(r) {
			n.close(k)
			r.b.broken()
		}
	}
}

func (n *network) crash(host string) {
	n.breakWhere(func(r rpc) bool { return r.to == host || r.from == host })
}

// Partition adds one cut to each link of the partition and returns them.
func (n *network) Partition(groups ...[]string) []nemesis.Edge {
	es := nemesis.PartitionEdges(groups...)
	for _, e := range es {
		n.Cut(e.From, e.To)
	}
	return es
}

func (n *network) Cut(from, to string) {
	if n.cuts == nil {
		n.cuts = map[[2]string]int{}
	}
	k := [2]string{from, to}
	n.cuts[k]++
	n.cut[k] = true
}

// HealLink takes away one cut; the link carries when none is left.
func (n *network) HealLink(from, to string) {
	k := [2]string{from, to}
	switch c := n.cuts[k]; {
	case c > 1:
		n.cuts[k] = c - 1
	case c == 1:
		delete(n.cuts, k)
		delete(n.cut, k)
	}
}

func (n *network) Heal() {
	clear(n.cut)
	clear(n.cuts)
}

func (n *network) Reset(from, to string) {
	n.breakWhere(func(r rpc) bool { return r.from == from && r.to == to || r.from == to && r.to == from })
}

// AddHostDelay validates l as simnet does: a bad delay changes nothing.
func (n *network) AddHostDelay(host string, l nemesis.Link) error {
	if err := (simnet.LinkConfig{Latency: l.Latency, Jitter: l.Jitter}).Validate(); err != nil {
		return errors.Wrapf(err, "sim: add-host-delay %s", host)
	}
	if n.held == nil {
		n.held = map[string][]LinkDelay{}
	}
	n.setHeld(host, append(n.held[host], l))
	return nil
}

func (n *network) RemoveHostDelay(host string, l nemesis.Link) {
	if i := slices.Index(n.held[host], l); i >= 0 {
		n.setHeld(host, slices.Delete(n.held[host], i, i+1))
	}
}

// setHeld sets host's settings and the slowest of them, which applies.
func (n *network) setHeld(host string, ls []LinkDelay) {
	if len(ls) == 0 {
		delete(n.held, host)
		delete(n.hosts, host)
		return
	}
	n.held[host] = ls
	d := ls[0]
	for _, l := range ls[1:] {
		if slower(l, d) {
			d = l
		}
	}
	n.hosts[host] = d
}

// slower reports whether a is slower than b, by latency plus jitter, as
// simnet compares them.
func slower(a, b LinkDelay) bool { return a.Latency+a.Jitter > b.Latency+b.Jitter }

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
