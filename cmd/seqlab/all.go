package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/scenarios"
)

// defaultAllHunt is the seeds run --all hunts of each scenario: enough to
// catch each planted bug many times over, and a few minutes at most for
// the whole catalogue on two cores.
const defaultAllHunt = 100

// multiPlan says what a run of several scenarios does with each.
type multiPlan struct {
	mode    string            // "": every mode the scenario supports
	hunt    int64             // seeds 1..hunt in the simulator; 0: no hunt
	process scenarios.Process // what the process mode runs
}

// row is one scenario's line of the summary table.
type row struct {
	name  string
	cells map[string]string // column -> word
}

// runMany runs several scenarios, a line for each run as it ends and the
// block of each that missed its expected verdict, then a table of them
// all. Exit 0 when every run met its expected verdict, 1 when one did
// not, 2 when one could not be carried out.
func runMany(t *testing.T, scs []scenarios.Scenario, plan multiPlan, opts scenarios.Options, stdout, stderr io.Writer) int {
	start := time.Now()
	modes := []string{scenarios.ModeGRPC, scenarios.ModeSim}
	if plan.mode != "" {
		modes = []string{plan.mode}
	}
	cols := modes
	huntCol := ""
	if plan.hunt > 0 {
		huntCol = fmt.Sprintf("hunt 1-%d", plan.hunt)
		cols = append(slices.Clip(cols), huntCol)
	}
	var rows []row
	runs, missed, failed := 0, 0, false
	quiet := opts
	quiet.Out = io.Discard
	interrupted := func() bool { return opts.Context.Err() != nil }
	for _, run := range runsOf(scs, opts.System) {
		sc, system := run.sc, run.system
		if interrupted() {
			break
		}
		quiet.System = system
		opts := opts
		opts.System = system
		r := row{name: sc.Name + " " + system, cells: map[string]string{}}
		for _, mode := range modes {
			if !sc.RunsOn(system, mode) || (mode == scenarios.ModeProcess && runsInProcessMode(sc, plan.process) != "") {
				r.cells[mode] = "-"
				continue
			}
			if interrupted() {
				break
			}
			var rep *scenarios.Report
			var err error
			switch mode {
			case scenarios.ModeGRPC:
				rep, err = scenarios.Run(t, sc, quiet)
			case scenarios.ModeProcess:
				rep, err = scenarios.RunProcess(sc, quiet, plan.process)
			default:
				rep, err = scenarios.RunSim(sc, quiet)
			}
			runs++
			if err != nil {
				fmt.Fprintf(stdout, "ERROR   %-42s %-4s %v\n", r.name, mode, err)
				r.cells[mode], failed = "error", true
				continue
			}
			word := cell(rep)
			status := "ok"
			if !rep.Met() {
				status = "MISSED"
				missed++
				fmt.Fprint(stdout, rep.Block())
			}
			fmt.Fprintf(stdout, "%-7s %-42s %-4s %-12s %5.2fs  %s\n", status, r.name, mode, word, rep.Info.WallTime.Seconds(), rep.Dir)
			r.cells[mode] = word
		}
		if huntCol != "" && sc.RunsOn(system, scenarios.ModeSim) && !interrupted() {
			word, met := huntCell(sc, plan.hunt, opts)
			runs++
			if !met {
				missed++
			}
			status, again := "ok", ""
			if !met {
				status = "MISSED"
				again = fmt.Sprintf("seqlab hunt %s --system %s --seeds 1-%d", sc.Name, system, plan.hunt)
				if opts.TimeLimit > 0 {
					again += fmt.Sprintf(" --time-limit %v", opts.TimeLimit)
				}
				if opts.Concurrency > 0 {
					again += fmt.Sprintf(" --concurrency %d", opts.Concurrency)
				}
				again = "   (" + again + " records the first)"
			}
			fmt.Fprintf(stdout, "%-7s %-42s hunt %s%s\n", status, r.name, word, again)
			r.cells[huntCol] = word
		} else if huntCol != "" {
			r.cells[huntCol] = "-"
		}
		rows = append(rows, r)
	}
	printTable(stdout, rows, cols)
	what := fmt.Sprintf("%d runs of %d scenarios and systems", runs, len(rows))
	switch {
	case interrupted():
		fmt.Fprintf(stdout, "INTERRUPTED after %s in %v; the run directories above keep what ran\n", what, time.Since(start).Round(time.Second))
		fmt.Fprintf(stderr, "seqlab run: interrupted after %s\n", what)
		return exitInterrupted
	case failed:
		fmt.Fprintf(stdout, "%s in %v: some could not be carried out\n", what, time.Since(start).Round(time.Second))
		return 2
	case missed > 0:
		fmt.Fprintf(stdout, "%s in %v: %d MISSED their expected verdict (blocks above)\n", what, time.Since(start).Round(time.Second), missed)
		return 1
	}
	fmt.Fprintf(stdout, "%s in %v: every one met its expected verdict\n", what, time.Since(start).Round(time.Second))
	return 0
}

// scenarioRun is one scenario on one system.
type scenarioRun struct {
	sc     scenarios.Scenario
	system string
}

// runsOf pairs each scenario with each system it applies to, or with
// system alone when one is named.
func runsOf(scs []scenarios.Scenario, system string) []scenarioRun {
	var out []scenarioRun
	for _, sc := range scs {
		systems := sc.SystemNames()
		if system != "" {
			systems = []string{system}
		}
		for _, s := range systems {
			out = append(out, scenarioRun{sc, s})
		}
	}
	return out
}

// cell is a run's word in the table: caught, held, violated or unknown,
// with "MISSED" when that was not the expected verdict.
func cell(rep *scenarios.Report) string {
	w := string(rep.Verdict.Valid.Word())
	if len(rep.Info.Expect) > 0 && rep.Met() {
		w = string(checker.Caught)
	}
	if rep.Info.Interrupted {
		w = "interrupted"
	}
	if !rep.Met() {
		w += " MISSED"
	}
	return w
}

// huntCell hunts seeds 1..n of sc and says what they found.
func huntCell(sc scenarios.Scenario, n int64, opts scenarios.Options) (string, bool) {
	h, err := scenarios.Hunt(sc, 1, n, runtime.GOMAXPROCS(0), opts, nil)
	if err != nil {
		return "error: " + err.Error(), false
	}
	if len(h.Errors) > 0 {
		return fmt.Sprintf("unknown: %d errors", len(h.Errors)), false
	}
	bug := len(sc.Expect.Violates) > 0
	hits := len(h.Hits)
	switch {
	case bug && hits > 0:
		return fmt.Sprintf("caught by %d of %d", hits, h.Done), true
	case bug && sc.Expect.Rare:
		// A rare bug needs more seeds than a quick hunt: CI's hunts
		// catch it.
		return fmt.Sprintf("not caught in %d (rare: hunt more seeds)", h.Done), true
	case bug:
		return fmt.Sprintf("NOT caught in %d MISSED", h.Done), false
	case hits == 0:
		return fmt.Sprintf("held on %d of %d", h.Done, h.Done), true
	}
	return fmt.Sprintf("violated by %d of %d: seeds %s MISSED", hits, h.Done, compactSeeds(h.Hits)), false
}

func printTable(w io.Writer, rows []row, cols []string) {
	width := len("scenario")
	for _, r := range rows {
		width = max(width, len(r.name))
	}
	colw := map[string]int{}
	for _, c := range cols {
		colw[c] = len(c)
		for _, r := range rows {
			colw[c] = max(colw[c], len(r.cells[c]))
		}
	}
	line := func(first string, cells func(c string) string) {
		var b strings.Builder
		fmt.Fprintf(&b, "%-*s", width, first)
		for _, c := range cols {
			fmt.Fprintf(&b, "  %-*s", colw[c], cells(c))
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	fmt.Fprintln(w)
	line("scenario", func(c string) string { return c })
	for _, r := range rows {
		line(r.name, func(c string) string {
			if v, ok := r.cells[c]; ok {
				return v
			}
			return "interrupted"
		})
	}
}
