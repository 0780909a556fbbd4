package scenarios

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/simnet/sim"
)

// HuntReport is a sweep of seeds in the simulator.
type HuntReport struct {
	Scenario string
	System   string
	From, To int64
	// Shard of Shards is the part of From..To the hunt ran (see
	// HuntPlan); Total counts its seeds.
	Shard, Shards int64
	Total         int64
	// Done counts the seeds run, Resumed those of them that an earlier
	// run of the hunt recorded in its journal.
	Done, Resumed int64
	// Hits are the seeds whose run breaks a property: for a planted bug,
	// the seeds that catch it; otherwise, the seeds that find a real
	// violation.
	Hits    []int64
	Errors  []string
	Elapsed time.Duration
	// Interrupted: opts.Context ended before every seed was run.
	Interrupted bool
	// Stopped: the hunt reached HuntPlan.MaxFailures.
	Stopped bool
	// Dir is the hunt's directory, with its journal, if it keeps one.
	Dir string
}

// SeedsPerMinute is the sweep's speed, over the seeds this run ran.
func (h HuntReport) SeedsPerMinute() float64 {
	return float64(h.Done-h.Resumed) / h.Elapsed.Minutes()
}

// HuntProgress is how far a hunt has got.
type HuntProgress struct {
	Done, Total int64
	Hits        int
	Errors      int
	Elapsed     time.Duration
}

// SeedsPerSecond is the speed so far.
func (p HuntProgress) SeedsPerSecond() float64 { return float64(p.Done) / p.Elapsed.Seconds() }

// Left estimates the time to the last seed at the speed so far.
func (p HuntProgress) Left() time.Duration {
	if p.Done == 0 {
		return 0
	}
	return time.Duration(float64(p.Elapsed) / float64(p.Done) * float64(p.Total-p.Done))
}

// Hunt runs seeds from..to of sc in the simulator on workers goroutines
// (one run each at a time; every run is deterministic whichever worker
// runs it) and reports the seeds that break a property. progress, if not
// nil, is called after every seed, one call at a time. When
// opts.Context ends, no new seed starts, the workers finish the ones they
// have, and the report says what the seeds run so far found.
func Hunt(sc Scenario, from, to int64, workers int, opts Options, progress func(HuntProgress)) (HuntReport, error) {
	return HuntSeeds(sc, HuntPlan{From: from, To: to, Workers: workers}, opts, progress)
}

// ShrinkReport says what shrinking kept.
type ShrinkReport struct {
	Property      string // the violation kept
	Before, After SimPlan
	// OpsBefore and OpsAfter count the operations the clients invoked;
	// ClientsBefore and ClientsAfter the clients that invoked any.
	OpsBefore, OpsAfter         int
	ClientsBefore, ClientsAfter int
	Runs                        int // simulations tried
	Elapsed                     time.Duration
	Report                      *Report
	// Script is the shrunk run as a script (ShrunkFile in the shrunk
	// run's directory), which replays it bit for bit; empty, with
	// ScriptProblem saying why, when a script cannot say it.
	Script, ScriptProblem string
}

// Shrink reduces the plan of a failing sim run while its violation still
// reproduces. It spells the run's workload out operation by operation
// (the same run, bit for bit), then, until nothing more goes: halves the
// time, drops whole faults, whole clients, and runs of operations down to
// single ones (delta debugging). The result is 1-minimal: removing any
// one fault or operation from it loses the violation. It writes the
// smallest plan and its history into a new run directory.
func Shrink(dir string, opts Options) (*ShrinkReport, error) {
	start := time.Now()
	info, cfg, err := ReadRun(dir)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		cmd := fmt.Sprintf("seqlab run %s --mode sim --seed %d", info.Scenario, info.Seed)
		if info.TimeLimit > 0 {
			cmd += fmt.Sprintf(" --time-limit %v", info.TimeLimit)
		}
		return nil, errors.Errorf("%s is a %s-mode run, and only sim runs can be shrunk: `%s` runs the same scenario and seed in the simulator, to shrink in turn (the same seed gives the simulator its own interleaving, so it may or may not fail there; `seqlab hunt %s` finds seeds that do)",
			dir, info.Mode, cmd, info.Scenario)
	}
	sc, err := RunScenario(dir, info.Scenario)
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
	s := &shrinker{sc: sc, rep: &ShrinkReport{Property: v[0], Before: *cfg, Runs: 1,
		OpsBefore: len(first.Result.Workload), ClientsBefore: activeClients(first.Result.Workload)}}
	cur := *cfg
	cur.Ops = first.Result.Workload
	if !s.fails(cur) {
		return nil, errors.Errorf("%s: the run with its workload spelt out no longer violates %s (a simulator bug)", dir, s.rep.Property)
	}
	for changed := true; changed; {
		changed = false
		for _, step := range []func(SimPlan) (SimPlan, bool){s.shorter, s.fewerFaults, s.fewerClients, s.fewerOps} {
			if c, ok := step(cur); ok {
				cur, changed = c, true
			}
		}
	}
	s.rep.After = cur
	r, err := runSimConfig(sc, cur, info.Seed, opts, "shrunk from "+dir)
	if err != nil {
		return nil, err
	}
	s.rep.Report = r
	s.rep.OpsAfter, s.rep.ClientsAfter = len(cur.Ops), activeClients(cur.Ops)
	if s.rep.Script, err = writeShrunk(sc, cur, info.Seed, s.rep.Property, dir, r); err != nil {
		s.rep.ScriptProblem = err.Error()
	}
	s.rep.Elapsed = time.Since(start)
	return s.rep, nil
}

// writeShrunk writes the shrunk plan p as a script in the shrunk run's
// directory, once it has made sure that the script replays the run bit
// for bit, and returns its path.
func writeShrunk(sc Scenario, p SimPlan, seed int64, property, from string, r *Report) (string, error) {
	system := p.SystemName
	if system == "" {
		system = RRSeq
	}
	psc, _, err := Prepare(sc, Options{System: system})
	if err != nil {
		return "", err
	}
	path := filepath.Join(r.Dir, ShrunkFile)
	text := fmt.Appendf(nil, "# The shrunk run of %s\n"+
		"# (seqlab shrink), its operations and faults spelt out. It replays bit\n"+
		"# for bit with\n#   seqlab run %s --mode sim\n"+
		"# Remove a step or an op to see what the violation needs; copy it to\n"+
		"# scenarios/testdata/ to keep it as a regression scenario.\n", from, path)
	text = append(text, shrunkScript(psc, p, seed, property).Format()...)
	back, err := ParseScript(path, text)
	if err != nil {
		return "", errors.Wrap(err, "the shrunk run as a script does not parse (a lab bug)")
	}
	again, _, err := SimConfig(back, Options{System: psc.System()})
	if err != nil {
		return "", errors.Wrap(err, "the shrunk run as a script")
	}
	res, err := again.Run(false)
	if err != nil {
		return "", errors.Wrap(err, "the shrunk run as a script")
	}
	if res.Hash != r.Info.Hash {
		return "", errors.Errorf("the shrunk run as a script runs otherwise (hash %s, the run's %s): a lab bug", res.Hash, r.Info.Hash)
	}
	return path, errors.Wrap(os.WriteFile(path, text, 0o644), "write the shrunk script")
}

type shrinker struct {
	sc  Scenario
	rep *ShrinkReport
}

// fails runs c and reports whether it still violates the property.
func (s *shrinker) fails(c SimPlan) bool {
	s.rep.Runs++
	out, err := Simulate(s.sc, c)
	if err != nil {
		return false
	}
	return slices.Contains(out.Violated(), s.rep.Property)
}

// shorter halves the time limit while the violation stays, then cuts it
// to just after the last operation could have ended.
func (s *shrinker) shorter(cur SimPlan) (SimPlan, bool) {
	shrunk := false
	for cur.TimeLimit >= 2*time.Second {
		c := truncate(cur, cur.TimeLimit/2)
		if !s.fails(c) {
			break
		}
		cur, shrunk = c, true
	}
	var last time.Duration
	for _, o := range cur.Ops {
		last = max(last, o.At)
	}
	if end := last + cur.OpTimeout + time.Millisecond; end < cur.TimeLimit {
		if c := truncate(cur, end); s.fails(c) {
			cur, shrunk = c, true
		}
	}
	return cur, shrunk
}

// truncate ends a plan at limit: later operations and faults go.
func truncate(cur SimPlan, limit time.Duration) SimPlan {
	c := cur
	c.TimeLimit = limit
	c.Faults, c.Ops = nil, []sim.OpSpec{}
	for _, f := range cur.Faults {
		if f.At < limit {
			f.For = min(f.For, limit-f.At)
			c.Faults = append(c.Faults, f)
		}
	}
	for _, o := range cur.Ops {
		if o.At < limit {
			c.Ops = append(c.Ops, o)
		}
	}
	return c
}

// fewerFaults drops faults one at a time.
func (s *shrinker) fewerFaults(cur SimPlan) (SimPlan, bool) {
	shrunk := false
	for i := len(cur.Faults) - 1; i >= 0; i-- {
		c := cur
		c.Faults = slices.Delete(slices.Clone(cur.Faults), i, i+1)
		if s.fails(c) {
			cur, shrunk = c, true
		}
	}
	return cur, shrunk
}

// fewerClients drops every operation of one client at a time.
func (s *shrinker) fewerClients(cur SimPlan) (SimPlan, bool) {
	shrunk := false
	for client := cur.Clients + cur.IDClients - 1; client >= 0; client-- {
		c := cur
		c.Ops = slices.DeleteFunc(slices.Clone(cur.Ops), func(o sim.OpSpec) bool { return o.Client == client })
		if len(c.Ops) < len(cur.Ops) && s.fails(c) {
			cur, shrunk = c, true
		}
	}
	return cur, shrunk
}

// fewerOps is delta debugging over the operations: it tries removing
// chunks, halving their size down to single operations, and stops after
// a pass over single operations removes none.
func (s *shrinker) fewerOps(cur SimPlan) (SimPlan, bool) {
	shrunk := false
	parts := 2
	for len(cur.Ops) > 0 {
		size := (len(cur.Ops) + parts - 1) / parts
		removed := false
		for from := 0; from < len(cur.Ops); {
			c := cur
			c.Ops = slices.Delete(slices.Clone(cur.Ops), from, min(from+size, len(cur.Ops)))
			if s.fails(c) {
				cur, shrunk, removed = c, true, true
				continue // the next chunk has moved to from
			}
			from += size
		}
		switch {
		case size == 1 && !removed:
			return cur, shrunk // 1-minimal
		case !removed:
			parts *= 2
		}
	}
	return cur, shrunk
}

func activeClients(ops []sim.OpSpec) int {
	seen := map[int]bool{}
	for _, o := range ops {
		seen[o.Client] = true
	}
	return len(seen)
}

// String prints the sizes before and after.
func (r *ShrinkReport) String() string {
	return fmt.Sprintf("shrunk %s keeping %s violated, in %d runs (%.2fs):\n"+
		"  faults      %d -> %d\n  clients     %d -> %d\n  operations  %d -> %d\n  time limit  %v -> %v\n",
		r.Report.Info.Scenario, r.Property, r.Runs, r.Elapsed.Seconds(),
		len(r.Before.Faults), len(r.After.Faults), r.ClientsBefore, r.ClientsAfter,
		r.OpsBefore, r.OpsAfter, r.Before.TimeLimit, r.After.TimeLimit) + r.scriptLine()
}

// scriptLine says where the shrunk script is, or why there is none.
func (r *ShrinkReport) scriptLine() string {
	if r.Script == "" {
		return fmt.Sprintf("  script      none: %s\n", r.ScriptProblem)
	}
	return fmt.Sprintf("  script      %s (seqlab run %s --mode sim replays it bit for bit)\n", r.Script, r.Script)
}
