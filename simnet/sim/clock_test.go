package sim

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/checker/history"
)

// clockToy answers every call at once and notes its node's clock.
type clockToy struct{}

func (clockToy) ValidateName(string) error { return nil }

func (clockToy) Start(h *Host, disk any, first bool) Proc { return clockProc{h} }

type clockProc struct{ h *Host }

func (p clockProc) NextRange(c *Call, name string, n, after uint64) {
	p.h.Note(Label{Kind: "clock", A: uint64(p.h.Clock()), B: uint64(p.h.Now())})
	p.h.Answer(c, Label{Kind: "ok"}, history.Ok, 1, 2, "")
}
func (clockProc) Serve(*Request)   {}
func (clockProc) Replied(*Request) {}
func (clockProc) Failed(*Request)  {}
func (clockProc) Crashed()         {}

// TestClockFaults: a clock fault skews one node's Clock and nothing else,
// from its start to its stop; skews survive a crash; and the skew is part
// of the run, so replay stays bit for bit.
func TestClockFaults(t *testing.T) {
	cfg := Config{Seed: 7, Nodes: 3, Clients: 3, TimeLimit: 3 * time.Second,
		Faults: []FaultSpec{{Name: "clock-step-back+crash-one", At: time.Second, For: time.Second, Seed: 1}}}
	a, err := Run(cfg, clockToy{}, true)
	require.NoError(t, err)
	b, err := Run(cfg, clockToy{}, false)
	require.NoError(t, err)
	require.Equal(t, a.Hash, b.Hash)

	skewed := map[string]bool{}
	for _, l := range a.Trace {
		var at, clock, now uint64
		var from string
		if _, err := fmt.Sscanf(l, "%d clock %s %d %d", &at, &from, &clock, &now); err != nil {
			continue
		}
		node := strings.TrimSuffix(from, "->")
		inFault := now >= uint64(time.Second) && now < uint64(2*time.Second)
		if clock != now {
			require.True(t, inFault, "%s: skewed outside the fault", l)
			require.Equal(t, now-uint64(2*time.Second), clock, l)
			skewed[node] = true
		}
	}
	require.Len(t, skewed, 1, "one node's clock is stepped back")

	cfg.Faults[0].Name = "crash-one"
	c, err := Run(cfg, clockToy{}, false)
	require.NoError(t, err)
	assert.NotEqual(t, a.Hash, c.Hash, "the skew is part of the run")
}
