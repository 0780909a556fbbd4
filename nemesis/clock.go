package nemesis

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/pkg/errors"
)

// Clocks is what clock faults act on: the nodes' clocks. A cluster whose
// nodes read a clock it controls implements it beside Cluster (the
// simulator does, with virtual time; so can a cluster of in-process nodes
// that read their time through a func() time.Time, see SkewedClock). A
// cluster of real processes, which read the kernel's clock through the
// vDSO, does not, and clock faults then fail to start with ErrNoClocks.
//
// A node's clock is the true time (virtual time in the simulator) plus
// the Shift of every skew it holds (see Reading). Skews are held one per
// SkewClock, like host delays: UnskewClock removes the one skew it is
// given, by identity, and leaves the others, so clock faults compose.
type Clocks interface {
	// SkewClock adds s to node's clock from now on: its Shift counts
	// from the moment SkewClock is called.
	SkewClock(node string, s *Skew) error
	// UnskewClock removes s from node's clock; without it, it does
	// nothing.
	UnskewClock(node string, s *Skew)
}

// ErrNoClocks is the error of a clock fault's Start on a cluster that
// does not implement Clocks.
var ErrNoClocks = errors.New("nemesis: this cluster's nodes read the real clock, which no fault can skew " +
	"(clock faults need a cluster that implements nemesis.Clocks: the simulator, or nodes given a clock function)")

// Skew is one fault's change to a node's clock, as a function of the time
// since it was applied: a constant Offset, a Rate of drift (the clock
// gains Rate seconds a second; negative: it loses), and a Strobe: in every
// other Period, starting with the second, the clock reads Strobe more. The
// fields add up; a zero Skew changes nothing.
type Skew struct {
	Offset time.Duration
	Rate   float64
	Strobe time.Duration
	Period time.Duration
}

// Shift is how far s moves a clock, elapsed after it was applied.
func (s *Skew) Shift(elapsed time.Duration) time.Duration {
	d := s.Offset
	if s.Rate != 0 {
		d += time.Duration(math.Round(float64(elapsed) * s.Rate))
	}
	if s.Strobe != 0 && s.Period > 0 && elapsed >= 0 && (elapsed/s.Period)%2 == 1 {
		d += s.Strobe
	}
	return d
}

// String says what s does to a clock.
func (s *Skew) String() string {
	out := signed(s.Offset)
	if s.Rate != 0 {
		out += fmt.Sprintf(", drift %+g s/s", s.Rate)
	}
	if s.Strobe != 0 && s.Period > 0 {
		out += fmt.Sprintf(", %s every other %v", signed(s.Strobe), s.Period)
	}
	return out
}

func signed(d time.Duration) string {
	if d >= 0 {
		return "+" + d.String()
	}
	return d.String()
}

// Applied is a skew on a clock, with the true time at which it was
// applied.
type Applied struct {
	Skew *Skew
	At   time.Duration
}

// Reading is a clock's reading at the true time now, under the skews it
// holds: now plus each skew's Shift since it was applied. It is pure, so
// the simulator's clocks replay bit for bit.
func Reading(now time.Duration, skews []Applied) time.Duration {
	out := now
	for _, a := range skews {
		out += a.Skew.Shift(now - a.At)
	}
	return out
}

// SkewedClock is a node's clock under faults for nodes that read their
// time through a func() time.Time: Now is the base clock plus the skews
// added and not yet removed. It is safe for concurrent use. A cluster of
// such nodes implements Clocks with one SkewedClock per node.
type SkewedClock struct {
	base  func() time.Time
	mu    sync.Mutex
	skews []Applied // At: since zero
	zero  time.Time
}

// NewSkewedClock returns a clock that reads base (time.Now if nil) until
// skews are added.
func NewSkewedClock(base func() time.Time) *SkewedClock {
	if base == nil {
		base = time.Now
	}
	return &SkewedClock{base: base, zero: base()}
}

// Now is the clock's reading.
func (c *SkewedClock) Now() time.Time {
	t := c.base()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.skews) == 0 {
		return t
	}
	now := t.Sub(c.zero)
	return t.Add(Reading(now, c.skews) - now)
}

// Add applies s from now on.
func (c *SkewedClock) Add(s *Skew) {
	at := c.base().Sub(c.zero)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.skews = append(c.skews, Applied{Skew: s, At: at})
}

// Remove removes s, if the clock holds it.
func (c *SkewedClock) Remove(s *Skew) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, a := range c.skews {
		if a.Skew == s {
			c.skews = append(c.skews[:i:i], c.skews[i+1:]...)
			return
		}
	}
}

// clockSkew is what every clock fault does: one node's clock, drawn at
// random or named by the fault's Targets, gets one skew, drawn by the
// fault, until Stop removes it.
type clockSkew struct {
	node string
	skew *Skew
}

func (f *clockSkew) start(c Cluster, t targetable, draw func() Skew) (any, error) {
	cl, ok := c.(Clocks)
	if !ok {
		return nil, errors.Wrap(ErrNoClocks, t.Name())
	}
	f.node, f.skew = "", nil
	if err := need(t, c.Nodes(), 1, "a clock to skew"); err != nil {
		return nil, err
	}
	node, err := spelt(t, c)
	if err != nil {
		return nil, err
	}
	if node == nil {
		node = pick(c.Rand(), c.Nodes(), 1)
	}
	s := draw()
	if err := cl.SkewClock(node[0], &s); err != nil {
		return nil, errors.Wrapf(err, "skew the clock of %s", node[0])
	}
	f.node, f.skew = node[0], &s
	return map[string]any{"node": f.node, "skew": s.String()}, nil
}

func (f *clockSkew) stop(c Cluster) (any, error) {
	if f.skew == nil {
		return map[string]any{"restored": nil}, nil
	}
	if cl, ok := c.(Clocks); ok {
		cl.UnskewClock(f.node, f.skew)
	}
	v := map[string]any{"restored": f.node, "removed": f.skew.String()}
	f.node, f.skew = "", nil
	return v, nil
}

// Every clock fault takes one target, the node whose clock it skews (see
// Targeted).
var _ = []targetable{(*ClockOffset)(nil), (*ClockStepBack)(nil), (*ClockStrobe)(nil), (*ClockDrift)(nil)}

func clockWant(int) (int, bool, string) { return 1, false, "the node whose clock is skewed" }

// ClockOffset moves one random node's clock ahead or behind, as the seed
// draws, by Amount, where it stays until Stop moves it back. With
// Targets, the node is named and nothing is drawn: Amount moves the clock
// ahead, or behind if negative.
type ClockOffset struct {
	Amount  time.Duration
	Targets []string
	clockSkew
}

func (f *ClockOffset) Name() string                   { return "clock-offset" }
func (f *ClockOffset) targets() *[]string             { return &f.Targets }
func (f *ClockOffset) want(n int) (int, bool, string) { return clockWant(n) }

func (f *ClockOffset) String() string {
	return fmt.Sprintf("clock-offset(%s's clock %v ahead or behind, until stopped)", who(f.Targets, "1 random node"), f.Amount)
}

func (f *ClockOffset) Start(c Cluster) (any, error) {
	return f.start(c, f, func() Skew {
		if len(f.Targets) == 0 && c.Rand().IntN(2) == 0 {
			return Skew{Offset: -f.Amount}
		}
		return Skew{Offset: f.Amount}
	})
}

// Stop moves the clock back to where it would be without this fault.
func (f *ClockOffset) Stop(c Cluster) (any, error) { return f.stop(c) }

// ClockStepBack steps one random node's clock (Targets, if set, names it)
// back by Amount, as a clock corrected by a step does; Stop steps it
// forward again.
type ClockStepBack struct {
	Amount  time.Duration
	Targets []string
	clockSkew
}

func (f *ClockStepBack) Name() string                   { return "clock-step-back" }
func (f *ClockStepBack) targets() *[]string             { return &f.Targets }
func (f *ClockStepBack) want(n int) (int, bool, string) { return clockWant(n) }

func (f *ClockStepBack) String() string {
	return fmt.Sprintf("clock-step-back(%s's clock steps back %v, until stopped)", who(f.Targets, "1 random node"), f.Amount)
}

func (f *ClockStepBack) Start(c Cluster) (any, error) {
	return f.start(c, f, func() Skew { return Skew{Offset: -f.Amount} })
}

// Stop steps the clock forward by Amount.
func (f *ClockStepBack) Stop(c Cluster) (any, error) { return f.stop(c) }

// ClockStrobe makes one random node's clock (Targets, if set, names it)
// alternate between its reading and Delta ahead of it, switching every
// Period, until Stop.
type ClockStrobe struct {
	Delta, Period time.Duration
	Targets       []string
	clockSkew
}

func (f *ClockStrobe) Name() string                   { return "clock-strobe" }
func (f *ClockStrobe) targets() *[]string             { return &f.Targets }
func (f *ClockStrobe) want(n int) (int, bool, string) { return clockWant(n) }

func (f *ClockStrobe) String() string {
	return fmt.Sprintf("clock-strobe(%s's clock jumps %v ahead and back every %v)", who(f.Targets, "1 random node"), f.Delta, f.Period)
}

func (f *ClockStrobe) Start(c Cluster) (any, error) {
	return f.start(c, f, func() Skew { return Skew{Strobe: f.Delta, Period: f.Period} })
}

// Stop leaves the clock at its unstrobed reading.
func (f *ClockStrobe) Stop(c Cluster) (any, error) { return f.stop(c) }

// ClockDrift makes one random node's clock run fast or slow, as the seed
// draws, by Rate: Rate seconds gained or lost a second. With Targets, the
// node is named and nothing is drawn: the clock runs fast, or slow if Rate
// is negative. Stop removes the drift and what it gained or lost: the
// clock steps back to its reading without the fault, as a clock that
// NTP corrects does.
type ClockDrift struct {
	Rate    float64
	Targets []string
	clockSkew
}

func (f *ClockDrift) Name() string                   { return "clock-drift" }
func (f *ClockDrift) targets() *[]string             { return &f.Targets }
func (f *ClockDrift) want(n int) (int, bool, string) { return clockWant(n) }

func (f *ClockDrift) String() string {
	return fmt.Sprintf("clock-drift(%s's clock runs fast or slow by %g s/s, then steps back to true time)",
		who(f.Targets, "1 random node"), f.Rate)
}

func (f *ClockDrift) Start(c Cluster) (any, error) {
	return f.start(c, f, func() Skew {
		if len(f.Targets) == 0 && c.Rand().IntN(2) == 0 {
			return Skew{Rate: -f.Rate}
		}
		return Skew{Rate: f.Rate}
	})
}

// Stop removes the drift and what it accumulated.
func (f *ClockDrift) Stop(c Cluster) (any, error) { return f.stop(c) }
