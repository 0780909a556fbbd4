package checker

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pkg/errors"
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
// promises, those are used; a run.json that says "sparse": true sets
// opts.Sparse, and one that records the run's live bound
// ("live_within_ns") sets opts.LiveWithin when it is unset. The history streams through the checks (CheckReader). opts.VisualizeDir, when set, receives
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
	info, err := readRunInfo(filepath.Join(dir, RunFile))
	if err != nil {
		return Results{}, err
	}
	if opts.Promises == nil {
		opts.Promises = info.Promises
	}
	opts.Sparse = opts.Sparse || info.Sparse
	if opts.LiveWithin == 0 && info.LiveWithin > 0 {
		opts.LiveWithin = info.LiveWithin
	}
	if err := opts.Validate(); err != nil {
		return Results{}, err
	}
	f, err := os.Open(hist)
	if err != nil {
		return Results{}, errors.Wrap(err, "open history")
	}
	defer f.Close()
	// The history streams through the checks: only its operations, in
	// compact form, are held.
	res, err := CheckReader(f, opts)
	if err != nil {
		return Results{}, errors.Wrapf(err, "%s", hist)
	}
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

// runInfo is what the checks read of a run.json.
type runInfo struct {
	Promises []string `json:"promises"`
	// Sparse: the system's IDs are sparse by design (Options.Sparse).
	Sparse bool `json:"sparse"`
	// LiveWithin is the live bound the run was judged with.
	LiveWithin time.Duration `json:"live_within_ns"`
}

// readRunInfo reads a run.json; the zero runInfo when there is none.
func readRunInfo(path string) (runInfo, error) {
	var info runInfo
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return info, nil
	}
	if err != nil {
		return info, errors.Wrap(err, "read run info")
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, errors.Wrapf(err, "%s", path)
	}
	return info, nil
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
