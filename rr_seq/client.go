package rr_seq

import (
	"context"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/errors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/seqlab/seqlab/rr_seq/pb"
	"github.com/seqlab/seqlab/seq"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// Nodes are the addresses of the cluster's nodes. Required.
	Nodes []string
	// Name is the sequence; default "default".
	Name string
	// RangeSize is how many IDs one fetch asks for: the buffer size.
	// Default 1024.
	RangeSize uint64
	// FetchTimeout bounds one fetch from one node; default 2s.
	FetchTimeout time.Duration
	// Dialer, when set, dials the nodes (the lab's simulated network).
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
	// DialOptions are added to every connection.
	DialOptions []grpc.DialOption
	// OnFetch, when set, is called at the start and at the end of every
	// range fetch, from the goroutine doing the fetch. The lab records
	// these as next-range operations.
	OnFetch func(FetchEvent)
	// Lookahead is how many ranges' worth of IDs the client keeps buffered
	// or being fetched, and the most fetches it runs at once; default 1.
	// Fetches in flight at once go to one node, which coalesces them
	// into one allocation.
	Lookahead int
	// StartNode is the index in Nodes of the first node to ask. The client
	// stays with a node while it answers and moves to the next one when a
	// fetch from it fails.
	StartNode int
	// AdaptiveMax, when above RangeSize, makes the range size adaptive: a
	// caller that finds the buffer empty doubles it, up to AdaptiveMax,
	// and a fetch that comes more than IdleAfter after the last one halves
	// it, down to RangeSize. Larger ranges cost fewer round trips per ID
	// and lose more IDs as gaps when a client goes away. Off by default.
	AdaptiveMax uint64
	// IdleAfter is the pause between fetches that counts as idle for
	// AdaptiveMax; default 1s.
	IdleAfter time.Duration
	// RoundRobin sends each fetch to the next node in turn instead, with
	// no hint: the client before sticky nodes and hints, kept to measure
	// against.
	RoundRobin bool
}

// FetchPhase says where a fetch is.
type FetchPhase int

const (
	// FetchInvoke: a fetch is about to be sent.
	FetchInvoke FetchPhase = iota
	// FetchOK: the node returned Range.
	FetchOK
	// FetchFailed: the node certainly allocated nothing (bad request).
	FetchFailed
	// FetchUnknown: the fetch failed in a way that leaves open whether the
	// cluster allocated a range (timeout, unavailable, connection lost).
	FetchUnknown
)

// FetchEvent reports one step of one range fetch.
type FetchEvent struct {
	Fetch uint64 // numbers the fetches of one client, from 1
	// Slot is in 0..Lookahead-1: fetches in one slot never overlap in
	// time, so each slot reads as one sequential process in a history.
	Slot  int
	Phase FetchPhase
	Node  string // the address asked
	Name  string
	N     uint64
	Range seq.Range // FetchOK only
	Err   error     // FetchFailed and FetchUnknown only
}

// WithDefaults returns c with every unset optional field filled in.
func (c ClientConfig) WithDefaults() ClientConfig {
	if c.Name == "" {
		c.Name = "default"
	}
	if c.RangeSize == 0 {
		c.RangeSize = 1024
	}
	if c.FetchTimeout == 0 {
		c.FetchTimeout = 2 * time.Second
	}
	if c.Lookahead == 0 {
		c.Lookahead = 1
	}
	if c.IdleAfter == 0 {
		c.IdleAfter = time.Second
	}
	return c
}

// Validate returns an error unless c (after WithDefaults) is usable.
func (c ClientConfig) Validate() error {
	if len(c.Nodes) == 0 {
		return errors.Wrap(seq.ErrInvalidArgument, "client config: no nodes")
	}
	for _, n := range c.Nodes {
		if n == "" {
			return errors.Wrap(seq.ErrInvalidArgument, "client config: empty node address")
		}
	}
	if c.Lookahead < 1 || c.Lookahead > 64 {
		return errors.Wrapf(seq.ErrInvalidArgument, "client config: Lookahead %d outside 1..64", c.Lookahead)
	}
	if c.StartNode < 0 {
		return errors.Wrap(seq.ErrInvalidArgument, "client config: negative StartNode")
	}
	if c.AdaptiveMax > 0 && (c.AdaptiveMax < c.RangeSize || c.AdaptiveMax > DefaultMaxRange) {
		return errors.Wrapf(seq.ErrInvalidArgument, "client config: AdaptiveMax %d outside RangeSize..%d", c.AdaptiveMax, uint64(DefaultMaxRange))
	}
	if c.IdleAfter < 0 {
		return errors.Wrap(seq.ErrInvalidArgument, "client config: negative IdleAfter")
	}
	if c.FetchTimeout < 0 {
		return errors.Wrap(seq.ErrInvalidArgument, "client config: negative FetchTimeout")
	}
	return errors.Wrap(ValidateRangeRequest(c.Name, c.RangeSize, 0), "client config")
}

// Client is a seq.Sequencer backed by an rr_seq cluster. It fetches ranges
// of RangeSize IDs from one node at a time (the next when one fails), each
// fetch carrying the end of the last range as a hint, and hands their IDs out in
// strictly increasing order. It keeps Lookahead ranges' worth of IDs
// buffered or being fetched, with up to Lookahead fetches in flight, so a
// caller rarely waits for the network. A failed fetch is retried on the next
// node. Should the cluster ever return IDs at or below one already handed
// out, the client skips them rather than break its order.
type Client struct {
	cfg     ClientConfig
	conns   []*grpc.ClientConn
	clients []pb.SequencerClient
	node    atomic.Uint64
	fetches atomic.Uint64
	after   atomic.Uint64 // the highest end of a range fetched: the hint
	cur     atomic.Pointer[span]

	mu        sync.Mutex
	buf       *Buffer
	slots     []bool        // slots[i]: a fetch runs in slot i
	kick      []chan uint64 // kick[i] hands slot i's fetcher the size of its next fetch
	inflight  int
	changed   chan struct{} // closed when a fetch ends
	lastErr   error
	lastFetch time.Time // when the last fetch started (AdaptiveMax)
	stalledAt uint64    // the fetch count at the last stall (AdaptiveMax)

	stop    context.Context
	stopNow context.CancelFunc
	wg      sync.WaitGroup
	closed  atomic.Bool
}

var _ seq.Sequencer = (*Client)(nil)

// NewClient connects (lazily) to the cluster.
func NewClient(cfg ClientConfig) (*Client, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := dialOptions()
	if cfg.Dialer != nil {
		opts = append(opts, grpc.WithContextDialer(cfg.Dialer))
	}
	opts = append(opts, cfg.DialOptions...)
	c := &Client{cfg: cfg, buf: NewBuffer(cfg.RangeSize, cfg.Lookahead), slots: make([]bool, cfg.Lookahead), changed: make(chan struct{})}
	c.buf.Adapt(cfg.AdaptiveMax)
	for _, addr := range cfg.Nodes {
		cc, err := grpc.NewClient("passthrough:///"+addr, opts...)
		if err != nil {
			c.closeConns()
			return nil, errors.Wrapf(err, "connect to %s", addr)
		}
		c.conns = append(c.conns, cc)
		c.clients = append(c.clients, pb.NewSequencerClient(cc))
	}
	c.node.Store(uint64(cfg.StartNode))
	c.stop, c.stopNow = context.WithCancel(context.Background())
	c.kick = make([]chan uint64, cfg.Lookahead)
	for slot := range c.kick {
		c.kick[slot] = make(chan uint64, 1)
	}
	for slot := range c.kick {
		c.wg.Add(1)
		go c.fetcher(slot)
	}
	return c, nil
}

// span is the range Next hands out from without the lock: IDs next..to-1,
// taken from the buffer whole (Buffer.TakeRange). A new span is stored only
// once this one is used up, and holds only IDs above it.
type span struct {
	next atomic.Uint64
	to   uint64
	// mark is the ID whose taker checks, under the lock, whether to start a
	// fetch: the first at which the IDs left fall short of Buffer.Room.
	mark atomic.Uint64
}

// take hands out the span's next ID, if any is left.
func (s *span) take() (uint64, bool) {
	for {
		id := s.next.Load()
		if id >= s.to {
			return 0, false
		}
		if s.next.CompareAndSwap(id, id+1) { // never past to: no wrap at the top
			return id, true
		}
	}
}

// left is how many IDs the span still holds.
func (s *span) left() uint64 {
	if id := s.next.Load(); id < s.to {
		return s.to - id
	}
	return 0
}

// Next returns the next ID.
func (c *Client) Next(ctx context.Context) (seq.ID, error) {
	if s := c.cur.Load(); s != nil && !c.closed.Load() {
		if id, ok := s.take(); ok {
			if id == s.mark.Load() {
				c.mu.Lock()
				c.refill()
				c.mu.Unlock()
			}
			return seq.ID(id), nil
		}
	}
	return c.nextSlow(ctx)
}

// nextSlow installs the next span, or waits for a fetch to bring one.
func (c *Client) nextSlow(ctx context.Context) (seq.ID, error) {
	c.mu.Lock()
	for {
		if c.closed.Load() {
			c.mu.Unlock()
			return 0, seq.ErrClosed
		}
		if s := c.cur.Load(); s != nil { // another caller stored a span meanwhile
			if id, ok := s.take(); ok {
				c.refill()
				c.mu.Unlock()
				return seq.ID(id), nil
			}
		}
		if r, ok := c.buf.TakeRange(); ok {
			s := &span{to: uint64(r.To)}
			s.next.Store(uint64(r.From) + 1)
			c.cur.Store(s)
			c.refill()
			c.mu.Unlock()
			return r.From, nil
		}
		if f := c.fetches.Load(); f > 0 && f != c.stalledAt { // once per fetch
			c.stalledAt = f
			c.buf.Stalled()
		}
		c.refill()
		wait := c.changed
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			c.mu.Lock()
			err := c.lastErr
			c.mu.Unlock()
			if err != nil {
				return 0, errors.Wrapf(ctx.Err(), "rr_seq client: next (last fetch: %v)", err)
			}
			return 0, errors.Wrap(ctx.Err(), "rr_seq client: next")
		}
		c.mu.Lock()
	}
}

// refill starts fetches until Lookahead ranges' worth of IDs are held,
// buffered or on their way, and marks the ID at which to look again; c.mu
// held.
func (c *Client) refill() {
	s := c.cur.Load()
	var held uint64
	if s != nil {
		held = s.left()
	}
	defer c.setMark(s)
	for c.buf.Room(c.inflight) > held {
		slot := 0
		for c.slots[slot] {
			slot++
		}
		c.slots[slot] = true
		c.inflight++
		now := time.Now()
		if !c.lastFetch.IsZero() && now.Sub(c.lastFetch) > c.cfg.IdleAfter {
			c.buf.Idle()
		}
		c.lastFetch = now
		c.kick[slot] <- c.buf.RangeSize() // the slot was free: never blocks
	}
}

// setMark marks the ID of s whose taker calls refill: the first at which
// the IDs left fall short of the buffer's room; c.mu held. Should a taker
// pass the mark while it moves, refill waits for the span's end.
func (c *Client) setMark(s *span) {
	if s == nil {
		return
	}
	room := c.buf.Room(c.inflight)
	if room == 0 {
		s.mark.Store(math.MaxUint64) // never an ID: to is at most MaxUint64
		return
	}
	mark := uint64(0)
	if room < s.to {
		mark = s.to - room
	}
	s.mark.Store(max(mark, s.next.Load()))
}

// fetcher runs the fetches of one slot, on one long-lived goroutine: a
// goroutine per fetch grew its stack through gRPC's call path every time
// (a third of the client's fetch time in a profile).
func (c *Client) fetcher(slot int) {
	defer c.wg.Done()
	for {
		select {
		case n := <-c.kick[slot]:
			c.fetch(slot, n)
		case <-c.stop.Done():
			return
		}
	}
}

func (c *Client) fetch(slot int, n uint64) {
	r, err := c.fetchOnce(slot, n)
	if err != nil && c.stop.Err() == nil {
		// Do not spin on a dead cluster: pause before the next try.
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-t.C:
		case <-c.stop.Done():
		}
		t.Stop()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slots[slot] = false
	c.inflight--
	c.lastErr = err
	if err == nil {
		c.buf.Add(r)
	}
	c.setMark(c.cur.Load()) // the room changed
	close(c.changed)
	c.changed = make(chan struct{})
}

// fetchOnce asks the current node for a range; on failure the next
// fetch goes to the next node.
func (c *Client) fetchOnce(slot int, n uint64) (r seq.Range, err error) {
	at := c.node.Load()
	if c.cfg.RoundRobin {
		at = c.node.Add(1) - 1
	} else {
		defer func() {
			if err != nil {
				c.node.CompareAndSwap(at, at+1)
			}
		}()
	}
	i := int(at % uint64(len(c.clients)))
	ev := FetchEvent{Fetch: c.fetches.Add(1), Slot: slot, Phase: FetchInvoke, Node: c.cfg.Nodes[i], Name: c.cfg.Name, N: n}
	c.report(ev)
	ctx, cancel := context.WithTimeout(c.stop, c.cfg.FetchTimeout)
	defer cancel()
	req := &pb.NextRangeRequest{Name: c.cfg.Name, N: n}
	if !c.cfg.RoundRobin {
		req.After = c.after.Load()
	}
	resp, err := c.clients[i].NextRange(ctx, req)
	if err == nil {
		r := seq.Range{From: seq.ID(resp.GetFrom()), To: seq.ID(resp.GetTo())}
		if verr := r.Validate(); verr != nil || r.Len() != n {
			// The node answered, so it allocated something, but not what
			// was asked: treat the outcome as unknown.
			err = errors.Errorf("node %s returned range %s for n=%d", ev.Node, r, n)
		} else {
			ev.Phase, ev.Range = FetchOK, r
			c.report(ev)
			for a := c.after.Load(); uint64(r.To) > a && !c.after.CompareAndSwap(a, uint64(r.To)); a = c.after.Load() {
			}
			return r, nil
		}
	}
	ev.Phase, ev.Err = FetchUnknown, err
	if status.Code(err) == codes.InvalidArgument {
		ev.Phase = FetchFailed
	}
	c.report(ev)
	return seq.Range{}, errors.Wrapf(err, "fetch from %s", ev.Node)
}

func (c *Client) report(ev FetchEvent) {
	if c.cfg.OnFetch != nil {
		c.cfg.OnFetch(ev)
	}
}

// Close stops fetching, waits for a fetch in progress, and closes the
// connections. Buffered IDs are lost.
func (c *Client) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	c.stopNow()
	c.wg.Wait()
	c.mu.Lock()
	close(c.changed) // wake callers waiting in Next: they see ErrClosed
	c.changed = make(chan struct{})
	c.mu.Unlock()
	c.closeConns()
	return nil
}

func (c *Client) closeConns() {
	for _, cc := range c.conns {
		cc.Close()
	}
}
