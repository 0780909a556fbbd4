package sim

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/seqlab/seqlab/nemesis"
)

// Clock is the node's own clock: the virtual time plus the skews that
// clock faults put on it (nemesis.Reading). Without clock faults it is
// Now. Unlike Now it may jump back, strobe or drift, and a system that
// keeps time by it (timestamps in IDs) meets those faults; timers still
// run in virtual time. The skews belong to the machine: a crash and a
// restart keep them.
func (h *Host) Clock() time.Duration { return nemesis.Reading(h.s.now, h.skews) }

var _ nemesis.Clocks = (*cluster)(nil)

// SkewClock implements nemesis.Clocks. The skew goes into the trace, so a
// replay that skews a clock differently parts from the run at once.
func (c *cluster) SkewClock(node string, s *nemesis.Skew) error {
	n := c.s.nodes[node]
	if n == nil {
		return fmt.Errorf("no node %q", node)
	}
	n.skews = append(n.skews, nemesis.Applied{Skew: s, At: c.s.now})
	c.s.note(&label{kind: "clock-skew", from: node, a: uint64(s.Offset), b: math.Float64bits(s.Rate)})
	c.s.note(&label{kind: "clock-strobe", from: node, a: uint64(s.Strobe), b: uint64(s.Period)})
	return nil
}

// UnskewClock implements nemesis.Clocks.
func (c *cluster) UnskewClock(node string, s *nemesis.Skew) {
	n := c.s.nodes[node]
	if n == nil {
		return
	}
	i := slices.IndexFunc(n.skews, func(a nemesis.Applied) bool { return a.Skew == s })
	if i < 0 {
		return
	}
	n.skews = slices.Delete(n.skews, i, i+1)
	c.s.note(&label{kind: "clock-unskew", from: node, a: uint64(s.Offset), b: math.Float64bits(s.Rate)})
}
