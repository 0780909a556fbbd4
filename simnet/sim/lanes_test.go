package sim

import (
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDeadlinesRunAsTimers: deadlines, which wait in lanes, fire at the
// same times and in the same order among themselves and the other events
// as timers in the heap do, through cancellations, ties of time, more
// delays than there are lanes, delays too short for one, and a lane given
// over to another delay once empty; and the wake-ups are not events.
func TestDeadlinesRunAsTimers(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		heap, heapEvents := deadlineScript(seed, false)
		lanes, laneEvents := deadlineScript(seed, true)
		require.Greater(t, len(heap), 10000, "seed %d", seed)
		require.Equal(t, heap, lanes, "seed %d", seed)
		assert.Equal(t, heapEvents, laneEvents, "seed %d: a wake-up counted as an event", seed)
	}
}

// deadlineScript runs a random script of timers, set as deadlines or
// not, and returns what fired when, and the events counted.
func deadlineScript(seed uint64, deadlines bool) ([]string, int) {
	s := newSim(Config{Seed: int64(seed), Nodes: 1}.WithDefaults(), toy{}, io.Discard, false, true)
	rng := rand.New(rand.NewPCG(seed, 11))
	pick := rand.New(rand.NewPCG(seed, 12)) // which are deadlines: the script's own draws stay the same
	// Few delays, so that times tie and lanes fill; and more than there
	// are lanes, so that some go to the heap; some too short for a lane.
	delays := []time.Duration{time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 250 * time.Millisecond,
		time.Second, 3 * time.Second, 7 * time.Millisecond, 9 * time.Millisecond, 11 * time.Millisecond, 13 * time.Millisecond, 500 * time.Microsecond}
	var fired []string
	var live []timer
	n, pending := 0, 0
	var set func()
	set = func() {
		d := delays[rng.IntN(len(delays))]
		if s.now > 20*time.Second {
			d = delays[rng.IntN(3)] // the later half: other delays take the lanes given up
		}
		if rng.IntN(8) == 0 {
			d = time.Duration(rng.Int64N(int64(time.Second))) + time.Millisecond
		}
		n++
		pending++
		id := n
		e := &event{at: s.now + d, l: label{kind: "t", a: uint64(id), b: uint64(rng.IntN(3))}}
		e.fn = func() {
			pending--
			fired = append(fired, fmt.Sprintf("%d %d", s.now, id))
			for pending < 100 || rng.IntN(3) == 0 {
				set()
			}
			if len(live) > 0 && rng.IntN(2) == 0 {
				i := rng.IntN(len(live))
				if ev := &s.evs[live[i].slot]; ev.seq == live[i].seq && ev.pos != -1 {
					pending--
				}
				s.cancel(live[i])
				live = append(live[:i], live[i+1:]...)
			}
		}
		var tm timer
		if deadlines && pick.IntN(4) > 0 {
			tm = s.deadline(e)
		} else {
			tm = s.schedule(e)
		}
		if rng.IntN(2) == 0 {
			live = append(live, tm)
		}
	}
	for range 100 {
		set()
	}
	s.run(40 * time.Second)
	return fired, s.events
}

// TestWiresRunAsTheHeap: messages of a fixed delay, which wait in wires,
// arrive at the same times and in the same order as from the heap,
// through a run without jitter on the toy system with crashes, power
// losses, partitions, pauses and slowed hosts (more delays than there
// are wires), and one with jitter, where the wires take nothing.
func TestWiresRunAsTheHeap(t *testing.T) {
	for seed := int64(1); seed <= 6; seed++ {
		for _, jitter := range []time.Duration{0, time.Millisecond} {
			cfg := toyRun(seed)
			cfg.Jitter = jitter
			cfg.Faults = Plan(seed, Schedule{Faults: []string{"crash-one", "power-loss-all", "partition-halves", "pause", "slow"},
				Interval: 500 * time.Millisecond, Duration: 300 * time.Millisecond, Jitter: 100 * time.Millisecond}, 4*time.Second)
			cfg = cfg.WithDefaults()
			run := func(noWires bool) (uint64, int, int) {
				s := newSim(cfg, toy{}, io.Discard, false, true)
				s.q.noWires = noWires
				s.start()
				s.run(cfg.TimeLimit)
				return s.trh, s.events, len(s.q.wires)
			}
			heapHash, heapEvents, _ := run(true)
			wireHash, wireEvents, wires := run(false)
			assert.Equal(t, heapHash, wireHash, "seed %d jitter %v", seed, jitter)
			assert.Equal(t, heapEvents, wireEvents, "seed %d jitter %v", seed, jitter)
			assert.Greater(t, heapEvents, 500)
			if jitter == 0 {
				assert.Equal(t, maxWires, wires, "the latency and a slowed host's delays have wires")
			}
		}
	}
}
