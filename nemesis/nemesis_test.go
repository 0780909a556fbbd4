package nemesis_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/nemesis"
)

// fakeCluster records what faults do to it.
type fakeCluster struct {
	nodes   []string
	log     []string
	down    map[string]bool
	paused  map[string]bool
	rng     *rand.Rand
	clients []string
}

func newFake(n int, seed uint64) *fakeCluster {
	f := &fakeCluster{down: map[string]bool{}, paused: map[string]bool{}, rng: rand.New(rand.NewPCG(seed, 1)), clients: []string{"c1", "c2"}}
	for i := range n {
		f.nodes = append(f.nodes, fmt.Sprintf("n%d", i+1))
	}
	return f
}

func (f *fakeCluster) logf(format string, a ...any) { f.log = append(f.log, fmt.Sprintf(format, a...)) }

func (f *fakeCluster) Nodes() []string            { return f.nodes }
func (f *fakeCluster) Clients() []string          { return f.clients }
func (f *fakeCluster) Net() nemesis.Network       { return f }
func (f *fakeCluster) Rand() *rand.Rand           { return f.rng }
func (f *fakeCluster) DefaultLink() nemesis.Link  { return nemesis.Link{Latency: time.Millisecond} }
func (f *fakeCluster) CrashClient(c string) error { f.logf("crash-client %s", c); return nil }
func (f *fakeCluster) Crash(n string, power, torn bool) error {
	f.down[n] = true
	f.logf("crash %s power=%v torn=%v", n, power, torn)
	return nil
}
func (f *fakeCluster) Restart(n string) error {
	if !f.down[n] {
		return fmt.Errorf("%s is not down", n)
	}
	delete(f.down, n)
	f.logf("restart %s", n)
	return nil
}
func (f *fakeCluster) Partition(groups ...[]string)        { f.logf("partition %v", groups) }
func (f *fakeCluster) Cut(from, to string)                 { f.logf("cut %s->%s", from, to) }
func (f *fakeCluster) Heal()                               { f.logf("heal") }
func (f *fakeCluster) Reset(from, to string)               { f.logf("reset %s->%s", from, to) }
func (f *fakeCluster) SetHost(h string, l nemesis.Link)    { f.logf("set %s %v", h, l.Latency) }
func (f *fakeCluster) Pause(h string)                      { f.paused[h] = true; f.logf("pause %s", h) }
func (f *fakeCluster) Resume(h string)                     { delete(f.paused, h); f.logf("resume %s", h) }
func (f *fakeCluster) SetLoss(dropDial, resetConn float64) { f.logf("loss %v %v", dropDial, resetConn) }

func TestEveryRegisteredFaultStartsAndStops(t *testing.T) {
	for _, name := range nemesis.Names() {
		t.Run(name, func(t *testing.T) {
			c := newFake(5, 1)
			f, err := nemesis.Lookup(name)
			require.NoError(t, err)
			_, err = f.Start(c)
			require.NoError(t, err)
			require.NotEmpty(t, c.log, "Start did something")
			_, err = f.Stop(c)
			require.NoError(t, err)
			require.Empty(t, c.down, "every crashed node is restarted")
			require.Empty(t, c.paused, "every paused node is resumed")
		})
	}
	_, err := nemesis.Lookup("gremlins")
	require.ErrorContains(t, err, "unknown fault")
}

func TestCrashShapes(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    *nemesis.Crash
		want int
	}{
		{"crash-one", &nemesis.Crash{Count: 1}, 1},
		{"crash-majority", &nemesis.Crash{Majority: true}, 3},
		{"crash-all", &nemesis.Crash{All: true}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFake(5, 2)
			_, err := tc.f.Start(c)
			require.NoError(t, err)
			require.Len(t, c.down, tc.want)
			require.Equal(t, tc.name, tc.f.Name())
		})
	}
}

func TestRingGivesEveryNodeAMajority(t *testing.T) {
	c := newFake(5, 3)
	_, err := (&nemesis.PartitionRing{}).Start(c)
	require.NoError(t, err)
	cut := map[string]bool{}
	for _, l := range c.log {
		if strings.HasPrefix(l, "cut ") {
			cut[strings.TrimPrefix(l, "cut ")] = true
		}
	}
	for _, a := range c.nodes {
		sees := 1
		for _, b := range c.nodes {
			if a != b && !cut[a+"->"+b] {
				sees++
			}
		}
		require.Equal(t, 3, sees, "%s sees a bare majority", a)
	}
}

func TestScheduleIsSeededAndHeals(t *testing.T) {
	run := func(seed uint64) []string {
		var out []string
		synctest.Test(t, func(t *testing.T) {
			c := newFake(3, seed)
			start := time.Now()
			now := func() time.Duration { return time.Since(start) }
			s := nemesis.Schedule{
				Faults:   []nemesis.Fault{&nemesis.PartitionHalves{}, &nemesis.Crash{Count: 1}, &nemesis.Pause{}},
				Interval: time.Second, Duration: 2 * time.Second, Jitter: 500 * time.Millisecond,
			}
			s.Run(context.Background(), c, now, 20*time.Second, func(e nemesis.Event) {
				require.NoError(t, e.Err)
				out = append(out, fmt.Sprintf("%v %s %v", e.At, e.F, e.Value))
			})
			require.Empty(t, c.down, "the schedule ends healed")
			require.Empty(t, c.paused)
		})
		return out
	}
	a, b, other := run(7), run(7), run(8)
	require.NotEmpty(t, a)
	require.Equal(t, a, b, "one seed, one schedule")
	require.NotEqual(t, a, other, "another seed, another schedule")
	require.True(t, strings.Contains(a[len(a)-1], "stop-"), "last event is a stop: %s", a[len(a)-1])
}
