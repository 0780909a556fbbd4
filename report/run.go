package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/checker/history"
)

// runInfo is the part of run.json a report shows. The report reads the
// file itself rather than through package scenarios, which writes
// reports and so cannot be imported from here.
type runInfo struct {
	Scenario    string        `json:"scenario"`
	Mode        string        `json:"mode"`
	Seed        int64         `json:"seed"`
	TimeLimit   time.Duration `json:"time_limit_ns"`
	Concurrency int           `json:"concurrency"`
	Promises    []string      `json:"promises"`
	Expect      []string      `json:"expect_violations"`
	Faults      []string      `json:"faults"`
	Started     time.Time     `json:"started"`
	SimTime     time.Duration `json:"sim_time_ns"`
	WallTime    time.Duration `json:"wall_time_ns"`
	Replay      string        `json:"replay"`
	Hash        string        `json:"hash"`
	Note        string        `json:"note"`
	Build       struct {
		Commit string `json:"commit"`
		Dirty  bool   `json:"dirty"`
		Go     string `json:"go"`
	} `json:"build"`
	Interrupted bool `json:"interrupted"`
}

// checkResult is one check of results.json: the fields every check has,
// and the few details the report draws (they are flattened beside them).
type checkResult struct {
	Valid  checker.Valid `json:"valid"`
	Reason string        `json:"reason"`
	Ops    []int64       `json:"ops"`
	// unique
	ExamplePairs [][2]int64 `json:"example_pairs"`
	// gap-free
	HighestID uint64 `json:"highest_id"`
	// live
	Judged int `json:"judged"`
	// linearizable
	VisualizationOf string `json:"visualization_of"`
	// stats
	Windows []checker.Window           `json:"windows"`
	Latency map[string]checker.Latency `json:"latency"`
}

// results is results.json, as far as the report reads it.
type results struct {
	Valid          checker.Valid          `json:"valid"`
	Reason         string                 `json:"reason"`
	Promises       []string               `json:"promises"`
	Checks         map[string]checkResult `json:"checks"`
	Visualizations []string               `json:"visualizations"`
	Malformed      []history.LineError    `json:"malformed"`
}

// op is one client operation: its invoke and its completion.
type op struct {
	proc     int
	f        string
	inv, end int // positions in the history; end -1 when it never completed
	typ      string
}

// window is one fault, from its start event to its stop.
type window struct {
	name       string   // as recorded: "partition-isolate+crash-one"
	kinds      []string // the faults it composes
	start, end int64    // ns; end is the run's end when it never stopped
	startIdx   int64
	stopIdx    int64 // -1 when it never stopped
	err        string
}

// run is everything a report is drawn from.
type run struct {
	dir       string
	info      runInfo
	hasInfo   bool
	status    string // PASS, FAIL or INTERRUPTED, from summary.txt; "" without one
	verdict   string // the verdict line of summary.txt
	events    []history.Event
	byIndex   map[int64]int // event index -> position
	notes     []string      // what the reader should know about the input
	res       results
	rechecked bool // no results.json: the report checked the history itself
	ops       []op
	opAt      map[int]int // completion (or lone invoke) position -> op
	windows   []window
	points    []history.Event // nemesis events that are neither start nor stop
	kinds     []string        // fault kinds, in order of first start
	end       int64           // ns: the end of the run
	views     []string        // porcupine views present in the directory
}

// load reads a run directory. It writes nothing.
func load(dir string) (*run, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err // names the path
	}
	if !fi.IsDir() {
		return nil, errors.Errorf("%s is not a directory: a report is made from a run directory, one that holds %s", dir, checker.HistoryFile)
	}
	r := &run{dir: dir}
	if b, err := os.ReadFile(filepath.Join(dir, checker.RunFile)); err == nil {
		if err := json.Unmarshal(b, &r.info); err != nil {
			return nil, errors.Wrapf(err, "%s", filepath.Join(dir, checker.RunFile))
		}
		r.hasInfo = true
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, errors.Wrap(err, "read run info")
	}
	hist := filepath.Join(dir, checker.HistoryFile)
	events, problems, err := history.ReadFile(hist)
	if err != nil {
		return nil, err
	}
	for _, p := range problems {
		if !strings.HasPrefix(p.Msg, history.Truncated) {
			return nil, errors.Errorf("%s: %d malformed lines, first: %s", hist, len(problems), problems[0])
		}
		r.notes = append(r.notes, fmt.Sprintf("The last line of the history was cut short and is left out (%s).", p))
	}
	if len(events) == 0 {
		return nil, errors.Errorf("%s: no events: nothing to report", hist)
	}
	r.events = events
	r.byIndex = make(map[int64]int, len(events))
	for pos, e := range events {
		r.byIndex[e.Index] = pos
	}
	if err := r.loadResults(); err != nil {
		return nil, err
	}
	r.readSummary()
	r.pair()
	r.faultWindows()
	r.findViews()
	return r, nil
}

// loadResults reads results.json, or, when there is none (a history from
// elsewhere), checks the history in memory.
func (r *run) loadResults() error {
	path := filepath.Join(r.dir, checker.ResultsFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		promises := r.info.Promises
		if len(promises) == 0 {
			promises = nil
		}
		opts := checker.Options{Promises: promises}
		if err := opts.Validate(); err != nil {
			return errors.Wrapf(err, "%s", filepath.Join(r.dir, checker.RunFile))
		}
		res := checker.Check(r.events, opts)
		if b, err = json.Marshal(res); err != nil {
			return errors.Wrap(err, "encode results")
		}
		r.rechecked = true
	} else if err != nil {
		return errors.Wrap(err, "read results")
	}
	if err := json.Unmarshal(b, &r.res); err != nil {
		return errors.Wrapf(err, "%s", path)
	}
	if r.res.Checks == nil {
		return errors.Errorf("%s: no checks", path)
	}
	return nil
}

// readSummary takes the status and the verdict line from summary.txt,
// the block the run printed, when there is one: they say whether the
// run met its scenario's expected verdict, which the history alone
// cannot.
func (r *run) readSummary() {
	b, err := os.ReadFile(filepath.Join(r.dir, "summary.txt"))
	if err != nil {
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "=== "); ok && r.status == "" {
			r.status, _, _ = strings.Cut(rest, " ")
		}
		if rest, ok := strings.CutPrefix(line, "verdict "); ok && r.verdict == "" {
			r.verdict = strings.TrimSpace(rest)
		}
	}
}

// pair matches each invoke with its process's next completion, as the
// history format promises (one operation in flight per process).
func (r *run) pair() {
	inflight := map[int]int{} // process -> op
	r.opAt = map[int]int{}
	for pos, e := range r.events {
		if e.Nemesis {
			continue
		}
		if e.Type == history.Invoke {
			inflight[e.Process] = len(r.ops)
			r.ops = append(r.ops, op{proc: e.Process, f: e.F, inv: pos, end: -1})
			continue
		}
		k, ok := inflight[e.Process]
		if !ok {
			continue
		}
		delete(inflight, e.Process)
		r.ops[k].end, r.ops[k].typ = pos, e.Type
	}
	for k, o := range r.ops {
		at := o.end
		if at < 0 {
			at = o.inv
		}
		r.opAt[at] = k
	}
	r.end = r.events[len(r.events)-1].Time
	if t := int64(r.info.SimTime); t > r.end {
		r.end = t
	}
}

// faultWindows turns the nemesis's events into windows: a start-F and
// the next stop-F make one, F, and a start that never stops lasts to the
// end of the run. A composed fault a+b is a window of both kinds.
func (r *run) faultWindows() {
	open := map[string]int{} // name -> its window
	seen := map[string]bool{}
	for _, e := range r.events {
		if !e.Nemesis {
			continue
		}
		if name, ok := strings.CutPrefix(e.F, "start-"); ok {
			w := window{name: name, kinds: strings.Split(name, "+"), start: e.Time, end: r.end, startIdx: e.Index, stopIdx: -1, err: faultError(e)}
			for _, k := range w.kinds {
				if !seen[k] {
					seen[k] = true
					r.kinds = append(r.kinds, k)
				}
			}
			open[name] = len(r.windows)
			r.windows = append(r.windows, w)
			continue
		}
		if name, ok := strings.CutPrefix(e.F, "stop-"); ok {
			if k, ok := open[name]; ok {
				delete(open, name)
				r.windows[k].end, r.windows[k].stopIdx = e.Time, e.Index
				if msg := faultError(e); msg != "" && r.windows[k].err == "" {
					r.windows[k].err = msg
				}
				continue
			}
		}
		r.points = append(r.points, e)
	}
}

// faultError is the error a fault event records, if any.
func faultError(e history.Event) string {
	var v struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(e.Value, &v) == nil {
		return v.Error
	}
	return ""
}

// findViews lists porcupine's views that the results name and that are in
// the directory. results.json names them by the path the run wrote them
// to, relative to where it ran, so only the base name is looked for here.
func (r *run) findViews() {
	for _, v := range r.res.Visualizations {
		name := filepath.Base(filepath.FromSlash(v))
		if fi, err := os.Stat(filepath.Join(r.dir, name)); err == nil && fi.Mode().IsRegular() && !slices.Contains(r.views, name) {
			r.views = append(r.views, name)
		}
	}
	sort.Strings(r.views)
}

// word is a check's word, as the run's block gives it: caught for a
// planted bug's expected violation, n/a when the history has nothing the
// check reads, not promised, else held, violated or unknown.
func (r *run) word(check string) checker.Word {
	c := r.res.Checks[check]
	switch {
	case slices.Contains(r.info.Expect, check) && c.Valid == checker.ValidFalse:
		return checker.Caught
	case r.vacuous(check):
		return checker.NA
	case !slices.Contains(r.res.Promises, check):
		return checker.NotPromised
	}
	return c.Valid.Word()
}

// vacuous is checker.Results.Vacuous on what results.json keeps.
func (r *run) vacuous(check string) bool {
	oks := map[string]int{}
	for _, o := range r.ops {
		if o.typ == history.Ok {
			oks[o.f]++
		}
	}
	switch check {
	case checker.Unique:
		return oks[history.NextRange]+oks[history.NextID] == 0
	case checker.Linearizable:
		return oks[history.NextRange] == 0
	case checker.Monotonic:
		return oks[history.NextID] == 0
	case checker.GapFree:
		return r.res.Checks[checker.GapFree].HighestID == 0
	case checker.Live:
		return r.res.Checks[checker.Live].Judged == 0
	case checker.NodeOrder:
		return r.res.Checks[checker.NodeOrder].Judged == 0
	}
	return false
}

// violating maps the positions of the operations that break a promise
// (or that a planted bug was expected to break) to the names of those
// checks. A false check that was not promised, gap-free as a rule,
// breaks nothing.
func (r *run) violating() map[int][]string {
	out := map[int][]string{}
	for _, name := range checker.Properties {
		c, ok := r.res.Checks[name]
		if w := r.word(name); !ok || (w != checker.Violated && w != checker.Caught) {
			continue
		}
		for _, idx := range c.Ops {
			if pos, ok := r.byIndex[idx]; ok {
				out[pos] = append(out[pos], name)
			}
		}
	}
	return out
}

// evidence are the history lines of a false check's first offending
// operations (for duplicates, the first clashing pair), as the block
// quotes them.
func (r *run) evidence(check string) []string {
	c := r.res.Checks[check]
	if c.Valid != checker.ValidFalse || len(c.Ops) == 0 {
		return nil
	}
	idx := c.Ops[:min(len(c.Ops), maxEvidence)]
	if len(c.ExamplePairs) > 0 {
		idx = c.ExamplePairs[0][:]
	}
	var out []string
	for _, i := range idx {
		pos, ok := r.byIndex[i]
		if !ok {
			continue
		}
		b, err := r.events[pos].MarshalJSON()
		if err != nil {
			continue
		}
		out = append(out, string(b))
	}
	return out
}

// maxEvidence caps the evidence lines of a check, as the block does.
const maxEvidence = 6
