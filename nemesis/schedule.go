package nemesis

import (
	"context"
	"strings"
	"time"

	"github.com/pkg/errors"
)

// Schedule starts faults one after another: after a quiet Interval, a fault
// (picked at random from Faults, or each in turn with InTurn) stays on for
// Duration, is stopped, and so on. Every choice comes from the cluster's
// seeded random source, so one seed gives one schedule.
type Schedule struct {
	Faults   []Fault
	Interval time.Duration // quiet time before each fault; default 5s
	Duration time.Duration // time each fault stays on; default 5s
	InTurn   bool
	// Jitter spreads each interval by up to this much (seeded).
	Jitter time.Duration
}

// WithDefaults fills unset fields.
func (s Schedule) WithDefaults() Schedule {
	if s.Interval == 0 {
		s.Interval = 5 * time.Second
	}
	if s.Duration == 0 {
		s.Duration = 5 * time.Second
	}
	return s
}

// Validate returns an error unless s can run.
func (s Schedule) Validate() error {
	if s.Interval < 0 || s.Duration < 0 || s.Jitter < 0 {
		return errors.New("nemesis: negative schedule duration")
	}
	for i, f := range s.Faults {
		if f == nil {
			return errors.Errorf("nemesis: fault %d is nil", i)
		}
	}
	return nil
}

// String names the schedule's faults.
func (s Schedule) String() string {
	if len(s.Faults) == 0 {
		return "none"
	}
	names := make([]string, len(s.Faults))
	for i, f := range s.Faults {
		names[i] = f.Name()
	}
	return strings.Join(names, ",")
}

// Run carries out the schedule on c until ctx is done or the run clock
// (now) reaches until, then stops the fault that is on, if any: the heal.
// emit receives every start and stop as it happens, from Run's goroutine.
func (s Schedule) Run(ctx context.Context, c Cluster, now func() time.Duration, until time.Duration, emit func(Event)) {
	s = s.WithDefaults()
	if len(s.Faults) == 0 {
		return
	}
	wait := func(d time.Duration) bool {
		left := until - now()
		if left <= 0 {
			return false
		}
		t := time.NewTimer(min(d, left))
		defer t.Stop()
		select {
		case <-t.C:
			return now() < until
		case <-ctx.Done():
			return false
		}
	}
	for i := 0; ; i++ {
		d := s.Interval
		if s.Jitter > 0 {
			d += time.Duration(c.Rand().Int64N(int64(s.Jitter) + 1))
		}
		if !wait(d) {
			return
		}
		f := s.Faults[i%len(s.Faults)]
		if !s.InTurn {
			f = s.Faults[c.Rand().IntN(len(s.Faults))]
		}
		v, err := f.Start(c)
		emit(Event{At: now(), F: "start-" + f.Name(), Value: v, Err: err})
		wait(s.Duration)
		v, err = f.Stop(c)
		emit(Event{At: now(), F: "stop-" + f.Name(), Value: v, Err: err})
	}
}
