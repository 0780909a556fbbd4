package scenarios

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/checker/history"
)

// Verdict is the checker's word on a run, condensed for the block.
type Verdict struct {
	Valid   checker.Valid
	Checks  map[string]string // check name -> "valid: reason"
	Ops     map[string]int    // client completions by type
	Results checker.Results
}

// CheckTimeout bounds the checks of one run; past it they say unknown.
var CheckTimeout = time.Minute

func checkRun(dir string, sc Scenario) (Verdict, error) {
	events, problems, err := history.ReadFile(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		return Verdict{}, errors.Wrap(err, "read history")
	}
	if len(problems) > 0 {
		return Verdict{}, errors.Errorf("history has %d malformed lines, first: line %d: %s", len(problems), problems[0].Line, problems[0].Msg)
	}
	res, err := checker.CheckDir(dir, checker.Options{Promises: sc.Promises, Timeout: CheckTimeout})
	if err != nil {
		return Verdict{}, errors.Wrap(err, "check history")
	}
	v := Verdict{Valid: res.Valid, Checks: map[string]string{}, Ops: map[string]int{}, Results: res}
	for name, r := range res.Checks {
		v.Checks[name] = fmt.Sprintf("%-7s %s", r.Valid, r.Reason)
	}
	for _, e := range events {
		if !e.Nemesis && e.Type != "invoke" {
			v.Ops[e.Type]++
		}
	}
	return v, nil
}

// judge compares a verdict with what the scenario expects and says how it
// falls short.
func judge(sc Scenario, v Verdict) []string {
	var out []string
	if len(sc.Expect.Violates) == 0 {
		for _, p := range sc.Promises {
			r, ok := v.Results.Checks[p]
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("promised %s was not checked", p))
			case r.Valid != checker.Valid("true"):
				out = append(out, fmt.Sprintf("promised %s is %s: %s", p, r.Valid, r.Reason))
			}
		}
		if v.Ops["ok"] == 0 {
			out = append(out, "no operation succeeded: the run tested nothing")
		}
		return out
	}
	for _, p := range sc.Expect.Violates {
		r, ok := v.Results.Checks[p]
		if !ok || r.Valid != checker.Valid("false") {
			out = append(out, fmt.Sprintf("planted bug not caught: expected %s to be violated, got %s", p, r.Valid))
		}
	}
	return out
}
