package checker

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/checker/history"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden is what a golden file pins down of a check: verdicts, offending
// operations, gap figures and malformed lines.
type golden struct {
	Valid     Valid                     `json:"valid"`
	Reason    string                    `json:"reason,omitempty"`
	Checks    map[string]goldenCheck    `json:"checks"`
	Gaps      GapDetails                `json:"gaps"`
	Malformed []history.LineError       `json:"malformed,omitempty"`
	Ops       map[string]map[string]int `json:"ops"`
}

type goldenCheck struct {
	Valid  Valid   `json:"valid"`
	Reason string  `json:"reason"`
	Ops    []int64 `json:"ops,omitempty"`
}

// TestGolden checks every history in testdata against its golden result,
// through CheckDir as seqlab check does.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.jsonl")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".jsonl")
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			hist := filepath.Join(dir, HistoryFile)
			require.NoError(t, os.WriteFile(hist, b, 0o644))
			res, err := CheckDir(dir, Options{})
			require.NoError(t, err)
			got := golden{Valid: res.Valid, Reason: res.Reason, Checks: map[string]goldenCheck{}, Malformed: res.Malformed, Ops: res.Stats.Ops}
			for k, c := range res.Checks {
				if k == "stats" {
					continue
				}
				got.Checks[k] = goldenCheck{c.Valid, c.Reason, c.Ops}
			}
			got.Gaps, _ = res.Checks[GapFree].Details.(GapDetails)
			assert.Equal(t, []string{HistoryFile}, dirNames(t, dir), "checking writes nothing")
			// results.json is written and reads back.
			out := filepath.Join(t.TempDir(), ResultsFile)
			require.NoError(t, WriteResults(out, res))
			assert.ErrorContains(t, WriteResults(out, res), "exists", "results never overwrite")
			rb, err := os.ReadFile(out)
			require.NoError(t, err)
			var back struct {
				Valid  Valid                      `json:"valid"`
				Checks map[string]json.RawMessage `json:"checks"`
			}
			require.NoError(t, json.Unmarshal(rb, &back))
			assert.Equal(t, res.Valid, back.Valid)
			for _, k := range append(Properties, StatsCheck) {
				assert.Contains(t, back.Checks, k)
			}

			gb, err := json.MarshalIndent(got, "", "  ")
			require.NoError(t, err)
			gpath := filepath.Join("testdata", name+".golden.json")
			if *update {
				require.NoError(t, os.WriteFile(gpath, append(gb, '\n'), 0o644))
				return
			}
			want, err := os.ReadFile(gpath)
			require.NoError(t, err, "run go test ./checker -update to create it")
			assert.JSONEq(t, string(want), string(gb))
		})
	}
}

// TestGoldenVerdicts states, independently of the golden files, what each
// history must be found to be.
func TestGoldenVerdicts(t *testing.T) {
	cases := map[string]map[string]Valid{
		"valid":                {"": ValidTrue, "unique": ValidTrue, "linearizable": ValidTrue, "monotonic": ValidTrue, GapFree: ValidTrue},
		"overlap":              {"": ValidFalse, "unique": ValidFalse, "linearizable": ValidFalse},
		"realtime":             {"": ValidFalse, "unique": ValidTrue, "linearizable": ValidFalse},
		"concurrent-reordered": {"": ValidTrue, "linearizable": ValidTrue},
		"nonmonotonic":         {"": ValidFalse, "unique": ValidTrue, "monotonic": ValidFalse},
		"gaps-explained":       {"": ValidTrue, GapFree: ValidTrue},
		"gaps-unexplained":     {"": ValidTrue, GapFree: ValidFalse},
		"malformed":            {"": ValidUnknown, "unique": ValidTrue},
		// ID 3 went to process 3 by next-id and to process 0 in [1,6).
		"id-in-range": {"": ValidFalse, "unique": ValidFalse, "linearizable": ValidTrue, "monotonic": ValidTrue},
		// IDs 1-2: the info was invoked after [5,7) completed, so it
		// allocated above 7, even though the lowest range above the gap,
		// [3,5), completed after it.
		"gaps-late-info": {"": ValidTrue, "linearizable": ValidTrue, GapFree: ValidFalse},
		"truncated":      {"": ValidTrue},
		// Nothing to check is not valid.
		"empty":        {"": ValidUnknown},
		"nemesis-only": {"": ValidUnknown},
		// Two nodes whose clocks disagree: no global order, but each
		// node's own holds.
		"node-order-ok": {"": ValidFalse, "unique": ValidTrue, "linearizable": ValidFalse, NodeOrder: ValidTrue},
		// n1's clock steps back: it hands out IDs below its earlier ones.
		"node-order-bad": {"": ValidFalse, "unique": ValidTrue, NodeOrder: ValidFalse},
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			events, problems, err := history.ReadFile(filepath.Join("testdata", name+".jsonl"))
			require.NoError(t, err)
			res := Check(events, Options{})
			res.withMalformed(problems)
			for check, v := range want {
				if check == "" {
					assert.Equal(t, v, res.Valid, "verdict")
					continue
				}
				assert.Equal(t, v, res.Checks[check].Valid, check+": "+res.Checks[check].Reason)
			}
		})
	}
}

func TestGapFigures(t *testing.T) {
	events, _, err := history.ReadFile("testdata/gaps-explained.jsonl")
	require.NoError(t, err)
	res := Check(events, Options{Promises: []string{GapFree}})
	g := res.Checks[GapFree].Details.(GapDetails)
	// IDs 1-5: an info of size 5 may have taken them; 11-16: fetched into
	// a buffer and never handed out.
	assert.Equal(t, GapDetails{HighestID: 19, GapCount: 2, LostIDs: 11, ExplainedIDs: 11, BufferedIDs: 6, MaybeAllocatedIDs: 5,
		Gaps: []Gap{{From: 1, To: 6, By: []int64{1}}, {From: 11, To: 17}}}, g)
	assert.Equal(t, ValidTrue, res.Valid)

	events, _, err = history.ReadFile("testdata/gaps-unexplained.jsonl")
	require.NoError(t, err)
	res = Check(events, Options{Promises: []string{GapFree}})
	g = res.Checks[GapFree].Details.(GapDetails)
	// 4-9 is six IDs no info op can cover (the info came later); 12-13 is
	// covered by the info of size 2 invoked before [14,16) completed.
	assert.Equal(t, uint64(6), g.UnexplainedIDs)
	assert.Equal(t, uint64(2), g.MaybeAllocatedIDs)
	assert.Equal(t, ValidFalse, res.Valid, "gap-free is promised")
	assert.Equal(t, []int64{3}, res.Checks[GapFree].Ops)
}

// linearizableBoth runs both checkers on a one-sequence history.
func linearizableBoth(t *testing.T, events []history.Event) (Valid, string) {
	seqs, _ := collect(events)
	require.Len(t, seqs, 1)
	for _, s := range seqs {
		v, _, _, _ := directLinearizable(s)
		p, _ := porcupineCheck(okRanges(s), 30*time.Second, "", nil)
		return v, p
	}
	return "", ""
}

// reread writes events out and reads them back, as a file would be.
func reread(t *testing.T, events []history.Event) []history.Event {
	var buf bytes.Buffer
	require.NoError(t, history.Write(&buf, events))
	out, problems, err := history.Read(&buf)
	require.NoError(t, err)
	require.Empty(t, problems)
	return out
}

// setRange rewrites the value of an op's invoke and completion.
func setRange(events []history.Event, inv, end int, v history.RangeValue) {
	b, _ := json.Marshal(v)
	events[end] = withValue(events[end], b)
	v.From, v.To = 0, 0
	b, _ = json.Marshal(v)
	events[inv] = withValue(events[inv], b)
}

// withValue is e with another value. It is a new Event, not a changed
// one: Read keeps each event's decoded value, which must not outlive the
// JSON it came from.
func withValue(e history.Event, v json.RawMessage) history.Event {
	return history.Event{Index: e.Index, Time: e.Time, Process: e.Process, Nemesis: e.Nemesis,
		Type: e.Type, F: e.F, Value: v, Node: e.Node, Error: e.Error, Extra: e.Extra}
}

// TestDirectAgreesWithPorcupine: random valid histories pass both
// checkers; mutations that overlap two ranges or put two in the wrong
// real-time order fail both.
func TestDirectAgreesWithPorcupine(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		events := genHistory(seed, 6, 300, []string{"s"})
		d, p := linearizableBoth(t, events)
		require.Equal(t, ValidTrue, d, "seed %d", seed)
		require.Equal(t, "Ok", p, "seed %d", seed)

		seqs, _ := collect(events)
		var oks []*op
		for _, o := range seqs["s"].ranges {
			if o.ok() {
				oks = append(oks, o)
			}
		}
		sort.Slice(oks, func(i, j int) bool { return oks[i].end < oks[j].end })
		require.Greater(t, len(oks), 10)

		// Overlap: make a late op return an early op's start.
		a, b := oks[2], oks[len(oks)-1]
		m := append([]history.Event(nil), events...)
		setRange(m, b.inv, b.end, history.RangeValue{Name: "s", N: b.n, From: a.from, To: a.from + b.n})
		d, p = linearizableBoth(t, reread(t, m))
		assert.Equal(t, ValidFalse, d, "overlap, seed %d", seed)
		assert.Equal(t, "Illegal", p, "overlap, seed %d", seed)

		// Real time: swap the results of an op and one invoked after it
		// completed. The ranges stay disjoint.
		var later *op
		for _, o := range oks {
			if o.inv > a.end && !o.buffer {
				later = o
				break
			}
		}
		require.NotNil(t, later)
		m = append([]history.Event(nil), events...)
		setRange(m, a.inv, a.end, history.RangeValue{Name: "s", N: later.n, From: later.from, To: later.to})
		setRange(m, later.inv, later.end, history.RangeValue{Name: "s", N: a.n, From: a.from, To: a.to})
		d, p = linearizableBoth(t, reread(t, m))
		assert.Equal(t, ValidFalse, d, "swap, seed %d", seed)
		assert.Equal(t, "Illegal", p, "swap, seed %d", seed)
	}
}

// TestUniqueNextIDInFetchedRange: an ID a client library handed out from
// its fetched range is not a clash; when the fetched range itself
// overlaps a range handed out whole, the clash is counted once, as the
// overlap.
func TestUniqueNextIDInFetchedRange(t *testing.T) {
	h := `{"index":0,"time":0,"process":0,"type":"invoke","f":"next-range","value":{"name":"s","n":8,"buffer":true}}
{"index":1,"time":0,"process":0,"type":"ok","f":"next-range","value":{"name":"s","n":8,"from":1,"to":9,"buffer":true}}
{"index":2,"time":0,"process":1,"type":"invoke","f":"next-id","value":{"name":"s"}}
{"index":3,"time":0,"process":1,"type":"ok","f":"next-id","value":{"name":"s","id":5}}
{"index":4,"time":0,"process":2,"type":"invoke","f":"next-range","value":{"name":"s","n":5}}
{"index":5,"time":0,"process":2,"type":"ok","f":"next-range","value":{"name":"s","n":5,"from":5,"to":10}}
`
	events, problems, err := history.Read(strings.NewReader(h))
	require.NoError(t, err)
	require.Empty(t, problems)
	u := Check(events, Options{}).Checks[Unique]
	assert.Equal(t, ValidFalse, u.Valid)
	assert.Equal(t, uint64(4), u.Details.(UniqueDetails).DuplicateIDs, u.Reason) // 5-8, each once
	assert.Equal(t, []int64{1, 5}, u.Ops)

	// Without the range handed out whole, the next-id is fine.
	u = Check(events[:4], Options{}).Checks[Unique]
	assert.Equal(t, ValidTrue, u.Valid, u.Reason)
	assert.Equal(t, "1 ranges and 1 IDs, none handed out twice", u.Reason)
}

func TestPromisesAndTimeout(t *testing.T) {
	events, _, err := history.ReadFile("testdata/gaps-unexplained.jsonl")
	require.NoError(t, err)
	assert.Equal(t, ValidTrue, Check(events, Options{}).Valid, "gaps are not promised by default")
	assert.Equal(t, ValidFalse, Check(events, Options{Promises: []string{Unique, GapFree}}).Valid)
	assert.Error(t, Options{Promises: []string{"fast"}}.Validate())

	// A timeout that has passed leaves porcupine unknown; the direct
	// checker still decides, and says so.
	events, _, err = history.ReadFile("testdata/realtime.jsonl")
	require.NoError(t, err)
	res := Check(events, Options{Timeout: time.Nanosecond})
	d := res.Checks[Linearizable].Details.(LinearizableDetails)
	assert.Equal(t, "Unknown", d.Porcupine)
	assert.Equal(t, ValidFalse, res.Checks[Linearizable].Valid)
}

// TestPorcupineBudget: porcupine's search grows exponentially with the
// operations in flight at once; it gets PorcupineTimeout, and the direct
// checker decides without it.
func TestPorcupineBudget(t *testing.T) {
	events := genHistory(5, 48, 1500, []string{"s"})
	start := time.Now()
	res := Check(events, Options{PorcupineTimeout: 100 * time.Millisecond})
	took := time.Since(start)
	lin := res.Checks[Linearizable]
	assert.Equal(t, ValidTrue, lin.Valid, lin.Reason)
	assert.Equal(t, "Unknown", lin.Details.(LinearizableDetails).Porcupine, "48 in flight is beyond porcupine")
	assert.Contains(t, lin.Reason, "(porcupine timed out after 100ms)")
	assert.Less(t, took, 5*time.Second)
}

// TestVisualizationOfViolation: when porcupine cannot take the whole
// sequence, the visualization shows the first violation and the ranges
// nearest it.
func TestVisualizationOfViolation(t *testing.T) {
	events := genHistory(3, 8, 200, []string{"s"})
	seqs, _ := collect(events)
	oks := okRanges(seqs["s"])
	a, b := oks[len(oks)/3], oks[len(oks)-1] // b returns a's start: they overlap
	setRange(events, b.inv, b.end, history.RangeValue{Name: "s", N: b.n, From: a.from, To: a.from + b.n})
	dir := t.TempDir()
	var buf bytes.Buffer
	require.NoError(t, history.Write(&buf, reread(t, events)))
	require.NoError(t, os.WriteFile(filepath.Join(dir, HistoryFile), buf.Bytes(), 0o644))

	res, err := CheckDir(dir, Options{PorcupineLimit: 20, VisualizeDir: dir})
	require.NoError(t, err)
	lin := res.Checks[Linearizable]
	require.Equal(t, ValidFalse, lin.Valid)
	d := lin.Details.(LinearizableDetails)
	assert.Contains(t, d.Porcupine, "skipped")
	assert.Equal(t, filepath.Join(dir, "linearizable-s.html"), d.Visualization)
	assert.Equal(t, fmt.Sprintf("the violation between events %d and %d and the 14 ranges nearest it", a.endIdx, b.endIdx), d.VisualizationOf)
	html, err := os.ReadFile(d.Visualization)
	require.NoError(t, err)
	assert.Contains(t, string(html), `"Tag":"checker"`)
	assert.Equal(t, 16, strings.Count(string(html), `"OriginalStart"`), "the pair and 14 others")

	// Porcupine on the whole sequence draws all of it.
	res, err = CheckDir(dir, Options{VisualizeDir: dir})
	require.NoError(t, err)
	d = res.Checks[Linearizable].Details.(LinearizableDetails)
	assert.Equal(t, "Illegal", d.Porcupine)
	assert.Equal(t, fmt.Sprintf("all %d ok ranges", len(oks)), d.VisualizationOf)
}

func TestCheckDirRunPromisesAndVisualization(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile("testdata/gaps-unexplained.jsonl")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, HistoryFile), b, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, RunFile), []byte(`{"promises":["unique","gap-free"]}`), 0o644))
	res, err := CheckDir(dir, Options{})
	require.NoError(t, err)
	assert.Equal(t, []string{"unique", "gap-free"}, res.Promises)
	assert.Equal(t, ValidFalse, res.Valid)

	_, err = CheckDir(filepath.Join(dir, "missing"), Options{})
	assert.Error(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "junk.jsonl"), []byte("junk\n"), 0o644))
	_, err = CheckDir(filepath.Join(dir, "junk.jsonl"), Options{})
	assert.ErrorContains(t, err, "junk.jsonl: no usable line; first problem: line 1: not valid JSON")
}

// TestCheckDirFileNames: CheckDir writes nothing of its own; porcupine's
// views go where VisualizeDir says, named with VisualizePrefix, so that
// two histories in one folder keep their own.
func TestCheckDirFileNames(t *testing.T) {
	realtime, err := os.ReadFile("testdata/realtime.jsonl")
	require.NoError(t, err)
	overlap, err := os.ReadFile("testdata/overlap.jsonl")
	require.NoError(t, err)

	run := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(run, HistoryFile), realtime, 0o644))
	res, err := CheckDir(run, Options{})
	require.NoError(t, err)
	assert.Equal(t, ValidFalse, res.Valid)
	assert.Empty(t, res.Visualizations)
	assert.Equal(t, []string{HistoryFile}, dirNames(t, run), "a re-check writes nothing")
	_, err = CheckDir(filepath.Join(run, HistoryFile), Options{})
	require.NoError(t, err)
	assert.Equal(t, []string{HistoryFile}, dirNames(t, run))

	res, err = CheckDir(run, Options{VisualizeDir: run})
	require.NoError(t, err)
	html := filepath.Join(run, "linearizable-default.html")
	assert.Equal(t, []string{html}, res.Visualizations)
	assert.Contains(t, res.Summary(), "porcupine: "+html)
	assert.FileExists(t, html)

	dir, out := t.TempDir(), t.TempDir()
	for name, b := range map[string][]byte{"rt.jsonl": realtime, "ov.jsonl": overlap} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
		stem := strings.TrimSuffix(name, ".jsonl")
		res, err := CheckDir(filepath.Join(dir, name), Options{VisualizeDir: out, VisualizePrefix: stem + "."})
		require.NoError(t, err)
		assert.Equal(t, []string{filepath.Join(out, stem+".linearizable-default.html")}, res.Visualizations, name)
	}
	assert.Equal(t, []string{"ov.jsonl", "rt.jsonl"}, dirNames(t, dir))
	rt, err := os.ReadFile(filepath.Join(out, "rt.linearizable-default.html"))
	require.NoError(t, err)
	ov, err := os.ReadFile(filepath.Join(out, "ov.linearizable-default.html"))
	require.NoError(t, err)
	assert.NotEqual(t, rt, ov, "each file has its own visualization")
}

func dirNames(t *testing.T, dir string) []string {
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestVisualizationFile(t *testing.T) {
	assert.Equal(t, "linearizable-default.html", visualizationFile("", "default"))
	assert.Equal(t, "foo.linearizable-orders_v2.html", visualizationFile("foo.", "orders_v2"))
	// Names that must change keep apart by a hash of the original.
	a, b := visualizationFile("", "a/b"), visualizationFile("", "a.b")
	assert.NotEqual(t, a, b)
	assert.True(t, strings.HasPrefix(a, "linearizable-a_b-") && strings.HasSuffix(a, ".html"), a)
	assert.NotContains(t, visualizationFile("", "../../etc"), "/")
	assert.NotEqual(t, "linearizable-.html", visualizationFile("", ""))
}

// TestFaultAnnotations: fault windows go on porcupine's timeline, from a
// start to its stop, and into the HTML view.
func TestFaultAnnotations(t *testing.T) {
	h := `{"index":0,"time":0,"process":"nemesis","type":"info","f":"start-partition","value":{"groups":[["n1"],["n2","n3"]]}}
{"index":1,"time":1,"process":0,"type":"invoke","f":"next-range","value":{"name":"default","n":5}}
{"index":2,"time":2,"process":0,"type":"ok","f":"next-range","value":{"name":"default","n":5,"from":6,"to":11}}
{"index":3,"time":3,"process":"nemesis","type":"info","f":"start-pause","value":{"node":"n1"}}
{"index":4,"time":4,"process":"nemesis","type":"info","f":"stop-partition","value":null}
{"index":5,"time":5,"process":"nemesis","type":"info","f":"kill","value":{"node":"n2"}}
{"index":6,"time":6,"process":7,"type":"invoke","f":"next-range","value":{"name":"default","n":5}}
{"index":7,"time":7,"process":7,"type":"ok","f":"next-range","value":{"name":"default","n":5,"from":1,"to":6}}
`
	events, problems, err := history.Read(strings.NewReader(h))
	require.NoError(t, err)
	require.Empty(t, problems)
	got := faultAnnotations(events)
	type window struct {
		desc       string
		start, end int64
		details    string
	}
	var windows []window
	for _, a := range got {
		assert.Equal(t, "nemesis", a.Tag)
		windows = append(windows, window{a.Description, a.Start, a.End, a.Details})
	}
	assert.Equal(t, []window{
		{"partition", 0, 4, `start-partition at event 0: {"groups":[["n1"],["n2","n3"]]}; stop-partition at event 4`},
		{"pause", 3, 8, `start-pause at event 3: {"node":"n1"}`}, // never stopped: to the end
		{"kill", 5, 5, `kill at event 5: {"node":"n2"}`},
	}, windows)

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, HistoryFile), []byte(h), 0o644))
	res, err := CheckDir(dir, Options{VisualizeDir: dir})
	require.NoError(t, err)
	require.Equal(t, ValidFalse, res.Checks[Linearizable].Valid)
	b, err := os.ReadFile(filepath.Join(dir, "linearizable-default.html"))
	require.NoError(t, err)
	for _, want := range []string{`"Tag":"nemesis"`, `"Description":"partition"`, `"Description":"pause"`, `process 7, events 6-7`} {
		assert.Contains(t, string(b), want)
	}
}

func TestSummaryAndJSON(t *testing.T) {
	events, _, err := history.ReadFile("testdata/overlap.jsonl")
	require.NoError(t, err)
	res := Check(events, Options{})
	s := res.Summary()
	assert.Contains(t, s, "verdict       violated      promised unique,linearizable,monotonic")
	assert.Contains(t, s, "unique        violated      ")
	assert.Contains(t, s, "gap-free      not promised  ")
	assert.Contains(t, s, "monotonic     n/a           no IDs handed out one by one")
	assert.Equal(t, Violated, res.Word(Unique))
	assert.Equal(t, NA, res.Word(Monotonic), "no next-id: nothing to hold")
	assert.Equal(t, NotPromised, res.Word(GapFree))
	assert.Equal(t, Violated, res.Valid.Word())
	assert.Contains(t, s, "see events [2 3]")
	b, err := json.Marshal(res)
	require.NoError(t, err)
	var m struct {
		Valid  any `json:"valid"`
		Checks map[string]map[string]any
	}
	require.NoError(t, json.Unmarshal(b, &m))
	assert.Equal(t, false, m.Valid)
	assert.Equal(t, false, m.Checks["unique"]["valid"])
	assert.Equal(t, []any{2.0, 3.0}, m.Checks["unique"]["ops"])
	for _, k := range []string{"gap_count", "lost_ids", "unexplained_ids"} {
		assert.Contains(t, m.Checks[GapFree], k)
	}
	var v Valid
	require.NoError(t, json.Unmarshal([]byte(`"unknown"`), &v))
	assert.Equal(t, ValidUnknown, v)
	assert.Error(t, json.Unmarshal([]byte(`"maybe"`), &v))
}

func TestMultipleSequences(t *testing.T) {
	events := genHistory(9, 16, 2000, []string{"a", "b", "c"})
	res := Check(events, Options{})
	assert.Equal(t, ValidTrue, res.Valid, res.Summary())
	assert.Equal(t, []string{"a", "b", "c"}, res.Names)
}

// TestNothingToCheck: a history without a client operation is not valid,
// whatever is promised; one client operation is enough to check.
func TestNothingToCheck(t *testing.T) {
	nemesisOnly, problems, err := history.ReadFile("testdata/nemesis-only.jsonl")
	require.NoError(t, err)
	require.Empty(t, problems)
	require.NotEmpty(t, nemesisOnly)
	cases := []struct {
		name   string
		events []history.Event
		opts   Options
	}{
		{"empty", nil, Options{}},
		{"nemesis only", nemesisOnly, Options{}},
		{"nothing promised", nemesisOnly, Options{Promises: []string{}}},
		{"all promised", nemesisOnly, Options{Promises: []string{Unique, Linearizable, Monotonic, GapFree}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := Check(tc.events, tc.opts)
			assert.Equal(t, ValidUnknown, res.Valid)
			assert.Equal(t, NothingToCheck, res.Reason)
			assert.Contains(t, res.Summary(), "verdict       unknown")
			for _, k := range Properties {
				assert.Equal(t, NA, res.Word(k), k)
			}
			assert.Contains(t, res.Summary(), NothingToCheck)
			b, err := json.Marshal(res)
			require.NoError(t, err)
			assert.Contains(t, string(b), `"valid":"unknown","reason":"no client operations: nothing to check"`)
		})
	}

	one := `{"index":0,"time":0,"process":0,"type":"invoke","f":"next-range","value":{"name":"a","n":1}}
{"index":1,"time":1,"process":0,"type":"ok","f":"next-range","value":{"name":"a","n":1,"from":1,"to":2}}
`
	events, _, err := history.Read(strings.NewReader(one))
	require.NoError(t, err)
	res := Check(append(nemesisOnly[:1:1], events...), Options{})
	assert.Equal(t, ValidTrue, res.Valid, res.Summary())
	assert.Empty(t, res.Reason)
	assert.NotContains(t, res.Summary(), NothingToCheck)
}

// TestCheckDirLiveBound: a run.json that records the live bound the run
// was judged with makes seqlab check judge with it too.
func TestCheckDirLiveBound(t *testing.T) {
	dir := t.TempDir()
	hist := strings.Join([]string{
		`{"index":0,"time":0,"process":"nemesis","type":"info","f":"start-partition","value":null}`,
		`{"index":1,"time":1000000000,"process":"nemesis","type":"info","f":"stop-partition","value":null}`,
		`{"index":2,"time":2500000000,"process":0,"type":"invoke","f":"next-range","value":{"name":"default","n":1}}`,
		`{"index":3,"time":2600000000,"process":0,"type":"fail","f":"next-range","value":{"name":"default","n":1},"node":"n1","error":"unavailable"}`,
		`{"index":4,"time":2700000000,"process":0,"type":"invoke","f":"next-range","value":{"name":"default","n":1}}`,
		`{"index":5,"time":2800000000,"process":0,"type":"ok","f":"next-range","value":{"name":"default","n":1,"from":1,"to":2},"node":"n1"}`,
	}, "\n") + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, HistoryFile), []byte(hist), 0o644))
	write := func(runJSON string) Result {
		require.NoError(t, os.WriteFile(filepath.Join(dir, RunFile), []byte(runJSON), 0o644))
		res, err := CheckDir(dir, Options{})
		require.NoError(t, err)
		return res.Checks[Live]
	}
	assert.True(t, write(`{"promises":["unique","live"]}`).Valid == ValidTrue, "the default 3s bound judges nothing this early")
	assert.Equal(t, ValidFalse, write(`{"promises":["unique","live"],"live_within_ns":1000000000}`).Valid,
		"a 1s bound judges the failure 1.5s after the heal")
}
