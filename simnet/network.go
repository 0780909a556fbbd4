package simnet

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/errors"
)

// LinkConfig is the delay of a link: every write is delivered after
// Latency plus a uniform random share of Jitter.
type LinkConfig struct {
	Latency time.Duration
	Jitter  time.Duration
}

func (l LinkConfig) String() string { return fmt.Sprintf("%v±%v", l.Latency, l.Jitter) }

// MaxDelay bounds Latency and Jitter. A longer delay is a mistake, not a
// slow network, and the bound keeps delay arithmetic from overflowing.
const MaxDelay = time.Hour

// Validate rejects negative delays and delays over MaxDelay.
func (l LinkConfig) Validate() error {
	if err := l.check(); err != nil {
		return errors.Wrap(err, "simnet")
	}
	return nil
}

func (l LinkConfig) check() error {
	switch {
	case l.Latency < 0:
		return errors.Errorf("delay %v: negative latency", l)
	case l.Jitter < 0:
		return errors.Errorf("delay %v: negative jitter", l)
	case l.Latency > MaxDelay:
		return errors.Errorf("delay %v: latency over %v", l, MaxDelay)
	case l.Jitter > MaxDelay:
		return errors.Errorf("delay %v: jitter over %v", l, MaxDelay)
	}
	return nil
}

// Config configures a Network.
type Config struct {
	// Seed drives every random choice: jitter, dropped dials and resets.
	Seed int64
	// Default is the delay of every link not otherwise configured.
	Default LinkConfig
	// SynRetry is how long a dropped connection attempt waits before it is
	// tried again, as TCP retransmits a lost SYN. Default 1s.
	SynRetry time.Duration
	// Window is how many bytes a connection holds written and unread
	// before Write blocks, like a TCP send buffer. Default 4 MiB.
	Window int
}

// WithDefaults fills in zero fields.
func (c Config) WithDefaults() Config {
	if c.SynRetry <= 0 {
		c.SynRetry = time.Second
	}
	if c.Window <= 0 {
		c.Window = 4 << 20
	}
	return c
}

// Validate reports a configuration that cannot work. Zero or negative
// SynRetry and Window mean their defaults.
func (c Config) Validate() error {
	if err := c.Default.check(); err != nil {
		return errors.Wrap(err, "simnet: default")
	}
	return nil
}

// Network is a simulated network of named hosts. All its methods are safe
// for concurrent use. It starts no goroutine of its own: everything that
// waits does so in the caller's goroutine, on channels and timers, so it
// runs in virtual time inside a testing/synctest bubble.
type Network struct {
	cfg   Config
	start time.Time

	mu      sync.Mutex
	rng     *rand.Rand
	closed  bool
	hosts   map[string]*host
	links   map[link]*linkState
	conns   map[*pair]struct{}
	changed chan struct{} // closed and replaced on every fault
	events  []Event
	nextID  int
	// loss
	dropDial, resetConn float64
}

type link struct{ from, to string }

func (l link) String() string { return l.from + "->" + l.to }

// Link names a directed link, bytes from From to To, as Partition returns
// the links it cut.
type Link struct{ From, To string }

func (l Link) String() string { return l.From + "->" + l.To }

type host struct {
	name      string
	listeners map[string]*Listener // by port; "" is the host's bare name
	crashed   bool
	off       bool // powered off: crashed, and silent rather than resetting
	paused    bool
	delays    []LinkConfig // its settings, one per SetHost or AddHostDelay not undone
	delay     *LinkConfig  // the slowest of delays, nil if none
	port      int
}

// setDelays sets the host's settings and the one that applies.
func (h *host) setDelays(ds []LinkConfig) {
	h.delays, h.delay = ds, nil
	for i := range ds {
		if h.delay == nil || slower(ds[i], *h.delay) {
			h.delay = &ds[i]
		}
	}
}

// slower reports whether a is slower than b, by latency plus jitter.
func slower(a, b LinkConfig) bool { return a.Latency+a.Jitter > b.Latency+b.Jitter }

// closeListenersLocked closes every listener of the host, in port order.
func (h *host) closeListenersLocked() {
	ports := make([]string, 0, len(h.listeners))
	for p := range h.listeners {
		ports = append(ports, p)
	}
	sort.Strings(ports)
	for _, p := range ports {
		h.listeners[p].closeLocked()
	}
}

type linkState struct {
	cuts  int // cuts not healed yet: the link blackholes while any remain
	delay *LinkConfig
	stats LinkStats
}

// LinkStats counts what went over one directed link.
type LinkStats struct {
	From, To string
	Bytes    int64 // bytes written
	Writes   int64 // Write calls
	Opened   int64 // connections dialled from From to To
	Resets   int64 // connections between From and To reset by a fault
	Dropped  int64 // connection attempts dropped by loss
}

// Event is one fault applied to the network, at a time since New.
type Event struct {
	At     time.Duration `json:"at"`
	Kind   string        `json:"kind"`
	Detail string        `json:"detail,omitempty"`
}

func (e Event) String() string { return fmt.Sprintf("%v %s %s", e.At, e.Kind, e.Detail) }

// New returns an empty network. It panics on an invalid configuration,
// which is a programming error; call cfg.Validate first to check one.
func New(cfg Config) *Network {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &Network{
		cfg:     cfg,
		start:   time.Now(),
		rng:     rand.New(rand.NewPCG(uint64(cfg.Seed), 0x73696d6e6574)),
		hosts:   map[string]*host{},
		links:   map[link]*linkState{},
		conns:   map[*pair]struct{}{},
		changed: make(chan struct{}),
	}
}

// hostLocked returns the host, creating it.
func (n *Network) hostLocked(name string) *host {
	h := n.hosts[name]
	if h == nil {
		h = &host{name: name, port: 1 << 15}
		n.hosts[name] = h
	}
	return h
}

func (n *Network) linkLocked(from, to string) *linkState {
	l := n.links[link{from, to}]
	if l == nil {
		l = &linkState{stats: LinkStats{From: from, To: to}}
		n.links[link{from, to}] = l
	}
	return l
}

func (n *Network) cutLocked(from, to string) bool {
	l := n.links[link{from, to}]
	return l != nil && l.cuts > 0
}

// passLocked reports whether bytes from→to can be delivered now: the link
// is not cut, the receiver is not paused, and neither end is powered off.
func (n *Network) passLocked(from, to string) bool {
	if n.cutLocked(from, to) {
		return false
	}
	if h := n.hosts[to]; h != nil && (h.paused || h.off) {
		return false
	}
	if h := n.hosts[from]; h != nil && h.off {
		return false
	}
	return true
}

// delayLocked draws the delay of one write from→to: the link's own
// setting, else the slower of the two hosts' settings, else the default.
func (n *Network) delayLocked(from, to string) time.Duration {
	cfg := n.cfg.Default
	if l := n.links[link{from, to}]; l != nil && l.delay != nil {
		cfg = *l.delay
	} else {
		var hf, ht *LinkConfig
		if h := n.hosts[from]; h != nil {
			hf = h.delay
		}
		if h := n.hosts[to]; h != nil {
			ht = h.delay
		}
		switch {
		case hf != nil && ht != nil:
			cfg = *hf
			if slower(*ht, *hf) {
				cfg = *ht
			}
		case hf != nil:
			cfg = *hf
		case ht != nil:
			cfg = *ht
		}
	}
	d := cfg.Latency
	if cfg.Jitter > 0 {
		d += time.Duration(n.rng.Int64N(int64(cfg.Jitter) + 1))
	}
	return d
}

// changeLocked wakes everything that waits on the network's state.
func (n *Network) changeLocked(kind, detail string) {
	close(n.changed)
	n.changed = make(chan struct{})
	if kind != "" {
		n.events = append(n.events, Event{At: time.Since(n.start), Kind: kind, Detail: detail})
	}
}

// splitAddr splits "host" or "host:port" into its host and port.
func splitAddr(addr string) (host, port string) {
	if h, p, err := net.SplitHostPort(addr); err == nil {
		return h, p
	}
	return addr, ""
}

// Listen makes a host accept connections at addr: a host name, or
// "host:port" for one of several listeners of one host (a node's client
// and peer ports). Links, cuts and delays are the host's, whatever the
// port. A host has one listener per port at a time; a crashed host must
// Restart first.
func (n *Network) Listen(addr string) (*Listener, error) {
	hostName, port := splitAddr(addr)
	if hostName == "" {
		return nil, errors.New("simnet: listen: empty host name")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, errors.Wrap(net.ErrClosed, "simnet: listen")
	}
	h := n.hostLocked(hostName)
	if h.crashed {
		return nil, errors.Errorf("simnet: listen %s: host is crashed", addr)
	}
	if h.listeners[port] != nil {
		return nil, &net.OpError{Op: "listen", Net: "simnet", Addr: Addr{Host: hostName, Service: port}, Err: syscall.EADDRINUSE}
	}
	if h.listeners == nil {
		h.listeners = map[string]*Listener{}
	}
	l := &Listener{net: n, host: hostName, port: port, wake: make(chan struct{})}
	h.listeners[port] = l
	return l, nil
}

// Dialer returns a dial function for grpc.WithContextDialer that dials
// from host. The address is a host name or "host:port", optionally with a
// "passthrough:///" prefix.
func (n *Network) Dialer(from string) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		return n.Dial(ctx, from, strings.TrimPrefix(addr, "passthrough:///"))
	}
}

// Dial opens a connection from one host to another. Like TCP, it takes a
// round trip; it hangs while either direction is cut (until ctx is done),
// is refused after the round trip when nothing listens on the target, and,
// under loss, a dropped attempt is retried after Config.SynRetry. A paused
// host cannot dial: its Dial waits for Resume (or ctx), then goes on.
func (n *Network) Dial(ctx context.Context, from, addr string) (net.Conn, error) {
	to, port := splitAddr(addr)
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: "simnet", Source: Addr{Host: from}, Addr: Addr{Host: to, Service: port}, Err: err}
	}
	if from == "" || to == "" {
		return nil, opErr(errors.New("empty host name"))
	}
	for {
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			return nil, opErr(net.ErrClosed)
		}
		src := n.hostLocked(from)
		if src.crashed {
			n.mu.Unlock()
			return nil, opErr(errors.Errorf("host %s is crashed", from))
		}
		wait, changed := time.Duration(0), n.changed
		switch {
		case src.paused:
			wait = -1 // a stopped process cannot call connect: wait for Resume
		case n.cutLocked(from, to) || n.cutLocked(to, from) || n.hostLocked(to).off:
			wait = -1 // the SYN or its answer is blackholed: wait for a change
		case n.dropDial > 0 && n.rng.Float64() < n.dropDial:
			n.linkLocked(from, to).stats.Dropped++
			wait = n.cfg.SynRetry
		}
		rtt := n.delayLocked(from, to) + n.delayLocked(to, from)
		n.mu.Unlock()
		if wait != 0 {
			if err := sleep(ctx, wait, changed); err != nil {
				return nil, opErr(err)
			}
			continue
		}
		if err := sleep(ctx, rtt, nil); err != nil {
			return nil, opErr(err)
		}
		n.mu.Lock()
		if n.cutLocked(from, to) || n.cutLocked(to, from) {
			n.mu.Unlock()
			continue // cut during the handshake: try again
		}
		c, err := n.connectLocked(from, to, port)
		n.mu.Unlock()
		if err != nil {
			return nil, opErr(err)
		}
		return c, nil
	}
}

// connectLocked makes the connection and queues its far end on the
// listener.
func (n *Network) connectLocked(from, to, port string) (*Conn, error) {
	if n.closed {
		return nil, net.ErrClosed
	}
	src, dst := n.hostLocked(from), n.hostLocked(to)
	if src.crashed {
		return nil, errors.Errorf("host %s is crashed", from)
	}
	l := dst.listeners[port]
	if l == nil || dst.crashed {
		return nil, syscall.ECONNREFUSED
	}
	n.nextID++
	src.port++
	p := &pair{id: n.nextID}
	ab := &pipe{from: from, to: to}
	ba := &pipe{from: to, to: from}
	p.a = &Conn{net: n, pair: p, local: Addr{Host: from, Port: src.port}, remote: Addr{Host: to, Service: port}, out: ab, in: ba}
	p.b = &Conn{net: n, pair: p, local: Addr{Host: to, Service: port}, remote: Addr{Host: from, Port: src.port}, out: ba, in: ab}
	p.a.init()
	p.b.init()
	if n.resetConn > 0 && n.rng.Float64() < n.resetConn {
		p.resetAt = time.Now().Add(time.Duration(n.rng.Int64N(int64(2 * time.Second))))
	}
	n.conns[p] = struct{}{}
	n.linkLocked(from, to).stats.Opened++
	l.queue = append(l.queue, p.b)
	l.signal()
	return p.a, nil
}

// sleep waits d (forever if d < 0), until changed is closed, or until ctx
// is done.
func sleep(ctx context.Context, d time.Duration, changed <-chan struct{}) error {
	var tc <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		tc = t.C
	}
	select {
	case <-tc:
		return nil
	case <-changed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Partition cuts every link between hosts of different groups, both ways,
// and returns those links: each directed link once, however many groups
// hold its ends, in the order of the groups and their hosts. Hosts in no
// group keep their links. Two hosts are cut if one group holds one and
// another group the other, so a host in two groups is cut from every
// other host in any group: overlapping groups cannot express a bridge
// node that sees both sides. Build that shape with Cut.
//
// Partition heals nothing: each link it returns holds one more cut (see
// Cut), which whoever partitioned heals with HealLink, so partitions and
// cuts of different faults compose.
func (n *Network) Partition(groups ...[]string) []Link {
	n.mu.Lock()
	defer n.mu.Unlock()
	var cut []Link
	seen := map[link]bool{}
	for i, g := range groups {
		for j, o := range groups {
			if i == j {
				continue
			}
			for _, a := range g {
				for _, b := range o {
					if l := (link{a, b}); a != b && !seen[l] {
						seen[l] = true
						cut = append(cut, Link{a, b})
						n.linkLocked(a, b).cuts++
					}
				}
			}
		}
	}
	n.changeLocked("partition", fmt.Sprint(groups))
	return cut
}

// Cut blackholes the link from→to only; to→from stays open. Cuts are
// counted: the link stays cut until HealLink has healed each of its cuts
// (or Heal all), so that two faults cutting one link do not heal each
// other's.
func (n *Network) Cut(from, to string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.linkLocked(from, to).cuts++
	n.changeLocked("cut", link{from, to}.String())
}

// Heal removes every cut, whoever made it. Bytes held by cuts flow again.
// It is for the end of a run; a fault heals its own cuts with HealLink.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, l := range n.links {
		l.cuts = 0
	}
	n.changeLocked("heal", "")
}

// HealLink heals one cut of the directed link from→to, made by Cut or
// Partition. The link carries again, and the bytes it held flow, once no
// cut of it remains; a link without cuts stays as it is.
func (n *Network) HealLink(from, to string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if l := n.links[link{from, to}]; l != nil && l.cuts > 0 {
		l.cuts--
	}
	n.changeLocked("heal-link", link{from, to}.String())
}

// SetLink sets the delay of the directed link from→to, overriding the
// hosts' and the default delay. An invalid cfg (see LinkConfig.Validate)
// is an error and changes nothing.
func (n *Network) SetLink(from, to string, cfg LinkConfig) error {
	l := link{from, to}
	if err := cfg.check(); err != nil {
		return errors.Wrapf(err, "simnet: set-link %s", l)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.linkLocked(from, to).delay = &cfg
	n.changeLocked("set-link", l.String()+" "+cfg.String())
	return nil
}

// SetHost sets the delay of every link to and from host (a slow machine),
// replacing every setting the host held. Where both ends have a setting,
// the slower one applies; a link's own setting beats both. An invalid cfg
// is an error and changes nothing.
func (n *Network) SetHost(hostName string, cfg LinkConfig) error {
	if err := cfg.check(); err != nil {
		return errors.Wrapf(err, "simnet: set-host %s", hostName)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hostLocked(hostName).setDelays([]LinkConfig{cfg})
	n.changeLocked("set-host", hostName+" "+cfg.String())
	return nil
}

// AddHostDelay adds a delay setting to host, beside those it holds: its
// links take the slowest of them (by latency plus jitter), and
// RemoveHostDelay takes this one away again, so that faults slowing one
// host compose. An invalid cfg is an error and changes nothing.
func (n *Network) AddHostDelay(hostName string, cfg LinkConfig) error {
	if err := cfg.check(); err != nil {
		return errors.Wrapf(err, "simnet: add-host-delay %s", hostName)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.hostLocked(hostName)
	h.setDelays(append(slices.Clone(h.delays), cfg))
	n.changeLocked("add-host-delay", hostName+" "+cfg.String())
	return nil
}

// RemoveHostDelay removes one setting equal to cfg from host, leaving the
// others; a host without one stays as it is. Bytes already in flight keep
// their delay.
func (n *Network) RemoveHostDelay(hostName string, cfg LinkConfig) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if h := n.hosts[hostName]; h != nil {
		if i := slices.Index(h.delays, cfg); i >= 0 {
			h.setDelays(slices.Delete(slices.Clone(h.delays), i, i+1))
		}
	}
	n.changeLocked("remove-host-delay", hostName+" "+cfg.String())
}

// ClearHost removes every delay setting of host: its links take the other
// end's setting or the default again. Bytes already in flight keep their
// delay.
func (n *Network) ClearHost(hostName string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if h := n.hosts[hostName]; h != nil {
		h.setDelays(nil)
	}
	n.changeLocked("clear-host", hostName)
}

// SetLoss makes a fraction dropDial of new connection attempts be dropped
// (and retried, as TCP retries a SYN), and resets a fraction resetConn of
// the open connections now and of new ones within two seconds of opening.
// A TCP stream cannot lose bytes in its middle, so loss is modelled at the
// connection level. SetLoss(0, 0) stops it.
func (n *Network) SetLoss(dropDial, resetConn float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dropDial, n.resetConn = clamp(dropDial), clamp(resetConn)
	if n.resetConn > 0 {
		for _, p := range n.sortedConnsLocked() {
			if n.rng.Float64() < n.resetConn {
				n.resetPairLocked(p)
			}
		}
	}
	n.changeLocked("loss", fmt.Sprintf("drop-dial=%g reset-conn=%g", n.dropDial, n.resetConn))
}

func clamp(f float64) float64 { return max(0, min(1, f)) }

// sortedConnsLocked lists open connections in opening order, so seeded
// choices among them do not depend on map order.
func (n *Network) sortedConnsLocked() []*pair {
	ps := make([]*pair, 0, len(n.conns))
	for p := range n.conns {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].id < ps[j].id })
	return ps
}

// Reset resets every open connection between from and to, whichever side
// dialled: both ends get ECONNRESET at once and unread bytes are lost.
func (n *Network) Reset(from, to string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.sortedConnsLocked() {
		a, b := p.a.local.Host, p.b.local.Host
		if a == from && b == to || a == to && b == from {
			n.resetPairLocked(p)
		}
	}
	n.changeLocked("reset", link{from, to}.String())
}

func (n *Network) resetPairLocked(p *pair) {
	if p.reset {
		return
	}
	p.reset = true
	n.linkLocked(p.a.local.Host, p.b.local.Host).stats.Resets++
	p.a.out.drop()
	p.b.out.drop()
	p.a.signal()
	p.b.signal()
	delete(n.conns, p)
}

// Crash kills host's process: its listener closes, every connection it has
// is reset at once (the peers see the error), and it can neither dial nor
// listen until Restart.
func (n *Network) Crash(hostName string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.hostLocked(hostName)
	h.crashed, h.paused = true, false
	h.closeListenersLocked()
	for _, p := range n.sortedConnsLocked() {
		if p.a.local.Host == hostName || p.b.local.Host == hostName {
			n.resetPairLocked(p)
		}
	}
	n.changeLocked("crash", hostName)
}

// PowerOff cuts a host's power. Its process dies as in Crash, but no
// reset leaves a machine without power: its peers see silence (their reads
// wait, their writes queue, their dials hang) until their own timeouts.
// When Restart brings the machine back, it answers the connections it
// forgot with resets.
func (n *Network) PowerOff(hostName string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.hostLocked(hostName)
	h.crashed, h.off, h.paused = true, true, false
	h.closeListenersLocked()
	for _, p := range n.sortedConnsLocked() {
		for _, c := range []*Conn{p.a, p.b} {
			if c.local.Host == hostName && !c.closed {
				c.dead = true // its process is gone; the peer is not told
				c.signal()
			}
		}
	}
	n.changeLocked("power-off", hostName)
}

// Restart lets a crashed host listen and dial again. A host that was
// powered off resets the connections it had.
func (n *Network) Restart(hostName string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.hostLocked(hostName)
	if h.off {
		for _, p := range n.sortedConnsLocked() {
			if p.a.local.Host == hostName || p.b.local.Host == hostName {
				n.resetPairLocked(p)
			}
		}
	}
	h.crashed, h.off = false, false
	n.changeLocked("restart", hostName)
}

// Pause freezes host, like SIGSTOP: it reads and accepts nothing, and its
// writes and dials block; bytes sent to it wait. Peers see silence, not
// errors.
func (n *Network) Pause(hostName string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hostLocked(hostName).paused = true
	n.changeLocked("pause", hostName)
}

// Resume ends a Pause.
func (n *Network) Resume(hostName string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hostLocked(hostName).paused = false
	n.changeLocked("resume", hostName)
}

// Events returns the faults applied so far, in order.
func (n *Network) Events() []Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Event(nil), n.events...)
}

// Stats returns the counters of every link that carried anything, sorted
// by link.
func (n *Network) Stats() []LinkStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]LinkStats, 0, len(n.links))
	for _, l := range n.links {
		if l.stats != (LinkStats{From: l.stats.From, To: l.stats.To}) {
			out = append(out, l.stats)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].From != out[j].From {
			return out[i].From < out[j].From
		}
		return out[i].To < out[j].To
	})
	return out
}

// Close shuts the network: listeners and connections close, blocked calls
// return, and further dials fail.
func (n *Network) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	for _, h := range n.hosts {
		h.closeListenersLocked()
	}
	for _, p := range n.sortedConnsLocked() {
		p.a.closeLocked(net.ErrClosed)
		p.b.closeLocked(net.ErrClosed)
		delete(n.conns, p)
	}
	n.changeLocked("close", "")
	return nil
}

// Addr is a host's address on the network.
type Addr struct {
	Host string
	Port int
	// Service is the named port of a listener ("" for the bare host).
	Service string
}

func (Addr) Network() string { return "simnet" }
func (a Addr) String() string {
	if a.Service != "" {
		return a.Host + ":" + a.Service
	}
	return fmt.Sprintf("%s:%d", a.Host, a.Port)
}
