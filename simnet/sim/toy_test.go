package sim

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/checker/history"
)

// toy is the smallest system that exercises the simulator: each node
// hands out IDs i, i+N, i+2N, ... (i its index), keeps its counter on
// disk, synced before it answers, and asks a peer before each range, so
// messages, timers, disks and crashes all take part. Its IDs are unique
// whatever the faults; it is not linearizable and does not claim to be.
type toy struct{}

func (toy) ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("empty name")
	}
	return nil
}

func (toy) Start(h *Host, disk any, first bool) Proc {
	p := &toyProc{h: h}
	for i, n := range h.Nodes() {
		if n == h.Name() {
			p.index = uint64(i)
		}
	}
	if disk != nil {
		p.next = disk.(uint64)
	}
	return p
}

type toyProc struct {
	h           *Host
	index, next uint64
}

type toyAsk struct {
	c    *Call
	n    uint64
	seen bool
}

func (p *toyProc) NextRange(c *Call, name string, n, after uint64) {
	peers := p.h.Nodes()
	to := peers[(int(p.index)+1)%len(peers)]
	p.h.Send(&Request{To: to, Kind: "ask", A: p.next, Msg: &toyAsk{c: c, n: n}}, 100*time.Millisecond)
}

func (p *toyProc) Serve(r *Request) {
	r.Msg.(*toyAsk).seen = true
	r.Answer(1)
}

func (p *toyProc) Replied(r *Request) {
	a := r.Msg.(*toyAsk)
	k := uint64(len(p.h.Nodes()))
	from := p.next*k + p.index + 1
	p.next++
	next := p.next
	p.h.Written(next)
	p.h.After(time.Millisecond, Label{Kind: "toy-sync"}, func() {
		p.h.Durable(next)
		p.h.Answer(a.c, Label{Kind: "toy-id", A: from}, history.Ok, from, from+1, "")
	})
}

func (p *toyProc) Failed(r *Request) {
	p.h.Answer(r.Msg.(*toyAsk).c, Label{Kind: "toy-fail"}, history.Fail, 0, 0, "peer did not answer")
}

func (p *toyProc) Crashed() {}

func toyRun(seed int64) Config {
	return Config{Seed: seed, Nodes: 3, Jitter: time.Millisecond, Clients: 4, Sizes: []uint64{1}, TimeLimit: 5 * time.Second,
		Faults: Plan(seed, Schedule{Faults: []string{"crash-one", "power-loss-all", "partition-halves", "pause"},
			Interval: 500 * time.Millisecond, Duration: 300 * time.Millisecond, Jitter: 100 * time.Millisecond}, 4*time.Second)}
}

// TestEngineDeterministic: the simulator knows no system; on the toy one
// a seed gives the same run twice, another seed another run, a workload
// spelt out the same run again, and the toy's promise holds through
// crashes, power losses, partitions and pauses.
func TestEngineDeterministic(t *testing.T) {
	for seed := int64(1); seed <= 5; seed++ {
		a, err := Run(toyRun(seed), toy{}, true)
		require.NoError(t, err)
		b, err := Run(toyRun(seed), toy{}, true)
		require.NoError(t, err)
		require.Equal(t, a.Hash, b.Hash, "seed %d", seed)
		require.Equal(t, a.Trace, b.Trace)
		c, err := Run(toyRun(seed+100), toy{}, false)
		require.NoError(t, err)
		assert.NotEqual(t, a.Hash, c.Hash)

		cfg := toyRun(seed)
		cfg.Ops = a.Workload
		d, err := Run(cfg, toy{}, false)
		require.NoError(t, err)
		assert.Equal(t, a.Hash, d.Hash, "the spelt-out workload runs the same")

		events, problems, err := history.Read(bytes.NewReader(a.History))
		require.NoError(t, err)
		require.Empty(t, problems)
		res := checker.Check(events, checker.Options{Promises: []string{checker.Unique}})
		require.Equal(t, checker.ValidTrue, res.Valid, "seed %d: %s", seed, res.Summary())
		assert.Greater(t, res.Stats.Ops["next-range"]["ok"], 50)
	}
	_, err := Run(Config{Names: []string{""}}, toy{}, false)
	require.ErrorContains(t, err, "empty name", "the system validates names")
}

// TestRunTo: a history streamed to a writer, or kept in a buffer, is the
// history Run keeps, and the hash is the same; without the hash the run
// is the same too.
func TestRunTo(t *testing.T) {
	cfg := Config{Seed: 4, Nodes: 3, Clients: 3, TimeLimit: 5 * time.Second,
		Faults: Plan(4, Schedule{Faults: []string{"crash-one", "partition-halves"}, Interval: time.Second, Duration: time.Second}, 4*time.Second)}
	a, err := Run(cfg, toy{}, false)
	require.NoError(t, err)
	var buf bytes.Buffer
	b, err := RunTo(cfg, toy{}, Output{History: &buf})
	require.NoError(t, err)
	assert.Nil(t, b.History)
	assert.Equal(t, a.History, buf.Bytes())
	assert.Equal(t, a.Hash, b.Hash)
	assert.Equal(t, a.Workload, b.Workload)

	var kept bytes.Buffer
	kept.WriteString("a previous run's history")
	c, err := RunTo(cfg, toy{}, Output{Buffer: &kept, NoHash: true})
	require.NoError(t, err)
	assert.Empty(t, c.Hash)
	assert.Equal(t, a.History, c.History)
	assert.Equal(t, a.Events, c.Events)
	assert.Equal(t, a.Workload, c.Workload)

	// The toy hands out one ID whatever the size asked, which breaks the
	// history's rules: a reader skips those lines, and a run that hands
	// its events over as values fails.
	res, err := checker.CheckReader(bytes.NewReader(a.History), checker.Options{})
	require.NoError(t, err)
	assert.NotEmpty(t, res.Malformed)
	_, err = RunTo(cfg, toy{}, Output{Events: func(*history.Event) {}})
	require.ErrorContains(t, err, "does not hold n = 10 IDs")

	// Events handed to a checker.Stream as they happen are checked as
	// the history's lines would be.
	cfg.Sizes = []uint64{1}
	a, err = Run(cfg, toy{}, false)
	require.NoError(t, err)
	opts := checker.Options{Promises: []string{checker.Unique, checker.Monotonic}}
	st := checker.NewStream(opts, 0)
	d, err := RunTo(cfg, toy{}, Output{Events: st.Add})
	require.NoError(t, err)
	assert.Empty(t, d.Hash)
	assert.Nil(t, d.History)
	assert.Equal(t, a.Events, d.Events)
	want, err := checker.CheckReader(bytes.NewReader(a.History), opts)
	require.NoError(t, err)
	require.Empty(t, want.Malformed)
	got := st.Results()
	want.Duration, got.Duration = 0, 0
	assert.Equal(t, want, got)
	assert.Greater(t, got.Events, 100)
}
