package nemesis_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/nemesis"
)

// A timeline starts and stops exact faults at exact times, overlapping,
// on the targets it names; what is on at the end is healed, the last
// started first; a fault with a source of its own leaves the cluster's
// untouched.
func TestTimeline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFake(3, 1)
		before := *c.rng
		start := time.Now()
		now := func() time.Duration { return time.Since(start) }
		isolate, err := nemesis.Targeted("partition-isolate", []string{"n1"})
		require.NoError(t, err)
		crash, err := nemesis.Targeted("crash-one", []string{"n2"})
		require.NoError(t, err)
		tl := nemesis.Timeline{
			{At: 5 * time.Second, For: 7 * time.Second, Fault: isolate},
			{At: 9 * time.Second, For: 0, Fault: &nemesis.Pause{}, Rand: rand.New(rand.NewPCG(1, 2))},
			{At: 9 * time.Second, For: 3 * time.Second, Fault: crash},
			{At: 12 * time.Second, For: 10 * time.Second, Fault: &nemesis.Crash{Count: 1}, Rand: rand.New(rand.NewPCG(3, 4))},
		}
		require.NoError(t, tl.Validate())
		var got []string
		tl.Run(context.Background(), c, now, 15*time.Second, func(e nemesis.Event) {
			require.NoError(t, e.Err)
			got = append(got, fmt.Sprintf("%v %s", e.At, e.F))
		})
		require.Equal(t, []string{
			"5s start-partition-isolate",
			"9s start-pause", "9s start-crash-one", "9s stop-pause",
			"12s stop-partition-isolate", "12s stop-crash-one", "12s start-crash-one",
			"15s stop-crash-one",
		}, got)
		require.Empty(t, c.down, "the timeline ends healed")
		require.Empty(t, c.cuts())
		require.Equal(t, before, *c.rng, "no draw from the cluster's source")
	})
}

func TestTimelineValidate(t *testing.T) {
	require.Error(t, nemesis.Timeline{{Fault: nil}}.Validate())
	require.Error(t, nemesis.Timeline{{At: -1, Fault: &nemesis.Pause{}}}.Validate())
}
