package scenarios

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/checker/history"
)

// CompareOptions say what Compare runs: seeds From..To of a scenario in
// one mode, on each of Systems (default: every system the scenario
// applies to that runs in the mode).
type CompareOptions struct {
	From, To int64
	Mode     string
	Systems  []string
	// T runs the gRPC mode's bubbles; the sim mode needs none.
	T *testing.T
	// Options are the runs' other settings (time limit, concurrency,
	// store for the gRPC mode's run directories, context).
	Options Options
}

// Comparison is what seqlab compare prints: one row per system, every
// system run on the same seeds, and so the same fault plan and client
// pacing.
type Comparison struct {
	Scenario string          `json:"scenario"`
	Mode     string          `json:"mode"`
	From     int64           `json:"from"`
	To       int64           `json:"to"`
	Rows     []ComparisonRow `json:"rows"`
}

// ComparisonRow is one system's figures over the seeds.
type ComparisonRow struct {
	System string `json:"system"`
	Seeds  int    `json:"seeds"`
	// Properties counts, per property, the seeds of each word (held,
	// violated, caught, not promised, n/a, unknown); a property not
	// promised counts its violations apart, under NotPromisedFalse.
	Properties       map[string]map[checker.Word]int `json:"properties"`
	NotPromisedFalse map[string]int                  `json:"not_promised_violated,omitempty"`
	Promises         []string                        `json:"promises"`
	// DuringFaults and AfterHeal are the share of operations that
	// succeeded among those invoked while a fault was on, and after the
	// last fault ended; Ops counts the operations of each.
	DuringFaults    float64 `json:"availability_during_faults"`
	DuringFaultsOps int     `json:"ops_during_faults"`
	AfterHeal       float64 `json:"availability_after_heal"`
	AfterHealOps    int     `json:"ops_after_heal"`
	// P50 and P99 are the latencies of successful operations.
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	// IDs counts the IDs handed out (in ranges, buffers included);
	// Explained and Unexplained the IDs lost below the highest, as the
	// gap check tells them apart. Sparse: the system's IDs are sparse by
	// design and the lost ones are not counted.
	IDs         uint64 `json:"ids"`
	Explained   uint64 `json:"lost_explained"`
	Unexplained uint64 `json:"lost_unexplained"`
	Sparse      bool   `json:"sparse,omitempty"`
	// Messages and Syncs per ID handed out (simulator only: -1 when not
	// measured).
	MessagesPerID float64 `json:"messages_per_id"`
	SyncsPerID    float64 `json:"fsyncs_per_id"`
	// Met counts the seeds whose run met the scenario's expected verdict
	// for the system: every promise held, or a planted bug caught.
	Met int `json:"met"`
	// Errors are seeds that could not run.
	Errors []string `json:"errors,omitempty"`
}

// Compare runs sc on each system over the same seeds and sums up what it
// found.
func Compare(sc Scenario, o CompareOptions) (*Comparison, error) {
	switch {
	case o.From < 0 || o.To < o.From:
		return nil, errors.Errorf("compare: seeds %d-%d: want 0 <= A <= B", o.From, o.To)
	case o.To-o.From >= 100_000:
		return nil, errors.Errorf("compare: seeds %d-%d: at most 100000 seeds", o.From, o.To)
	case o.Mode != ModeSim && o.Mode != ModeGRPC:
		return nil, errors.Errorf("compare: mode %q: want %s or %s", o.Mode, ModeSim, ModeGRPC)
	case o.Mode == ModeGRPC && o.T == nil:
		return nil, errors.New("compare: the gRPC mode needs a *testing.T for its bubbles")
	}
	systems := o.Systems
	if len(systems) == 0 {
		for _, name := range sc.SystemNames() {
			if sc.RunsOn(name, o.Mode) {
				systems = append(systems, name)
			}
		}
	}
	if len(systems) == 0 {
		return nil, errors.Errorf("compare: %s runs on no system in %s mode", sc.Name, o.Mode)
	}
	for _, name := range systems {
		opts := o.Options
		opts.System, opts.Seed, opts.HasSeed = name, o.From, true
		p, _, err := Prepare(sc, opts)
		if err != nil {
			return nil, err
		}
		if err := p.supports(o.Mode); err != nil {
			return nil, err
		}
	}
	c := &Comparison{Scenario: sc.Name, Mode: o.Mode, From: o.From, To: o.To}
	for _, name := range systems {
		var acc rowAcc
		acc.row.System = name
		for seed := o.From; seed <= o.To; seed++ {
			if o.Options.done() {
				break
			}
			opts := o.Options
			opts.System, opts.Seed, opts.HasSeed = name, seed, true
			if err := acc.run(sc, o, opts); err != nil {
				acc.row.Errors = append(acc.row.Errors, fmt.Sprintf("seed %d: %v", seed, err))
			}
		}
		c.Rows = append(c.Rows, acc.finish())
	}
	return c, nil
}

// rowAcc sums one system's runs.
type rowAcc struct {
	row                      ComparisonRow
	during, duringOK         int
	after, afterOK           int
	lat                      []time.Duration
	msgs, syncs              int
	measured                 bool
	promised, notPromisedOne map[string]bool
}

func (a *rowAcc) run(sc Scenario, o CompareOptions, opts Options) error {
	var (
		events  []history.Event
		res     checker.Results
		expect  []string
		prepped Scenario
	)
	prepped, _, err := Prepare(sc, opts)
	if err != nil {
		return err
	}
	if o.Mode == ModeSim {
		cfg, _, err := SimConfig(sc, opts)
		if err != nil {
			return err
		}
		out, err := Simulate(sc, cfg)
		if err != nil {
			return err
		}
		if events, _, err = history.Read(bytes.NewReader(out.Result.History)); err != nil {
			return err
		}
		res = out.Results
		if out.Met() {
			a.row.Met++
		}
		a.msgs += out.Result.Messages
		a.syncs += out.Result.Syncs
		a.measured = true
	} else {
		opts.Out = discard{}
		rep, err := Run(o.T, sc, opts)
		if err != nil {
			return err
		}
		if events, _, err = history.ReadFile(filepath.Join(rep.Dir, "history.jsonl")); err != nil {
			return err
		}
		res = rep.Verdict.Results
		if rep.Met() {
			a.row.Met++
		}
	}
	expect = prepped.Expect.Violates
	r := &a.row
	if sys, err := LookupSystem(prepped.System()); err == nil {
		r.Sparse = sys.Sparse
	}
	r.Seeds++
	r.Promises = prepped.Promises
	if r.Properties == nil {
		r.Properties, r.NotPromisedFalse = map[string]map[checker.Word]int{}, map[string]int{}
	}
	for _, p := range checker.Properties {
		chk, ok := res.Checks[p]
		if !ok {
			continue
		}
		w := res.Word(p)
		if slices.Contains(expect, p) && chk.Valid == checker.ValidFalse {
			w = checker.Caught
		}
		if r.Properties[p] == nil {
			r.Properties[p] = map[checker.Word]int{}
		}
		r.Properties[p][w]++
		if !slices.Contains(prepped.Promises, p) && chk.Valid == checker.ValidFalse {
			r.NotPromisedFalse[p]++
		}
	}
	if g, ok := res.Checks[checker.GapFree].Details.(checker.GapDetails); ok {
		r.Explained += g.ExplainedIDs
		r.Unexplained += g.UnexplainedIDs
	}
	a.ops(events)
	return nil
}

// ops adds a run's operations to the availability, latency and ID
// counts.
func (a *rowAcc) ops(events []history.Event) {
	var active int
	var lastStop int64 = -1
	type window struct{ from, to int64 }
	var faulty []window
	var openAt int64
	for _, e := range events {
		if !e.Nemesis {
			continue
		}
		switch {
		case strings.HasPrefix(e.F, "start-"):
			if active == 0 {
				openAt = e.Time
			}
			active++
		case strings.HasPrefix(e.F, "stop-") && active > 0:
			active--
			if active == 0 {
				faulty = append(faulty, window{openAt, e.Time})
				lastStop = e.Time
			}
		}
	}
	if active > 0 {
		faulty = append(faulty, window{openAt, 1<<63 - 1})
	}
	inFault := func(t int64) bool {
		for _, w := range faulty {
			if t >= w.from && t < w.to {
				return true
			}
		}
		return false
	}
	invoked := map[int]int64{}
	for _, e := range events {
		if e.Nemesis {
			continue
		}
		if e.Type == history.Invoke {
			invoked[e.Process] = e.Time
			continue
		}
		at, ok := invoked[e.Process]
		if !ok {
			continue
		}
		delete(invoked, e.Process)
		good := e.Type == history.Ok
		switch {
		case inFault(at):
			a.during++
			if good {
				a.duringOK++
			}
		case lastStop >= 0 && at >= lastStop:
			a.after++
			if good {
				a.afterOK++
			}
		}
		if !good {
			continue
		}
		a.lat = append(a.lat, time.Duration(e.Time-at))
		if e.F == "next-range" {
			if v, err := e.Range(); err == nil && v.To > v.From {
				a.row.IDs += v.To - v.From
			}
		}
	}
}

func (a *rowAcc) finish() ComparisonRow {
	r := a.row
	share := func(ok, n int) float64 {
		if n == 0 {
			return -1
		}
		return float64(ok) / float64(n)
	}
	r.DuringFaults, r.DuringFaultsOps = share(a.duringOK, a.during), a.during
	r.AfterHeal, r.AfterHealOps = share(a.afterOK, a.after), a.after
	if len(a.lat) > 0 {
		sort.Slice(a.lat, func(i, j int) bool { return a.lat[i] < a.lat[j] })
		r.P50 = a.lat[len(a.lat)/2]
		r.P99 = a.lat[min(len(a.lat)-1, len(a.lat)*99/100)]
	}
	r.MessagesPerID, r.SyncsPerID = -1, -1
	if a.measured && r.IDs > 0 {
		r.MessagesPerID = float64(a.msgs) / float64(r.IDs)
		r.SyncsPerID = float64(a.syncs) / float64(r.IDs)
	}
	if r.Sparse {
		r.Explained, r.Unexplained = 0, 0
	}
	return r
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Table is the comparison for a terminal: one row per system, then one
// line per property.
func (c *Comparison) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "compare %s, seeds %d-%d, %s mode\n\n", c.Scenario, c.From, c.To, c.Mode)
	cols := []string{"system", "seeds", "met"}
	props := c.properties()
	cols = append(cols, props...)
	cols = append(cols, "avail faults", "avail healed", "p50", "p99", "IDs lost expl/unexpl", "msgs/ID", "fsyncs/ID")
	rows := [][]string{cols}
	for _, r := range c.Rows {
		row := []string{r.System, fmt.Sprint(r.Seeds), fmt.Sprintf("%d/%d", r.Met, r.Seeds)}
		for _, p := range props {
			row = append(row, r.propertyCell(p))
		}
		lost := fmt.Sprintf("%d/%d", r.Explained, r.Unexplained)
		if r.Sparse {
			lost = "n/a (sparse)"
		}
		row = append(row, pct(r.DuringFaults), pct(r.AfterHeal), dur(r.P50), dur(r.P99), lost, ratio(r.MessagesPerID), ratio(r.SyncsPerID))
		rows = append(rows, row)
	}
	widths := make([]int, len(cols))
	for _, row := range rows {
		for i, cell := range row {
			widths[i] = max(widths[i], len(cell))
		}
	}
	for _, row := range rows {
		for i, cell := range row {
			fmt.Fprintf(&b, "%-*s", widths[i]+2, cell)
		}
		b.WriteString("\n")
	}
	for _, r := range c.Rows {
		for _, e := range r.Errors[:min(len(r.Errors), 3)] {
			fmt.Fprintf(&b, "error   %s %s\n", r.System, e)
		}
	}
	return b.String()
}

// properties are the properties some row checked, in checker order.
func (c *Comparison) properties() []string {
	var out []string
	for _, p := range checker.Properties {
		for _, r := range c.Rows {
			if _, ok := r.Properties[p]; ok {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// propertyCell is one property's counts: "held 100", "violated 3/100",
// "caught 100/100", "not promised (violated 40/100)".
func (r ComparisonRow) propertyCell(p string) string {
	words := r.Properties[p]
	if len(words) == 0 {
		return "-"
	}
	if !slices.Contains(r.Promises, p) {
		if n := r.NotPromisedFalse[p]; n > 0 {
			return fmt.Sprintf("not promised (violated %d/%d)", n, r.Seeds)
		}
		if words[checker.NA] == r.Seeds {
			return "n/a"
		}
		return "not promised (held)"
	}
	for _, w := range []checker.Word{checker.Caught, checker.Violated, checker.Unknown} {
		if n := words[w]; n > 0 {
			return fmt.Sprintf("%s %d/%d", w, n, r.Seeds)
		}
	}
	if n := words[checker.NA]; n == r.Seeds {
		return "n/a"
	}
	return fmt.Sprintf("held %d/%d", words[checker.Held], r.Seeds)
}

func pct(f float64) string {
	if f < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*f)
}

func dur(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(100 * time.Microsecond).String()
}

func ratio(f float64) string {
	if f < 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", f)
}

// Kept reports whether every system met the scenario's expected verdict
// on every seed (every promise held, or a planted bug caught), and every
// seed ran.
func (c *Comparison) Kept() bool {
	for _, r := range c.Rows {
		if len(r.Errors) > 0 || r.Met != r.Seeds {
			return false
		}
	}
	return true
}
