package checker

import (
	"bytes"
	"encoding/json"
	"flag"
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
			got := golden{Valid: res.Valid, Checks: map[string]goldenCheck{}, Malformed: res.Malformed, Ops: res.Stats.Ops}
			for k, c := range res.Checks {
				if k == "stats" {
					continue
				}
				got.Checks[k] = goldenCheck{c.Valid, c.Reason, c.Ops}
			}
			got.Gaps, _ = res.Checks["gaps"].Details.(GapDetails)
			// results.json is written and reads back.
			rb, err := os.ReadFile(filepath.Join(dir, ResultsFile))
			require.NoError(t, err)
			var back struct {
				Valid  Valid                      `json:"valid"`
				Checks map[string]json.RawMessage `json:"checks"`
			}
			require.NoError(t, json.Unmarshal(rb, &back))
			assert.Equal(t, res.Valid, back.Valid)
			for _, k := range []string{"unique", "linearizable", "monotonic", "gaps", "stats"} {
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
		"valid":                {"": ValidTrue, "unique": ValidTrue, "linearizable": ValidTrue, "monotonic": ValidTrue, "gaps": ValidTrue},
		"overlap":              {"": ValidFalse, "unique": ValidFalse, "linearizable": ValidFalse},
		"realtime":             {"": ValidFalse, "unique": ValidTrue, "linearizable": ValidFalse},
		"concurrent-reordered": {"": ValidTrue, "linearizable": ValidTrue},
		"nonmonotonic":         {"": ValidFalse, "unique": ValidTrue, "monotonic": ValidFalse},
		"gaps-explained":       {"": ValidTrue, "gaps": ValidTrue},
		"gaps-unexplained":     {"": ValidTrue, "gaps": ValidFalse},
		"malformed":            {"": ValidUnknown, "unique": ValidTrue},
		"truncated":            {"": ValidTrue},
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
	g := res.Checks["gaps"].Details.(GapDetails)
	// IDs 1-5: an info of size 5 may have taken them; 11-16: fetched into
	// a buffer and never handed out.
	assert.Equal(t, GapDetails{HighestID: 19, GapCount: 2, LostIDs: 11, ExplainedIDs: 11, BufferedIDs: 6, MaybeAllocatedIDs: 5,
		Gaps: []Gap{{From: 1, To: 6, By: []int64{1}}, {From: 11, To: 17}}}, g)
	assert.Equal(t, ValidTrue, res.Valid)

	events, _, err = history.ReadFile("testdata/gaps-unexplained.jsonl")
	require.NoError(t, err)
	res = Check(events, Options{Promises: []string{GapFree}})
	g = res.Checks["gaps"].Details.(GapDetails)
	// 4-9 is six IDs no info op can cover (the info came later); 12-13 is
	// covered by the info of size 2 invoked before [14,16) completed.
	assert.Equal(t, uint64(6), g.UnexplainedIDs)
	assert.Equal(t, uint64(2), g.MaybeAllocatedIDs)
	assert.Equal(t, ValidFalse, res.Valid, "gap-free is promised")
	assert.Equal(t, []int64{3}, res.Checks["gaps"].Ops)
}

// linearizableBoth runs both checkers on a one-sequence history.
func linearizableBoth(t *testing.T, events []history.Event) (Valid, string) {
	seqs, _ := collect(events)
	require.Len(t, seqs, 1)
	for _, s := range seqs {
		v, _, _ := directLinearizable(s)
		p, _ := porcupineCheck(s, 30*time.Second, "")
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
	events[end].Value = b
	v.From, v.To = 0, 0
	b, _ = json.Marshal(v)
	events[inv].Value = b
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
			if o.typ == history.Ok {
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

	// A bare file gets NAME.results.json and, being non-linearizable, a
	// porcupine visualization.
	b, err = os.ReadFile("testdata/realtime.jsonl")
	require.NoError(t, err)
	path := filepath.Join(dir, "rt.jsonl")
	require.NoError(t, os.WriteFile(path, b, 0o644))
	_, err = CheckDir(path, Options{Promises: DefaultPromises})
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(dir, "rt.results.json"))
	assert.FileExists(t, filepath.Join(dir, "linearizable-default.html"))

	_, err = CheckDir(filepath.Join(dir, "missing"), Options{})
	assert.Error(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "junk.jsonl"), []byte("junk\n"), 0o644))
	_, err = CheckDir(filepath.Join(dir, "junk.jsonl"), Options{})
	assert.ErrorContains(t, err, "no usable line")
}

func TestSummaryAndJSON(t *testing.T) {
	events, _, err := history.ReadFile("testdata/overlap.jsonl")
	require.NoError(t, err)
	res := Check(events, Options{})
	s := res.Summary()
	assert.Contains(t, s, "verdict       false")
	assert.Contains(t, s, "see events [2 3]")
	assert.Contains(t, s, "(not promised)")
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
		assert.Contains(t, m.Checks["gaps"], k)
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
