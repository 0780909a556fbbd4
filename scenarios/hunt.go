package scenarios

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/simnet/sim"
)

// HuntReport is a sweep of seeds in the simulator.
type HuntReport struct {
	Scenario string
	From, To int64
	// Hits are the seeds whose run breaks a property: for a planted bug,
	// the seeds that catch it; otherwise, the seeds that find a real
	// violation.
	Hits    []int64
	Errors  []string
	Elapsed time.Duration
}

// SeedsPerMinute is the sweep's speed.
func (h HuntReport) SeedsPerMinute() float64 {
	return float64(h.To-h.From+1) / h.Elapsed.Minutes()
}

// Hunt runs seeds from..to of sc in the simulator on workers goroutines
// (one run each at a time; every run is deterministic whichever worker
// runs it) and reports the seeds that break a property. progress, if not
// nil, receives a line per hit.
func Hunt(sc Scenario, from, to int64, workers int, opts Options, progress io.Writer) (HuntReport, error) {
	if from < 0 || to < from || to-from >= 10_000_000 {
		return HuntReport{}, errors.Errorf("bad seed range %d-%d", from, to)
	}
	if workers < 1 {
		workers = 1
	}
	if _, _, err := SimConfig(sc, Options{Seed: from, HasSeed: true, TimeLimit: opts.TimeLimit, Concurrency: opts.Concurrency}); err != nil {
		return HuntReport{}, err
	}
	rep := HuntReport{Scenario: sc.Name, From: from, To: to}
	start := time.Now()
	seeds := make(chan int64)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for seed := range seeds {
				cfg, _, err := SimConfig(sc, Options{Seed: seed, HasSeed: true, TimeLimit: opts.TimeLimit, Concurrency: opts.Concurrency})
				var out SimOutcome
				if err == nil {
					out, err = Simulate(sc, cfg)
				}
				mu.Lock()
				switch {
				case err != nil:
					rep.Errors = append(rep.Errors, fmt.Sprintf("seed %d: %v", seed, err))
				case len(out.Violated()) > 0:
					rep.Hits = append(rep.Hits, seed)
					if progress != nil {
						fmt.Fprintf(progress, "seed %d: %v violated\n", seed, out.Violated())
					}
				}
				mu.Unlock()
			}
		})
	}
	for s := from; s <= to; s++ {
		seeds <- s
	}
	close(seeds)
	wg.Wait()
	sort.Slice(rep.Hits, func(i, j int) bool { return rep.Hits[i] < rep.Hits[j] })
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// ShrinkReport says what shrinking kept.
type ShrinkReport struct {
	Property      string // the violation kept
	Before, After sim.Config
	OpsBefore     int
	OpsAfter      int
	Runs          int // simulations tried
	Report        *Report
}

// Shrink reduces the plan of a failing sim run while its violation still
// reproduces: it drops faults one at a time, then clients, then halves
// the time and the rate, and starts over until nothing more can go. It
// writes the smallest plan and its history into a new run directory.
func Shrink(dir string, opts Options) (*ShrinkReport, error) {
	info, cfg, err := ReadRun(dir)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, errors.Errorf("%s is not a sim run: only sim runs can be shrunk", dir)
	}
	sc, err := Find(info.Scenario)
	if err != nil {
		return nil, err
	}
	first, err := Simulate(sc, *cfg)
	if err != nil {
		return nil, err
	}
	v := first.Violated()
	if len(v) == 0 {
		return nil, errors.Errorf("%s violates nothing: there is nothing to shrink", dir)
	}
	rep := &ShrinkReport{Property: v[0], Before: *cfg, OpsBefore: first.Result.Ops, Runs: 1}
	fails := func(c sim.Config) bool {
		rep.Runs++
		out, err := Simulate(sc, c)
		if err != nil {
			return false
		}
		for _, p := range out.Violated() {
			if p == rep.Property {
				return true
			}
		}
		return false
	}
	cur := *cfg
	for changed := true; changed; {
		changed = false
		for i := len(cur.Faults) - 1; i >= 0; i-- {
			c := cur
			c.Faults = append(append([]sim.FaultSpec(nil), cur.Faults[:i]...), cur.Faults[i+1:]...)
			if fails(c) {
				cur, changed = c, true
			}
		}
		for cur.Clients > 1 {
			c := cur
			c.Clients--
			if !fails(c) {
				break
			}
			cur, changed = c, true
		}
		if cur.TimeLimit >= 2*time.Second {
			c := cur
			c.TimeLimit = cur.TimeLimit / 2
			c.Faults = nil
			for _, f := range cur.Faults {
				if f.At < c.TimeLimit {
					f.For = min(f.For, c.TimeLimit-f.At)
					c.Faults = append(c.Faults, f)
				}
			}
			if fails(c) {
				cur, changed = c, true
			}
		}
		if cur.Rate >= 2 {
			c := cur
			c.Rate = cur.Rate / 2
			if fails(c) {
				cur, changed = c, true
			}
		}
	}
	rep.After = cur
	r, err := runSimConfig(sc, cur, info.Seed, opts, "shrunk from "+dir)
	if err != nil {
		return nil, err
	}
	rep.Report = r
	rep.OpsAfter = r.Verdict.Ops["ok"] + r.Verdict.Ops["fail"] + r.Verdict.Ops["info"]
	return rep, nil
}

// String prints the sizes before and after.
func (r *ShrinkReport) String() string {
	return fmt.Sprintf("shrunk %s keeping %s violated, in %d runs:\n"+
		"  faults      %d -> %d\n  clients     %d -> %d\n  time limit  %v -> %v\n  rate        %g -> %g per client per s\n  operations  %d -> %d\n",
		r.Report.Info.Scenario, r.Property, r.Runs,
		len(r.Before.Faults), len(r.After.Faults), r.Before.Clients, r.After.Clients,
		r.Before.TimeLimit, r.After.TimeLimit, r.Before.Rate, r.After.Rate, r.OpsBefore, r.OpsAfter)
}
