package simnet

import (
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// pair is one connection: its two ends and what faults did to it.
type pair struct {
	id      int
	a, b    *Conn // a dialled, b was accepted
	reset   bool
	resetAt time.Time // under loss: when the connection will be reset
}

// chunk is one write in flight, due at a time.
type chunk struct {
	data []byte
	at   time.Time
	eof  bool
}

// pipe is one direction of a connection: a FIFO of writes, each delivered
// at its due time unless the link is cut or the reader is paused.
type pipe struct {
	from, to string
	chunks   []chunk
	last     time.Time // due time of the last chunk: keeps the pipe FIFO
	reader   *Conn
	writer   *Conn
	queued   int  // bytes written and not yet read
	full     bool // the writer waits for room
	// rst: a write reached the closed reader, whose kernel answers with
	// RST; later writes fail with EPIPE.
	rst bool
}

func (p *pipe) drop() {
	p.chunks, p.queued = nil, 0
	if p.full {
		p.full = false
		p.writer.signal()
	}
}

// consumed frees k bytes of the window and wakes a writer waiting for room.
func (p *pipe) consumed(k, window int) {
	p.queued -= k
	if p.full && p.queued < window {
		p.full = false
		p.writer.signal()
	}
}

// Conn is one end of a simulated TCP connection. It implements net.Conn,
// deadlines included.
type Conn struct {
	net           *Network
	pair          *pair
	local, remote Addr
	out, in       *pipe

	// guarded by net.mu
	dead     bool // its host lost power: local calls fail, the peer hears nothing
	closed   bool
	closeErr error // what local calls return once closed
	rdl, wdl time.Time
	wake     chan struct{}
}

func (c *Conn) init() {
	c.wake = make(chan struct{})
	c.in.reader = c
	c.out.writer = c
}

// signal wakes the goroutines blocked on c.
func (c *Conn) signal() {
	close(c.wake)
	c.wake = make(chan struct{})
}

func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "simnet", Source: c.local, Addr: c.remote, Err: err}
}

// stateLocked returns the error local calls must return now, if any.
func (c *Conn) stateLocked(now time.Time) error {
	if c.closed {
		return c.closeErr
	}
	if c.dead {
		return net.ErrClosed
	}
	p := c.pair
	if !p.reset && !p.resetAt.IsZero() && !now.Before(p.resetAt) {
		c.net.resetPairLocked(p)
	}
	if p.reset {
		return syscall.ECONNRESET
	}
	return nil
}

// usableLocked returns the error op must fail with now: the connection is
// closed or reset, or the deadline has passed.
func (c *Conn) usableLocked(op string, deadline, now time.Time) error {
	if err := c.stateLocked(now); err != nil {
		return c.opErr(op, err)
	}
	if !deadline.IsZero() && !now.Before(deadline) {
		return c.opErr(op, os.ErrDeadlineExceeded)
	}
	return nil
}

// Read returns bytes whose delay has passed. It blocks while the link is
// cut or this host is paused, and returns io.EOF after the peer closed and
// everything it wrote was read.
func (c *Conn) Read(b []byte) (int, error) {
	n := c.net
	n.mu.Lock()
	defer n.mu.Unlock()
	for {
		now := time.Now()
		if err := c.usableLocked("read", c.rdl, now); err != nil {
			return 0, err
		}
		wait := time.Duration(-1)
		p := c.in
		if len(p.chunks) > 0 && n.passLocked(p.from, p.to) {
			ch := &p.chunks[0]
			if !ch.at.After(now) {
				if ch.eof {
					return 0, io.EOF
				}
				if len(b) == 0 {
					return 0, nil
				}
				k := copy(b, ch.data)
				ch.data = ch.data[k:]
				p.consumed(k, n.cfg.Window)
				if len(ch.data) == 0 {
					p.chunks[0] = chunk{}
					p.chunks = p.chunks[1:]
				}
				return k, nil
			}
			wait = ch.at.Sub(now)
		}
		wait = minWait(wait, c.rdl, now)
		if rt := c.pair.resetAt; !rt.IsZero() {
			wait = minWait(wait, rt, now)
		}
		c.waitLocked(wait)
	}
}

// minWait returns the shorter of wait (-1: forever) and the time until t
// (zero: never).
func minWait(wait time.Duration, t, now time.Time) time.Duration {
	if t.IsZero() {
		return wait
	}
	d := t.Sub(now)
	if wait < 0 || d < wait {
		return d
	}
	return wait
}

// waitLocked releases the network's lock until c is signalled, the network
// changes, or wait passes (-1: no limit).
func (c *Conn) waitLocked(wait time.Duration) {
	n := c.net
	wake, changed := c.wake, n.changed
	n.mu.Unlock()
	defer n.mu.Lock()
	var tc <-chan time.Time
	if wait >= 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		tc = t.C
	}
	select {
	case <-wake:
	case <-changed:
	case <-tc:
	}
}

// Write queues b for delivery after the link's delay. Writes are
// pipelined: a write does not wait for the ones before it to arrive. It
// blocks while this host is paused, and while Config.Window bytes are
// written and unread (a full TCP send buffer). As on TCP, once the peer
// has closed, one more write succeeds (and is lost: the peer answers it
// with RST) and every later one fails with EPIPE.
func (c *Conn) Write(b []byte) (int, error) {
	n := c.net
	n.mu.Lock()
	defer n.mu.Unlock()
	for {
		now := time.Now()
		if err := c.usableLocked("write", c.wdl, now); err != nil {
			return 0, err
		}
		h := n.hosts[c.local.Host]
		if (h == nil || !h.paused) && (c.out.queued < n.cfg.Window || c.out.reader.closed) {
			break
		}
		if c.out.queued >= n.cfg.Window {
			c.out.full = true
		}
		wait := minWait(-1, c.wdl, now)
		if rt := c.pair.resetAt; !rt.IsZero() {
			wait = minWait(wait, rt, now)
		}
		c.waitLocked(wait)
	}
	p := c.out
	if p.rst {
		return 0, c.opErr("write", syscall.EPIPE)
	}
	st := &n.linkLocked(p.from, p.to).stats
	st.Writes++
	st.Bytes += int64(len(b))
	if len(b) == 0 {
		return 0, nil // nothing is sent, so nothing draws the RST
	}
	if p.reader.closed {
		p.rst = true // the peer will never read it
		return len(b), nil
	}
	p.queued += len(b)
	p.push(chunk{data: append([]byte(nil), b...)}, n.delayLocked(p.from, p.to))
	return len(b), nil
}

// push queues ch, due after delay but never before the chunk ahead of it.
func (p *pipe) push(ch chunk, delay time.Duration) {
	ch.at = time.Now().Add(delay)
	if ch.at.Before(p.last) {
		ch.at = p.last
	}
	p.last = ch.at
	p.chunks = append(p.chunks, ch)
	p.reader.signal()
}

// Close closes this end. The peer reads what was already sent, then
// io.EOF, after the link's delay.
func (c *Conn) Close() error {
	n := c.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if c.closed {
		return c.opErr("close", net.ErrClosed)
	}
	if c.dead {
		return nil // a process without power sends no FIN
	}
	if !c.pair.reset {
		c.out.push(chunk{eof: true}, n.delayLocked(c.out.from, c.out.to))
	}
	c.closeLocked(net.ErrClosed)
	if c.pair.a.closed && c.pair.b.closed {
		delete(n.conns, c.pair)
	}
	return nil
}

func (c *Conn) closeLocked(err error) {
	if c.closed {
		return
	}
	c.closed, c.closeErr = true, err
	c.in.drop()
	c.signal()
}

func (c *Conn) LocalAddr() net.Addr  { return c.local }
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	c.rdl, c.wdl = t, t
	c.signal()
	return nil
}

// SetReadDeadline makes a blocked and future Read fail once t passes.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	c.rdl = t
	c.signal()
	return nil
}

// SetWriteDeadline makes a blocked and future Write fail once t passes.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	c.wdl = t
	c.signal()
	return nil
}

// Listener accepts the connections dialled to its host. It implements
// net.Listener.
type Listener struct {
	net    *Network
	host   string
	port   string
	queue  []*Conn
	closed bool
	wake   chan struct{}
}

func (l *Listener) signal() {
	close(l.wake)
	l.wake = make(chan struct{})
}

// Accept returns the next connection. It blocks while the host is paused,
// as a stopped process does not accept (the kernel still completes the
// handshake, so dials succeed).
func (l *Listener) Accept() (net.Conn, error) {
	n := l.net
	n.mu.Lock()
	defer n.mu.Unlock()
	for {
		if l.closed {
			return nil, &net.OpError{Op: "accept", Net: "simnet", Addr: l.Addr(), Err: net.ErrClosed}
		}
		h := n.hosts[l.host]
		if len(l.queue) > 0 && !h.paused {
			c := l.queue[0]
			l.queue = l.queue[1:]
			return c, nil
		}
		wake, changed := l.wake, n.changed
		n.mu.Unlock()
		select {
		case <-wake:
		case <-changed:
		}
		n.mu.Lock()
	}
}

// Close stops the listener; connections already accepted stay open, those
// still queued are reset.
func (l *Listener) Close() error {
	l.net.mu.Lock()
	defer l.net.mu.Unlock()
	if l.closed {
		return &net.OpError{Op: "close", Net: "simnet", Addr: l.Addr(), Err: net.ErrClosed}
	}
	l.closeLocked()
	return nil
}

func (l *Listener) closeLocked() {
	if l.closed {
		return
	}
	l.closed = true
	for _, c := range l.queue {
		l.net.resetPairLocked(c.pair)
	}
	l.queue = nil
	if h := l.net.hosts[l.host]; h != nil && h.listeners[l.port] == l {
		delete(h.listeners, l.port)
	}
	l.signal()
}

// Addr is the host's address.
func (l *Listener) Addr() net.Addr { return Addr{Host: l.host, Service: l.port} }
