package nemesis

import (
	"context"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/pkg/errors"
)

// Timed is one fault of a Timeline: Fault starts at At and stops For
// later. Its draws (its targets, when it names none) come from Rand, or
// from the cluster's source when Rand is nil.
type Timed struct {
	At, For time.Duration
	Fault   Fault
	Rand    *rand.Rand
}

// Timeline starts and stops exact faults at exact times of the run
// clock: a reproduced incident, a shrunk failure. Unlike a Schedule's,
// its faults may overlap, and each may name its targets (Targeted).
type Timeline []Timed

// Validate returns an error unless t can run.
func (t Timeline) Validate() error {
	for i, f := range t {
		switch {
		case f.Fault == nil:
			return errors.Errorf("nemesis: timeline fault %d is nil", i)
		case f.At < 0 || f.For < 0:
			return errors.Errorf("nemesis: timeline fault %d (%s) at negative time", i, f.Fault.Name())
		}
	}
	return nil
}

// edge is a start or a stop of a timeline's fault.
type edge struct {
	at    time.Duration
	start bool
	i     int
}

// edges orders the starts and stops: by time; at one time, the stops of
// faults that started earlier, then the starts in timeline order, then
// the stops of faults that last no time at all.
func (t Timeline) edges() []edge {
	var out []edge
	for i, f := range t {
		out = append(out, edge{at: f.At, start: true, i: i}, edge{at: f.At + f.For, i: i})
	}
	rank := func(e edge) int {
		switch {
		case e.start:
			return 1
		case t[e.i].For == 0:
			return 2
		}
		return 0
	}
	sort.SliceStable(out, func(a, b int) bool {
		if out[a].at != out[b].at {
			return out[a].at < out[b].at
		}
		return rank(out[a]) < rank(out[b])
	})
	return out
}

// Run carries out the timeline on c, by the run clock now, until ctx is
// done or now reaches until; then it stops every fault still on, the
// last started first: the heal. emit receives every start and stop as it
// happens, from Run's goroutine. A fault with a Rand of its own draws
// from it, leaving the cluster's source to whatever else draws from it
// (a Schedule running beside the timeline).
func (t Timeline) Run(ctx context.Context, c Cluster, now func() time.Duration, until time.Duration, emit func(Event)) {
	on := map[int]bool{}
	var order []int // the faults on, in start order
	cluster := func(i int) Cluster {
		if t[i].Rand == nil {
			return c
		}
		s := seeded{c, t[i].Rand}
		if cl, ok := c.(Clocks); ok {
			return seededClocks{s, cl}
		}
		return s
	}
	stop := func(i int) {
		v, err := t[i].Fault.Stop(cluster(i))
		emit(Event{At: now(), F: "stop-" + t[i].Fault.Name(), Value: v, Err: err})
		delete(on, i)
		for k, j := range order {
			if j == i {
				order = append(order[:k], order[k+1:]...)
				break
			}
		}
	}
	defer func() {
		for len(order) > 0 {
			stop(order[len(order)-1])
		}
	}()
	// wait sleeps to at, and reports whether the run goes on.
	wait := func(at time.Duration) bool {
		if d := at - now(); d > 0 {
			timer := time.NewTimer(d)
			defer timer.Stop()
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		return ctx.Err() == nil
	}
	for _, e := range t.edges() {
		if e.at >= until {
			if len(order) > 0 {
				wait(until)
			}
			return
		}
		if !wait(e.at) {
			return
		}
		if !e.start {
			if on[e.i] {
				stop(e.i)
			}
			continue
		}
		f := t[e.i]
		v, err := f.Fault.Start(cluster(e.i))
		emit(Event{At: now(), F: "start-" + f.Fault.Name(), Value: v, Err: err})
		on[e.i] = true
		order = append(order, e.i)
	}
}

// seeded is a cluster whose source is a fault's own.
type seeded struct {
	Cluster
	rng *rand.Rand
}

func (s seeded) Rand() *rand.Rand { return s.rng }

// seededClocks keeps the clocks of a cluster that has them.
type seededClocks struct {
	seeded
	Clocks
}
