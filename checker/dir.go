package checker

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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

// CheckDir checks a history file, or the history of a run directory. It
// writes nothing there: checking again never changes a recording.
// When opts.Promises is nil and a run.json beside the history lists
// promises, those are used. opts.VisualizeDir, when set, receives
// porcupine's HTML view of each non-linearizable sequence, as for Check.
// Malformed lines do not stop the check; they are in Results.Malformed.
func CheckDir(path string, opts Options) (Results, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Results{}, err // the os error names the path already
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
	res := Check(events, opts)
	res.withMalformed(problems)
	return res, nil
}

// WriteResults writes res as JSON to path, a new file: it refuses a path
// that exists, so that results never replace the ones a run recorded.
func WriteResults(path string, res Results) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return errors.Wrap(err, "encode results")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return errors.Wrap(err, "write results")
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return errors.Wrapf(err, "write %s", path)
	}
	return errors.Wrapf(f.Close(), "write %s", path)
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

// Summary is the verdict for a terminal: one line per check, each with
// its word (held, violated, not promised, n/a or unknown).
func (r Results) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-13s %-13s promised %s; %d events, %d sequences\n",
		"verdict", r.Valid.Word(), strings.Join(r.Promises, ","), r.Events, len(r.Names))
	if r.Reason != "" {
		fmt.Fprintf(&b, "%-27s %s\n", "", r.Reason)
	}
	for _, k := range Properties {
		c, ok := r.Checks[k]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "%-13s %-13s %s\n", k, r.Word(k), c.Reason)
		if len(c.Ops) > 0 {
			ops := c.Ops
			more := ""
			if len(ops) > 10 {
				ops, more = ops[:10], fmt.Sprintf(" and %d more", len(c.Ops)-10)
			}
			fmt.Fprintf(&b, "%-27s see events %v%s\n", "", ops, more)
		}
		if k == Linearizable {
			for _, v := range r.Visualizations {
				fmt.Fprintf(&b, "%-27s porcupine: %s\n", "", v)
			}
		}
	}
	fmt.Fprintf(&b, "%-27s %s\n", StatsCheck, r.Checks[StatsCheck].Reason)
	for i, p := range r.Malformed {
		if i == 5 {
			fmt.Fprintf(&b, "%-27s ... %d more\n", "malformed", len(r.Malformed)-5)
			break
		}
		fmt.Fprintf(&b, "%-27s %s\n", "malformed", p)
	}
	return b.String()
}
