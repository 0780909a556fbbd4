package scenarios

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/nemesis"
	"github.com/seqlab/seqlab/simnet/sim"
)

// TimedFault is one fault of a scenario's explicit timeline: a script's
// start, paired with what stops it.
type TimedFault struct {
	// At is when the fault starts, For how long it stays on (0: it
	// stops at once, as a one-shot fault may).
	At, For time.Duration
	// Fault is a registered nemesis name, Targets what nemesis.Targeted
	// takes for it; without targets the fault draws them.
	Fault   string
	Targets []string
	// Seed fixes the draw of a fault without targets; nil: a seed drawn
	// from the run's.
	Seed *uint64
}

// FaultWindow is a random schedule over a part of the run, as the
// scenario's own (Faults) is over all of it: from From on, after each
// quiet Interval (plus up to half of it again), a fault of Faults, drawn
// or the next in turn, stays on for For; none starts at or after Until.
// Each window draws from a seed of its own, drawn from the run's.
type FaultWindow struct {
	From, Until   time.Duration
	Faults        []string
	Interval, For time.Duration // 0: 3s each
	InTurn        bool
}

// FaultNames lists every fault the scenario can start, by name, each
// once: its random schedule's, its timeline's and its windows'.
func (s Scenario) FaultNames() []string {
	var out []string
	add := func(names ...string) {
		for _, n := range names {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	add(s.Faults...)
	for _, f := range s.Timeline {
		add(f.Fault)
	}
	for _, w := range s.Windows {
		add(w.Faults...)
	}
	return out
}

// validateTimeline checks the timeline and the windows against the
// cluster (with its defaults): names, targets, shapes, times.
func (s Scenario) validateTimeline() error {
	var nodes, clients []string
	for i := range s.Cluster.Nodes {
		nodes = append(nodes, fmt.Sprintf("n%d", i+1))
	}
	for k := range s.Workload.IDClients {
		clients = append(clients, fmt.Sprintf("k%d", k+1))
	}
	for i, t := range s.Timeline {
		if i > 0 && t.At < s.Timeline[i-1].At {
			return errors.Errorf("timeline: %s at %v comes after %s at %v: the timeline goes in time order", t.Fault, t.At, s.Timeline[i-1].Fault, s.Timeline[i-1].At)
		}
		if t.At < 0 || t.For < 0 {
			return errors.Errorf("timeline: %s at %v for %v: negative time", t.Fault, t.At, t.For)
		}
		f, err := nemesis.Targeted(t.Fault, t.Targets)
		if err == nil {
			err = nemesis.Fits(f, nodes)
		}
		if err == nil {
			err = nemesis.CheckTargets(f, nodes, clients)
		}
		if err != nil {
			return errors.Wrapf(err, "timeline: at %v", t.At)
		}
	}
	for i, w := range s.Windows {
		if i > 0 && w.From < s.Windows[i-1].From {
			return errors.Errorf("fault window %v..%v comes after one from %v: the windows go in time order", w.From, w.Until, s.Windows[i-1].From)
		}
		if w.From < 0 || w.Until <= w.From || w.Interval < 0 || w.For < 0 {
			return errors.Errorf("fault window %v..%v: empty, or negative times", w.From, w.Until)
		}
		if len(w.Faults) == 0 {
			return errors.Errorf("fault window %v..%v has no faults", w.From, w.Until)
		}
		for _, name := range w.Faults {
			if _, err := nemesis.Lookup(name); err != nil {
				return errors.Wrapf(err, "fault window %v..%v", w.From, w.Until)
			}
		}
	}
	return nil
}

// planned is one fault of a run's plan; random marks the scenario's own
// random schedule's, which the gRPC and process modes draw as they go.
type planned struct {
	sim.FaultSpec
	random bool
}

// FaultPlan is every fault of a run of s (with its defaults) with seed,
// as the simulator plays them, in time order: the random schedule of
// Faults up to the recovery, each window's (cut to end there too), and
// the timeline's. A scenario with neither timeline nor windows has the
// plan it always had, fault for fault.
func (s Scenario) FaultPlan(seed int64) []sim.FaultSpec {
	var out []sim.FaultSpec
	for _, p := range s.plan(seed) {
		out = append(out, p.FaultSpec)
	}
	return out
}

func (s Scenario) plan(seed int64) []planned {
	end := s.TimeLimit - s.Recovery
	var out []planned
	for _, f := range sim.Plan(seed, sim.Schedule{Faults: s.Faults, Interval: s.Interval, Duration: s.FaultFor, Jitter: s.Interval / 2,
		InTurn: s.InTurn}, end) {
		out = append(out, planned{f, true})
	}
	for i, w := range s.Windows {
		until := min(w.Until, end)
		if w.From >= until {
			continue
		}
		interval, dur := w.Interval, w.For
		if interval == 0 {
			interval = 3 * time.Second
		}
		if dur == 0 {
			dur = 3 * time.Second
		}
		wseed := int64(rand.New(rand.NewPCG(uint64(seed), 0x77696e64<<8|uint64(i))).Uint64() >> 1)
		for _, f := range sim.Plan(wseed, sim.Schedule{Faults: w.Faults, Interval: interval, Duration: dur, Jitter: interval / 2,
			InTurn: w.InTurn}, until-w.From) {
			f.At += w.From
			out = append(out, planned{f, false})
		}
	}
	for i, t := range s.Timeline {
		if t.At >= end {
			continue
		}
		f := sim.FaultSpec{Name: t.Fault, At: t.At, For: min(t.For, end-t.At), Targets: slices.Clone(t.Targets)}
		if t.Seed != nil {
			f.Seed = *t.Seed
		} else {
			f.Seed = rand.New(rand.NewPCG(uint64(seed), 0x74696d65<<8|uint64(i))).Uint64()
		}
		out = append(out, planned{f, false})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out
}

// nemesisTimeline is the timeline a gRPC or process run plays beside
// the random schedule of Faults (which nemesis.Schedule draws as it
// goes): every other fault of the plan, each drawing from the source the
// simulator gives it.
func (s Scenario) nemesisTimeline(seed int64) (nemesis.Timeline, error) {
	var out nemesis.Timeline
	for i, p := range s.plan(seed) {
		if p.random {
			continue
		}
		f, err := nemesis.Targeted(p.Name, p.Targets)
		if err != nil {
			return nil, err
		}
		out = append(out, nemesis.Timed{At: p.At, For: p.For, Fault: f, Rand: rand.New(rand.NewPCG(p.Seed, uint64(i)))})
	}
	return out, out.Validate()
}
