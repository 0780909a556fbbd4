package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
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

// op is one client operation, its invoke and its completion, as the
// report keeps it: a 1-hour run has hundreds of thousands, so it holds no
// event, no value and no string. The timeline and the evidence read the
// few lines they quote again (run.lines).
type op struct {
	proc           int
	inv, end       int   // positions in the history; end -1 when it never completed
	invIdx, endIdx int64 // their indexes; endIdx -1 when it never completed
	invT, endT     int64 // their times, ns
	f, typ         code  // typ is "" when it never completed
}

// code is a string the operations repeat, their function or their
// outcome, interned in names.
type code uint8

// names interns the functions and outcomes of the operations: the
// history's rules allow two of one and four of the other.
type names struct {
	list  []string
	codes map[string]code
	full  bool // more strings than a code can name: the report gives up
}

func newNames() names {
	return names{list: []string{""}, codes: map[string]code{"": 0}}
}

// code interns s.
func (n *names) code(s string) code {
	if c, ok := n.codes[s]; ok {
		return c
	}
	if len(n.list) > math.MaxUint8 {
		n.full = true
		return 0
	}
	c := code(len(n.list))
	n.list = append(n.list, s)
	n.codes[s] = c
	return c
}

// str is the string of c.
func (n *names) str(c code) string { return n.list[c] }

// ref is the index a check names an operation by: its completion's, else
// its invoke's.
func (o op) ref() int64 {
	if o.end >= 0 {
		return o.endIdx
	}
	return o.invIdx
}

// fault is a nemesis event and its position in the history. A run has a
// few thousand at most, so they are kept whole.
type fault struct {
	history.Event
	pos int
}

// window is one fault, from its start event to its stop.
type window struct {
	name       string   // as recorded: "partition-isolate+crash-one"
	kinds      []string // the faults it composes
	start, end int64    // ns; end is the run's end when it never stopped
	startIdx   int64
	stopIdx    int64 // -1 when it never stopped
	startAt    int   // positions of the start and the stop in the history
	stopAt     int   // -1 when it never stopped
	err        string
}

// run is everything a report is drawn from.
type run struct {
	dir       string
	hist      string // the history's path
	info      runInfo
	hasInfo   bool
	status    string   // PASS, FAIL or INTERRUPTED, from summary.txt; "" without one
	verdict   string   // the verdict line of summary.txt
	events    int      // usable events in the history
	notes     []string // what the reader should know about the input
	res       results
	rechecked bool // no results.json: the report checked the history itself
	names     names
	ops       []op
	faults    []fault
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
	r := &run{dir: dir, hist: filepath.Join(dir, checker.HistoryFile), names: newNames()}
	if b, err := os.ReadFile(filepath.Join(dir, checker.RunFile)); err == nil {
		if err := json.Unmarshal(b, &r.info); err != nil {
			return nil, errors.Wrapf(err, "%s", filepath.Join(dir, checker.RunFile))
		}
		r.hasInfo = true
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, errors.Wrap(err, "read run info")
	}
	problems, err := r.scan()
	if err != nil {
		return nil, err
	}
	for _, p := range problems {
		if !strings.HasPrefix(p.Msg, history.Truncated) {
			return nil, errors.Errorf("%s: %d malformed lines, first: %s", r.hist, len(problems), problems[0])
		}
		r.notes = append(r.notes, fmt.Sprintf("The last line of the history was cut short and is left out (%s).", p))
	}
	if r.events == 0 {
		return nil, errors.Errorf("%s: no events: nothing to report", r.hist)
	}
	if r.names.full {
		return nil, errors.Errorf("%s: more than %d kinds of operation and outcome", r.hist, math.MaxUint8)
	}
	if err := r.loadResults(); err != nil {
		return nil, err
	}
	r.readSummary()
	if t := int64(r.info.SimTime); t > r.end {
		r.end = t
	}
	r.faultWindows()
	r.findViews()
	return r, nil
}

// scan reads the history once, as it streams past, keeping each client
// operation in compact form and the nemesis's events whole. An invoke is
// paired with its process's next completion, as the history format
// promises (one operation in flight per process). It returns the lines
// the history's rules skipped.
func (r *run) scan() ([]history.LineError, error) {
	f, err := os.Open(r.hist)
	if err != nil {
		return nil, errors.Wrap(err, "open history")
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil {
		// Make room for the operations up front: growing into hundreds
		// of thousands would copy them several times over.
		r.ops = make([]op, 0, min(fi.Size()/bytesPerOp+16, 1<<21))
	}
	inflight := map[int]int{} // process -> op
	sc := history.NewScanner(f)
	pos := 0
	for ; sc.Scan(); pos++ {
		e := sc.Event()
		r.end = e.Time
		if e.Nemesis {
			e.Value = bytes.Clone(e.Value) // the Scanner's, until the next Scan
			r.faults = append(r.faults, fault{e, pos})
			continue
		}
		if e.Type == history.Invoke {
			inflight[e.Process] = len(r.ops)
			r.ops = append(r.ops, op{proc: e.Process, f: r.names.code(e.F), inv: pos, invIdx: e.Index, invT: e.Time, end: -1, endIdx: -1})
			continue
		}
		k, ok := inflight[e.Process]
		if !ok {
			continue
		}
		delete(inflight, e.Process)
		o := &r.ops[k]
		o.end, o.endIdx, o.endT, o.typ = pos, e.Index, e.Time, r.names.code(e.Type)
	}
	if err := sc.Err(); err != nil {
		return nil, errors.Wrapf(err, "%s", r.hist)
	}
	r.events = pos
	return sc.Problems(), nil
}

// bytesPerOp is about the length of an invoke and its completion as a
// Recorder writes them, a little under: a history's size over it is about
// its number of operations, or a little more.
const bytesPerOp = 240

// lines reads the history again for the events of the indexes idx, which
// the report quotes or draws in full, and stops once it has them all. An
// index the history does not have is left out.
func (r *run) lines(idx []int64) (map[int64]history.Event, error) {
	out := map[int64]history.Event{}
	if len(idx) == 0 {
		return out, nil
	}
	want := map[int64]bool{}
	last := idx[0]
	for _, i := range idx {
		want[i] = true
		last = max(last, i)
	}
	f, err := os.Open(r.hist)
	if err != nil {
		return nil, errors.Wrap(err, "open history")
	}
	defer f.Close()
	sc := history.NewScanner(f)
	for len(out) < len(want) && sc.Scan() {
		e := sc.Event()
		if e.Index > last {
			break
		}
		if want[e.Index] {
			e.Value = bytes.Clone(e.Value)
			out[e.Index] = e
		}
	}
	return out, errors.Wrapf(sc.Err(), "%s", r.hist)
}

// loadResults reads results.json, or, when there is none (a history from
// elsewhere), checks the history.
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
		res, err := r.check(opts)
		if err != nil {
			return err
		}
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

// check checks the history as seqlab check does, streaming it through
// the checks a second time: the report holds no events to hand them.
func (r *run) check(opts checker.Options) (checker.Results, error) {
	f, err := os.Open(r.hist)
	if err != nil {
		return checker.Results{}, errors.Wrap(err, "open history")
	}
	defer f.Close()
	res, err := checker.CheckReader(f, opts)
	return res, errors.Wrapf(err, "%s", r.hist)
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

// faultWindows turns the nemesis's events into windows: a start-F and
// the next stop-F make one, F, and a start that never stops lasts to the
// end of the run. A composed fault a+b is a window of both kinds.
func (r *run) faultWindows() {
	open := map[string]int{} // name -> its window
	seen := map[string]bool{}
	for _, e := range r.faults {
		if name, ok := strings.CutPrefix(e.F, "start-"); ok {
			w := window{name: name, kinds: strings.Split(name, "+"), start: e.Time, end: r.end, startIdx: e.Index, stopIdx: -1, startAt: e.pos, stopAt: -1, err: faultError(e.Event)}
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
				w := &r.windows[k]
				w.end, w.stopIdx, w.stopAt = e.Time, e.Index, e.pos
				if msg := faultError(e.Event); msg != "" && w.err == "" {
					w.err = msg
				}
				continue
			}
		}
		r.points = append(r.points, e.Event)
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
		if r.names.str(o.typ) == history.Ok {
			oks[r.names.str(o.f)]++
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

// violating maps the indexes of the operations that break a promise (or
// that a planted bug was expected to break) to the names of those checks.
// A false check that was not promised, gap-free as a rule, breaks
// nothing.
func (r *run) violating() map[int64][]string {
	out := map[int64][]string{}
	for _, name := range checker.Properties {
		c, ok := r.res.Checks[name]
		if w := r.word(name); !ok || (w != checker.Violated && w != checker.Caught) {
			continue
		}
		for _, idx := range c.Ops {
			out[idx] = append(out[idx], name)
		}
	}
	return out
}

// evidenceOf are the indexes of a false check's first offending
// operations (for duplicates, the first clashing pair), whose lines the
// block quotes.
func (r *run) evidenceOf(check string) []int64 {
	c := r.res.Checks[check]
	if c.Valid != checker.ValidFalse || len(c.Ops) == 0 {
		return nil
	}
	if len(c.ExamplePairs) > 0 {
		return c.ExamplePairs[0][:]
	}
	return c.Ops[:min(len(c.Ops), maxEvidence)]
}

// evidence are the history lines of evidenceOf(check), from lines, which
// holds those the history has.
func (r *run) evidence(check string, lines map[int64]history.Event) []string {
	var out []string
	for _, i := range r.evidenceOf(check) {
		e, ok := lines[i]
		if !ok {
			continue
		}
		b, err := e.MarshalJSON()
		if err != nil {
			continue
		}
		out = append(out, string(b))
	}
	return out
}

// maxEvidence caps the evidence lines of a check, as the block does.
const maxEvidence = 6
