package checker

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/checker/history"
)

// HistoryFile and ResultsFile are the names of a run directory's history
// and results.
const (
	HistoryFile = "history.jsonl"
	ResultsFile = "results.json"
	RunFile     = "run.json"
)

// CheckDir checks a history file, or the history of a run directory, and
// writes the results next to it: results.json for history.jsonl,
// STEM.results.json for any other STEM.jsonl. When opts.Promises is nil
// and a run.json beside the history lists promises, those are used. A
// non-linearizable sequence also gets porcupine's HTML visualization
// there: linearizable-SEQ.html, or STEM.linearizable-SEQ.html beside a
// bare file. Malformed lines do not stop the check; they are in
// Results.Malformed.
func CheckDir(path string, opts Options) (Results, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Results{}, errors.Wrap(err, "check")
	}
	dir, hist := path, filepath.Join(path, HistoryFile)
	if !fi.IsDir() {
		dir, hist = filepath.Dir(path), path
	}
	if opts.Promises == nil {
		p, err := runPromises(filepath.Join(dir, RunFile))
		if err != nil {
			return Results{}, err
		}
		opts.Promises = p
	}
	if err := opts.Validate(); err != nil {
		return Results{}, err
	}
	events, problems, err := history.ReadFile(hist)
	if err != nil {
		return Results{}, err
	}
	if len(events) == 0 && len(problems) > 0 {
		return Results{}, errors.Errorf("%s: no usable line; first problem: %s", hist, problems[0])
	}
	// A run directory's files have their plain names; a bare file's are
	// named after it, so that histories sharing a folder keep their own.
	prefix := ""
	if base := filepath.Base(hist); base != HistoryFile {
		prefix = strings.TrimSuffix(base, filepath.Ext(base)) + "."
	}
	opts.VisualizeDir, opts.VisualizePrefix = dir, prefix
	res := Check(events, opts)
	res.withMalformed(problems)
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return res, errors.Wrap(err, "encode results")
	}
	if err := os.WriteFile(filepath.Join(dir, prefix+ResultsFile), append(b, '\n'), 0o644); err != nil {
		return res, errors.Wrap(err, "write results")
	}
	return res, nil
}

// runPromises reads the promises of a run.json; nil when there is none.
func runPromises(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, errors.Wrap(err, "read run info")
	}
	var info struct {
		Promises []string `json:"promises"`
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, errors.Wrapf(err, "%s", path)
	}
	return info.Promises, nil
}

// Summary is the verdict for a terminal: one line per check.
func (r Results) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "verdict       %-7s promised %s; %d events, %d sequences\n",
		r.Valid, strings.Join(r.Promises, ","), r.Events, len(r.Names))
	if r.Reason != "" {
		fmt.Fprintf(&b, "%-13s         %s\n", "", r.Reason)
	}
	names := make([]string, 0, len(r.Checks))
	for k := range r.Checks {
		if k != "stats" && k != GapFree {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		c := r.Checks[k]
		note := ""
		if !contains(r.Promises, k) && !(k == "gaps" && contains(r.Promises, GapFree)) {
			note = " (not promised)"
		}
		fmt.Fprintf(&b, "%-13s %-7s %s%s\n", k, c.Valid, c.Reason, note)
		if len(c.Ops) > 0 {
			ops := c.Ops
			more := ""
			if len(ops) > 10 {
				ops, more = ops[:10], fmt.Sprintf(" and %d more", len(c.Ops)-10)
			}
			fmt.Fprintf(&b, "%-13s         see events %v%s\n", "", ops, more)
		}
		if k == Linearizable {
			for _, v := range r.Visualizations {
				fmt.Fprintf(&b, "%-13s         porcupine: %s\n", "", v)
			}
		}
	}
	fmt.Fprintf(&b, "%-13s         %s\n", "stats", r.Checks["stats"].Reason)
	for i, p := range r.Malformed {
		if i == 5 {
			fmt.Fprintf(&b, "malformed             ... %d more\n", len(r.Malformed)-5)
			break
		}
		fmt.Fprintf(&b, "malformed             %s\n", p)
	}
	return b.String()
}
