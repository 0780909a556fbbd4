package nemesis_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/nemesis"
)

// The fake cluster's clocks: the skews each node holds, applied at the
// fake's time (its now, which tests move by hand).
var (
	fakeSkews = map[*fakeCluster]map[string][]nemesis.Applied{}
	fakeNow   = map[*fakeCluster]time.Duration{}
)

func (f *fakeCluster) SkewClock(node string, s *nemesis.Skew) error {
	if fakeSkews[f] == nil {
		fakeSkews[f] = map[string][]nemesis.Applied{}
	}
	fakeSkews[f][node] = append(fakeSkews[f][node], nemesis.Applied{Skew: s, At: fakeNow[f]})
	f.logf("skew %s %s", node, s)
	return nil
}

func (f *fakeCluster) UnskewClock(node string, s *nemesis.Skew) {
	f.logf("unskew %s %s", node, s)
	held := fakeSkews[f][node]
	for i, a := range held {
		if a.Skew == s {
			fakeSkews[f][node] = append(held[:i:i], held[i+1:]...)
			break
		}
	}
	if len(fakeSkews[f][node]) == 0 {
		delete(fakeSkews[f], node)
	}
}

// clock is node's reading at the fake's now.
func (f *fakeCluster) clock(node string) time.Duration {
	return nemesis.Reading(fakeNow[f], fakeSkews[f][node])
}

var _ nemesis.Clocks = (*fakeCluster)(nil)

func TestSkewShift(t *testing.T) {
	for _, tc := range []struct {
		name    string
		s       nemesis.Skew
		elapsed time.Duration
		want    time.Duration
	}{
		{"zero", nemesis.Skew{}, time.Hour, 0},
		{"offset", nemesis.Skew{Offset: -2 * time.Second}, time.Minute, -2 * time.Second},
		{"drift fast", nemesis.Skew{Rate: 0.5}, 10 * time.Second, 5 * time.Second},
		{"drift slow", nemesis.Skew{Rate: -0.25}, 4 * time.Second, -time.Second},
		{"strobe low half", nemesis.Skew{Strobe: 200 * time.Millisecond, Period: 10 * time.Millisecond}, 9 * time.Millisecond, 0},
		{"strobe high half", nemesis.Skew{Strobe: 200 * time.Millisecond, Period: 10 * time.Millisecond}, 10 * time.Millisecond, 200 * time.Millisecond},
		{"strobe low again", nemesis.Skew{Strobe: 200 * time.Millisecond, Period: 10 * time.Millisecond}, 20 * time.Millisecond, 0},
		{"strobe without period", nemesis.Skew{Strobe: time.Second}, 5 * time.Second, 0},
		{"all at once", nemesis.Skew{Offset: time.Second, Rate: 1, Strobe: time.Millisecond, Period: time.Second}, time.Second, 2*time.Second + time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.s.Shift(tc.elapsed))
		})
	}
}

// TestReading: a clock is true time plus each skew's shift since it was
// applied; skews add up.
func TestReading(t *testing.T) {
	off := &nemesis.Skew{Offset: -time.Second}
	drift := &nemesis.Skew{Rate: 0.1}
	assert.Equal(t, 5*time.Second, nemesis.Reading(5*time.Second, nil))
	skews := []nemesis.Applied{{Skew: off, At: time.Second}, {Skew: drift, At: 2 * time.Second}}
	// At 12s: -1s, and 10s of drift at 0.1.
	assert.Equal(t, 12*time.Second, nemesis.Reading(12*time.Second, skews))
	assert.Equal(t, 11*time.Second, nemesis.Reading(12*time.Second, skews[:1]))
}

// TestClockFaults: each clock fault skews one node's clock as its String
// says, and its Stop removes its own skew and no other.
func TestClockFaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		// check is the skewed node's clock shift after 1s and 1.015s.
		at1s, at1015 func(d time.Duration) bool
	}{
		{"clock-offset", func(d time.Duration) bool { return d == 500*time.Millisecond || d == -500*time.Millisecond },
			func(d time.Duration) bool { return d == 500*time.Millisecond || d == -500*time.Millisecond }},
		{"clock-step-back", func(d time.Duration) bool { return d == -2*time.Second }, func(d time.Duration) bool { return d == -2*time.Second }},
		// 1s is period 100 (even: unshifted), 1.015s period 101.
		{"clock-strobe", func(d time.Duration) bool { return d == 0 }, func(d time.Duration) bool { return d == 200*time.Millisecond }},
		{"clock-drift", func(d time.Duration) bool { return d == 500*time.Millisecond || d == -500*time.Millisecond },
			func(d time.Duration) bool { return d == 507500*time.Microsecond || d == -507500*time.Microsecond }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 8; seed++ {
				c := newFake(3, seed)
				fakeNow[c] = 10 * time.Second
				other := &nemesis.Skew{Offset: 7 * time.Millisecond}
				f, err := nemesis.Lookup(tc.name)
				require.NoError(t, err)
				v, err := f.Start(c)
				require.NoError(t, err)
				node := v.(map[string]any)["node"].(string)
				require.NoError(t, c.SkewClock(node, other)) // another fault's, on the same node
				for _, n := range c.nodes {
					if n != node {
						assert.Equal(t, fakeNow[c], c.clock(n), "only %s is skewed", node)
					}
				}
				fakeNow[c] += time.Second
				d := c.clock(node) - fakeNow[c] - other.Offset
				assert.True(t, tc.at1s(d), "seed %d: shift %v after 1s", seed, d)
				fakeNow[c] += 15 * time.Millisecond
				d = c.clock(node) - fakeNow[c] - other.Offset
				assert.True(t, tc.at1015(d), "seed %d: shift %v after 1.015s", seed, d)

				stopped, err := f.Stop(c)
				require.NoError(t, err)
				assert.Equal(t, node, stopped.(map[string]any)["restored"])
				assert.Equal(t, fakeNow[c]+other.Offset, c.clock(node), "the other fault's skew stays")
				c.UnskewClock(node, other)
				assert.Equal(t, fakeNow[c], c.clock(node))
				delete(fakeSkews, c)
				delete(fakeNow, c)
			}
		})
	}
}

// TestClockFaultsDrawDirections: the offset and the drift go either way,
// as the seed draws.
func TestClockFaultsDrawDirections(t *testing.T) {
	for _, name := range []string{"clock-offset", "clock-drift"} {
		seen := map[bool]bool{}
		for seed := uint64(1); seed <= 20; seed++ {
			c := newFake(3, seed)
			f, _ := nemesis.Lookup(name)
			v, err := f.Start(c)
			require.NoError(t, err)
			node := v.(map[string]any)["node"].(string)
			fakeNow[c] = time.Second
			seen[c.clock(node) > time.Second] = true
			delete(fakeSkews, c)
			delete(fakeNow, c)
		}
		assert.Len(t, seen, 2, "%s goes both ways", name)
	}
}

// TestClockFaultsNeedClocks: on a cluster whose nodes read the real
// clock, a clock fault refuses to start, says why, and its Stop does
// nothing.
func TestClockFaultsNeedClocks(t *testing.T) {
	for _, name := range []string{"clock-offset", "clock-step-back", "clock-strobe", "clock-drift", "clock-step-back+crash-one"} {
		t.Run(name, func(t *testing.T) {
			fake := newFake(3, 1)
			c := struct{ nemesis.Cluster }{fake} // hides the fake's clocks
			f, err := nemesis.Lookup(name)
			require.NoError(t, err)
			_, err = f.Start(c)
			require.ErrorIs(t, err, nemesis.ErrNoClocks)
			require.ErrorContains(t, err, "read the real clock")
			_, err = f.Stop(c)
			require.NoError(t, err)
			require.Empty(t, fake.log, "nothing was done")
		})
	}
}

func TestClockStrings(t *testing.T) {
	for _, tc := range []struct {
		f    nemesis.Fault
		want string
	}{
		{&nemesis.ClockOffset{Amount: 500 * time.Millisecond}, "clock-offset(1 random node's clock 500ms ahead or behind, until stopped)"},
		{&nemesis.ClockStepBack{Amount: 2 * time.Second}, "clock-step-back(1 random node's clock steps back 2s, until stopped)"},
		{&nemesis.ClockStrobe{Delta: 200 * time.Millisecond, Period: 10 * time.Millisecond},
			"clock-strobe(1 random node's clock jumps 200ms ahead and back every 10ms)"},
		{&nemesis.ClockDrift{Rate: 0.5}, "clock-drift(1 random node's clock runs fast or slow by 0.5 s/s, then steps back to true time)"},
	} {
		t.Run(tc.f.Name(), func(t *testing.T) {
			require.Equal(t, tc.want, fmt.Sprint(tc.f))
		})
	}
	assert.Equal(t, "-2s", (&nemesis.Skew{Offset: -2 * time.Second}).String())
	assert.Equal(t, "+0s, drift +0.5 s/s, +200ms every other 10ms",
		(&nemesis.Skew{Rate: 0.5, Strobe: 200 * time.Millisecond, Period: 10 * time.Millisecond}).String())
}

// TestSkewedClock: a clock function under skews, as a cluster of
// in-process nodes would give each node.
func TestSkewedClock(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := base
	c := nemesis.NewSkewedClock(func() time.Time { return now })
	assert.Equal(t, now, c.Now())
	back := &nemesis.Skew{Offset: -time.Second}
	drift := &nemesis.Skew{Rate: 1}
	now = now.Add(time.Minute)
	c.Add(back)
	c.Add(drift)
	assert.Equal(t, now.Add(-time.Second), c.Now())
	now = now.Add(2 * time.Second)
	assert.Equal(t, now.Add(time.Second), c.Now(), "-1s and 2s gained")
	c.Remove(back)
	assert.Equal(t, now.Add(2*time.Second), c.Now())
	c.Remove(back) // not held: nothing
	c.Remove(drift)
	assert.Equal(t, now, c.Now())
	assert.NotZero(t, nemesis.NewSkewedClock(nil).Now(), "time.Now by default")
}

// TestClockFaultsTargeted: a clock fault with its node spelt out skews
// that node, draws nothing (an offset goes the way its sign says), and
// takes exactly one node of the cluster.
func TestClockFaultsTargeted(t *testing.T) {
	for _, name := range []string{"clock-offset", "clock-step-back", "clock-strobe", "clock-drift"} {
		t.Run(name, func(t *testing.T) {
			f, err := nemesis.Targeted(name, []string{"n2"})
			require.NoError(t, err)
			c, ref := newFake(3, 5), newFake(3, 5)
			v, err := f.Start(c)
			require.NoError(t, err)
			assert.Equal(t, "n2", v.(map[string]any)["node"])
			assert.Equal(t, ref.Rand().Uint64(), c.Rand().Uint64(), "nothing drawn")
			assert.Contains(t, fmt.Sprint(f), "(n2's clock")
			fakeNow[c] = 20 * time.Millisecond
			assert.GreaterOrEqual(t, c.clock("n2")-fakeNow[c], -2*time.Second)
			if name != "clock-step-back" {
				assert.GreaterOrEqual(t, c.clock("n2"), fakeNow[c], "a positive amount or rate goes ahead")
			}
			_, err = f.Stop(c)
			require.NoError(t, err)
			assert.Empty(t, fakeSkews[c])
			delete(fakeSkews, c)
			delete(fakeNow, c)

			g, err := nemesis.Targeted(name, []string{"n9"})
			require.NoError(t, err)
			require.ErrorContains(t, nemesis.CheckTargets(g, []string{"n1", "n2"}, nil), "n9 names no node of the cluster")
			_, err = g.Start(newFake(3, 1))
			require.ErrorContains(t, err, "n9 names no node")
			g, err = nemesis.Targeted(name, []string{"n1", "n2"})
			require.NoError(t, err)
			require.ErrorContains(t, nemesis.CheckTargets(g, []string{"n1", "n2"}, nil), "takes 1 target")
		})
	}
}
