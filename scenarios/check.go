package scenarios

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/checker/history"
)

// Verdict is the checker's word on a run, condensed for the block.
type Verdict struct {
	Valid   checker.Valid
	Checks  map[string]string // check name -> "word reason"
	Ops     map[string]int    // client completions by type
	Results checker.Results
	// Faults counts the faults applied, by name; FaultErrors are the
	// faults that failed to start or stop, as recorded.
	Faults      map[string]int
	FaultErrors []string
	// Evidence are the history lines of the first offending operations
	// of the first failed check, to read without opening the file.
	Evidence []string
}

// maxEvidence caps Verdict.Evidence.
const maxEvidence = 6

// CheckTimeout bounds the checks of one run; past it they say unknown.
var CheckTimeout = time.Minute

func checkRun(dir string, sc Scenario) (Verdict, error) {
	v := Verdict{Checks: map[string]string{}, Ops: map[string]int{}, Faults: map[string]int{}}
	if err := v.tally(filepath.Join(dir, "history.jsonl")); err != nil {
		return Verdict{}, err
	}
	// sc is prepared: its Promises are the run's (a process-mode run's
	// --promise among them), and only its system's sparseness is looked up.
	sys, _ := LookupSystem(sc.System())
	res, err := checker.CheckDir(dir, sc.checkOptions(sys, checker.Options{Timeout: CheckTimeout, VisualizeDir: dir}))
	if err != nil {
		return Verdict{}, errors.Wrap(err, "check history")
	}
	if err := checker.WriteResults(filepath.Join(dir, checker.ResultsFile), res); err != nil {
		return Verdict{}, err
	}
	v.Valid, v.Results = res.Valid, res
	for name, r := range res.Checks {
		v.Checks[name] = fmt.Sprintf("%s %s", res.Word(name), r.Reason)
	}
	v.Evidence = evidence(dir, sc, res)
	return v, nil
}

// tally counts the history's faults and outcomes, and the faults that
// failed, reading it an event at a time: a long run's history is never
// held whole.
func (v *Verdict) tally(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return errors.Wrap(err, "read history")
	}
	defer f.Close()
	sc := history.NewScanner(f)
	for sc.Scan() {
		e := sc.Event()
		switch {
		case e.Nemesis:
			if name, ok := strings.CutPrefix(e.F, "start-"); ok {
				v.Faults[name]++
			}
			var val struct {
				Error string `json:"error"`
			}
			if json.Unmarshal(e.Value, &val) == nil && val.Error != "" {
				v.FaultErrors = append(v.FaultErrors, fmt.Sprintf("%s at event %d: %s", e.F, e.Index, val.Error))
			}
		case e.Type != history.Invoke:
			v.Ops[e.Type]++
		}
	}
	if err := sc.Err(); err != nil {
		return errors.Wrap(err, "read history")
	}
	if problems := sc.Problems(); len(problems) > 0 {
		return errors.Errorf("history has %d malformed lines, first: line %d: %s", len(problems), problems[0].Line, problems[0].Msg)
	}
	return nil
}

// evidence returns the history lines of the first failed check's first
// offending operations: for duplicates, the first clashing pair.
func evidence(dir string, sc Scenario, res checker.Results) []string {
	for _, name := range checker.Properties {
		r, ok := res.Checks[name]
		if !ok || r.Valid != checker.ValidFalse || len(r.Ops) == 0 || !promised(sc.Promises, name) {
			continue
		}
		ops := r.Ops[:min(len(r.Ops), maxEvidence)]
		if d, ok := r.Details.(checker.UniqueDetails); ok && len(d.ExamplePairsOp) > 0 {
			ops = d.ExamplePairsOp[0][:]
		}
		b, err := os.ReadFile(filepath.Join(dir, "history.jsonl"))
		if err != nil {
			return nil
		}
		// A line's index is its position in the file.
		lines := strings.Split(string(b), "\n")
		var out []string
		for _, i := range ops {
			if i >= 0 && i < int64(len(lines)) {
				out = append(out, lines[i])
			}
		}
		return out
	}
	return nil
}

// judge compares a verdict with what the scenario expects and says how it
// falls short.
// caught reports whether v shows every violation sc expects.
func caught(sc Scenario, v Verdict) bool {
	for _, p := range sc.Expect.Violates {
		if r, ok := v.Results.Checks[p]; !ok || r.Valid != checker.ValidFalse {
			return false
		}
	}
	return true
}

func judge(sc Scenario, v Verdict) []string {
	var out []string
	for _, e := range v.FaultErrors {
		out = append(out, "fault failed: "+e)
	}
	if sc.Expect.LostBuffers {
		if g, ok := v.Results.Checks[checker.GapFree].Details.(checker.GapDetails); !ok || g.BufferedIDs == 0 {
			out = append(out, "expected IDs lost in crashed clients' buffers, found none")
		}
	}
	if len(sc.Expect.Violates) == 0 || (sc.Expect.Rare && !caught(sc, v)) {
		for _, p := range sc.Promises {
			r, ok := v.Results.Checks[p]
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("promised %s was not checked", p))
			case r.Valid != checker.ValidTrue:
				out = append(out, fmt.Sprintf("promised %s %s: %s", p, r.Valid.Word(), r.Reason))
			}
		}
		if v.Ops["ok"] == 0 {
			out = append(out, "no operation succeeded: the run tested nothing")
		}
		return out
	}
	for _, p := range sc.Expect.Violates {
		r, ok := v.Results.Checks[p]
		if !ok || r.Valid != checker.ValidFalse {
			out = append(out, fmt.Sprintf("planted bug not caught: expected a violation of %s, but it %s", p, r.Valid.Word()))
		}
	}
	return out
}
