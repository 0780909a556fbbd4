// Package proxy is the process mode's delay: a TCP proxy for one directed
// peer link that can delay, stall, black-hole and reset the bytes it
// carries. This machine's kernel has no netem, so delay cannot be a
// qdisc; like etcd's robustness tests, the lab routes each peer link
// through a proxy of its own instead (package process/netns redirects a
// node's connections to it).
//
// It is our own rather than toxiproxy: the lab needs per-direction
// settings that change under live connections, seeded jitter, and a
// reset that sends RSTs to both ends, all in process, while toxiproxy
// brings an HTTP control API, a toxic pipeline and its dependencies for
// the same few hundred lines.
//
// A Link accepts connections on a listener and dials the upstream for
// each. Bytes flow two ways: Forward (from the dialler to the upstream:
// a node's requests to its peer) and Backward (the answers). Each way
// has its own Settings:
//
//   - Latency and Jitter delay every chunk of bytes by Latency plus a
//     uniform random share of Jitter, drawn from the link's seed. Bytes
//     keep their order, as TCP's do: a chunk is never sent before the one
//     read before it.
//   - Stall holds the bytes: they are neither lost nor sent until the
//     stall ends. Past a small buffer, the sender's kernel holds the rest
//     (TCP's flow control).
//   - Blackhole throws the bytes away. The connection stays open; what
//     was lost is lost, as on a network that silently drops.
//
// Reset resets every connection open now, both its ends, with RSTs.
//
// The proxy's delay is on bytes as read from a socket, so it does not
// model TCP's own behaviour under loss; the lab's nftables cuts act on
// the wire after the proxy, so cuts and delays compose.
package proxy

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/pkg/errors"
)

// MaxDelay bounds Latency and Jitter: a longer delay is a mistake.
const MaxDelay = time.Minute

// Direction is one way of a link.
type Direction int

const (
	// Forward is from the dialler to the upstream.
	Forward Direction = iota
	// Backward is from the upstream to the dialler.
	Backward
)

func (d Direction) String() string {
	if d == Backward {
		return "backward"
	}
	return "forward"
}

// Settings say what a link does to one way of its bytes. The zero value
// passes them at once.
type Settings struct {
	Latency, Jitter time.Duration
	Stall           bool
	Blackhole       bool
}

// Validate reports a setting out of range.
func (s Settings) Validate() error {
	switch {
	case s.Latency < 0 || s.Jitter < 0:
		return errors.Errorf("proxy: delay %v±%v: negative", s.Latency, s.Jitter)
	case s.Latency > MaxDelay || s.Jitter > MaxDelay:
		return errors.Errorf("proxy: delay %v±%v: over %v", s.Latency, s.Jitter, MaxDelay)
	}
	return nil
}

func (s Settings) String() string {
	out := fmt.Sprintf("%v±%v", s.Latency, s.Jitter)
	if s.Stall {
		out += " stalled"
	}
	if s.Blackhole {
		out += " black-holed"
	}
	return out
}

// Config is a link to make. Listener and Dial are required.
type Config struct {
	// Name is the link's name in errors, "n1->n2" say.
	Name string
	// Listener is where the link accepts; the link closes it.
	Listener net.Listener
	// Dial connects to the upstream, once per accepted connection.
	Dial func(ctx context.Context) (net.Conn, error)
	// DialTimeout bounds Dial (default 5s).
	DialTimeout time.Duration
	// Seed drives the jitter.
	Seed uint64
}

// Link is one running proxy. Its methods are safe for concurrent use.
type Link struct {
	cfg Config

	mu       sync.Mutex
	rng      *rand.Rand
	set      [2]Settings
	changed  chan struct{} // closed and replaced when settings change
	conns    map[*pair]bool
	accepted int
	closed   bool

	wg   sync.WaitGroup
	quit chan struct{}
}

// pair is one proxied connection: down is the dialler's, up the
// upstream's.
type pair struct {
	down, up net.Conn
	once     sync.Once
}

// New starts a link serving on cfg.Listener.
func New(cfg Config) (*Link, error) {
	switch {
	case cfg.Listener == nil:
		return nil, errors.Errorf("proxy %s: no listener", cfg.Name)
	case cfg.Dial == nil:
		return nil, errors.Errorf("proxy %s: no dial function", cfg.Name)
	case cfg.DialTimeout < 0:
		return nil, errors.Errorf("proxy %s: negative dial timeout", cfg.Name)
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	l := &Link{
		cfg:     cfg,
		rng:     rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b9)),
		changed: make(chan struct{}),
		conns:   map[*pair]bool{},
		quit:    make(chan struct{}),
	}
	l.wg.Add(1)
	go l.serve()
	return l, nil
}

// Addr is where the link accepts.
func (l *Link) Addr() net.Addr { return l.cfg.Listener.Addr() }

// Set changes what the link does to one way of its bytes, on open
// connections too. A new latency applies to bytes read from now on.
func (l *Link) Set(d Direction, s Settings) error {
	if d != Forward && d != Backward {
		return errors.Errorf("proxy %s: no direction %d", l.cfg.Name, d)
	}
	if err := s.Validate(); err != nil {
		return errors.Wrap(err, l.cfg.Name)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.set[d] = s
	close(l.changed)
	l.changed = make(chan struct{})
	return nil
}

// Settings returns what the link does to one way now.
func (l *Link) Settings(d Direction) Settings {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.set[d&1]
}

// Reset resets every connection open now, both ends, and returns how
// many it reset.
func (l *Link) Reset() int {
	l.mu.Lock()
	ps := make([]*pair, 0, len(l.conns))
	for p := range l.conns {
		ps = append(ps, p)
	}
	l.mu.Unlock()
	for _, p := range ps {
		p.reset()
	}
	return len(ps)
}

// Open returns how many connections the link carries now, and how many
// it accepted in all.
func (l *Link) Open() (open, accepted int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns), l.accepted
}

// Close stops accepting, resets every connection and waits for the
// link's goroutines. A second Close does nothing.
func (l *Link) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.quit)
	l.mu.Unlock()
	err := l.cfg.Listener.Close()
	l.Reset()
	l.wg.Wait()
	return err
}

func (l *Link) serve() {
	defer l.wg.Done()
	for {
		c, err := l.cfg.Listener.Accept()
		if err != nil {
			return // closed; a listener that fails otherwise cannot be served either
		}
		l.wg.Add(1)
		go l.carry(c)
	}
}

// carry dials the upstream for one accepted connection and pumps both
// ways until either ends.
func (l *Link) carry(down net.Conn) {
	defer l.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.DialTimeout)
	go func() {
		select {
		case <-l.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	up, err := l.cfg.Dial(ctx)
	cancel()
	if err != nil {
		// The dialler sees what a failed connect through a middlebox
		// looks like: a reset.
		resetConn(down)
		return
	}
	p := &pair{down: down, up: up}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		p.reset()
		return
	}
	l.conns[p] = true
	l.accepted++
	l.mu.Unlock()

	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() { defer pumps.Done(); l.pump(p, Forward, down, up) }()
	go func() { defer pumps.Done(); l.pump(p, Backward, up, down) }()
	pumps.Wait()
	p.close()
	l.mu.Lock()
	delete(l.conns, p)
	l.mu.Unlock()
}

// chunk is bytes read and the time they may be written.
type chunk struct {
	b   []byte
	due time.Time
}

// pump carries one way: a reader stamps each chunk with its due time, a
// writer sends it then. When either side ends, the whole pair ends, as a
// proxy cannot half-close faithfully under faults.
func (l *Link) pump(p *pair, d Direction, from, to net.Conn) {
	q := make(chan chunk, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			if !l.await(d, c.due) {
				p.close()
				for range q { // let the reader finish
				}
				return
			}
			if l.Settings(d).Blackhole {
				continue
			}
			if _, err := to.Write(c.b); err != nil {
				p.close()
				for range q {
				}
				return
			}
		}
	}()
	var last time.Time
	for {
		b := make([]byte, 32<<10)
		n, err := from.Read(b)
		if n > 0 {
			s := l.Settings(d)
			due := time.Now().Add(s.Latency + l.jitter(s.Jitter))
			if due.Before(last) {
				due = last
			}
			last = due
			select {
			case q <- chunk{b: b[:n], due: due}:
			case <-done:
			}
		}
		if err != nil {
			break
		}
	}
	close(q)
	<-done
	p.close()
}

// await waits until due and no stall holds the way; false if the link
// closed first.
func (l *Link) await(d Direction, due time.Time) bool {
	for {
		l.mu.Lock()
		stalled, changed := l.set[d].Stall, l.changed
		l.mu.Unlock()
		wait := time.Until(due)
		if !stalled && wait <= 0 {
			return true
		}
		var timer <-chan time.Time
		var t *time.Timer
		if !stalled {
			t = time.NewTimer(wait)
			timer = t.C
		}
		select {
		case <-timer:
		case <-changed:
		case <-l.quit:
			return false
		}
		if t != nil {
			t.Stop()
		}
	}
}

func (l *Link) jitter(j time.Duration) time.Duration {
	if j <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Duration(l.rng.Int64N(int64(j) + 1))
}

func (p *pair) close() {
	p.once.Do(func() {
		p.down.Close()
		p.up.Close()
	})
}

func (p *pair) reset() {
	p.once.Do(func() {
		resetConn(p.down)
		resetConn(p.up)
	})
}

// resetConn closes c with a RST rather than a FIN.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

var _ io.Closer = (*Link)(nil)
