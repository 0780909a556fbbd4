package report_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/checker/history"
	"github.com/seqlab/seqlab/report"
	"github.com/seqlab/seqlab/scenarios"
)

var update = flag.Bool("update", false, "rewrite the golden reports in testdata/")

// The fixtures: two sim runs as seqlab run recorded them (porcupine's
// view cut to a stub), and a bare history.
var fixtures = []string{"bug-crash-all-in-memory", "mixed-at-once", "history-only"}

func fixture(name string) string { return filepath.Join("testdata", "runs", name) }

// TestGolden: the same recording gives the same bytes, and rendering
// writes nothing. go test ./report -run TestGolden -update rewrites the
// golden files; review the diff.
func TestGolden(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			dir := fixture(name)
			before := snapshot(t, dir)
			var got bytes.Buffer
			require.NoError(t, report.Render(&got, dir))
			require.Equal(t, before, snapshot(t, dir), "Render wrote into the run directory")
			golden := filepath.Join("testdata", name+".golden.html")
			if *update {
				require.NoError(t, os.WriteFile(golden, got.Bytes(), 0o644))
				return
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "go test ./report -run TestGolden -update writes it")
			if d := firstDiff(got.Bytes(), want); d != "" {
				t.Errorf("the report of %s differs from %s: %s\n(go test ./report -run TestGolden -update rewrites it; review the diff)", dir, golden, d)
			}
		})
	}
}

// TestWhatAReaderSees checks each fixture's report against its run: a
// band per fault kind of each fault window on every plot, the legend,
// each check's word as the run's block gave it, the availability
// windows, the violating operations marked, and nothing fetched.
func TestWhatAReaderSees(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			dir := fixture(name)
			var buf bytes.Buffer
			require.NoError(t, report.Render(&buf, dir))
			page := buf.String()

			kinds, bands := faultKinds(t, dir)
			plots := plotsOf(page)
			require.Len(t, plots, 3, "latency, quantiles, throughput")
			for id, svg := range plots {
				require.Equal(t, bands, strings.Count(svg, `<g class="band"`), "fault bands on plot %s", id)
			}
			for _, k := range kinds {
				match(t, `id="fault-legend">.*>`+regexp.QuoteMeta(k)+`</span>`, page)
			}

			res := results(t, dir)
			words := blockWords(t, dir)
			for _, p := range checker.Properties {
				if !recorded(t, dir, p) {
					continue // recorded before the check existed
				}
				want, ok := words[p]
				if !ok { // no block: the checker's own word
					want = string(res.Word(p))
				}
				require.Contains(t, page, fmt.Sprintf(`data-check="%s" data-word="%s"`, p, want), "the word of %s", p)
			}
			require.Equal(t, len(res.Stats.Windows), strings.Count(section(page, `<table id="availability">`, `</table>`), "<tr")-1, "availability windows")

			violating := map[int64]bool{}
			for _, p := range checker.Properties {
				c := res.Checks[p]
				if w := words[p]; c.Valid == checker.ValidFalse && (w == "caught" || w == "violated" || (w == "" && res.Word(p) == checker.Violated)) {
					for _, i := range c.Ops {
						violating[i] = true
					}
				}
			}
			require.Equal(t, len(violating), strings.Count(page, `data-violates="`), "violating operations marked")

			for _, fetch := range []string{` src="`, `href="http`, `url(`, `@import`, `<script`} {
				require.NotContains(t, page, fetch, "a self-contained page fetches nothing")
			}
		})
	}
}

// TestCaps: a long run is downsampled and its timeline capped, and the
// page says so; the timeline keeps the first violation in view.
func TestCaps(t *testing.T) {
	defer report.SetCapsForTest(40, 25)()
	dir := fixture("bug-crash-all-in-memory")
	var buf bytes.Buffer
	require.NoError(t, report.Render(&buf, dir))
	page := buf.String()
	match(t, `Downsampled: 40 of 141 operations are drawn, an even share of the ok ones and of the others`, page)
	match(t, `Capped: the timeline shows operations \d+ to \d+ of 141 \(at most 25\)`, page)
	tl := section(page, `<div class="timeline" id="timeline"`, "</body>")
	require.Equal(t, 25, strings.Count(tl, `id="op-`), "operations in the timeline")
	require.Positive(t, strings.Count(tl, `data-violates="`), "the first violation is in view")
}

// TestHoldsOperationsNotEvents: a report keeps each operation of a long
// history in compact form, a few dozen bytes, and never its events,
// which take hundreds: a 1-hour run has hundreds of thousands of them.
func TestHoldsOperationsNotEvents(t *testing.T) {
	const n = 20000
	dir := t.TempDir()
	writeLongHistory(t, dir, n)
	held, ops, err := report.HeldForTest(dir)
	require.NoError(t, err)
	require.Equal(t, n, ops)
	// Held as its two events, as the report once held them, an
	// operation takes over 700 bytes; in compact form, about 70.
	perOp := float64(held) / n
	require.Less(t, perOp, 200.0, "bytes held per operation (%d in all)", held)
	require.NoError(t, report.Render(io.Discard, dir))
}

// BenchmarkRenderLong renders a generated history of 100,000 operations,
// about 10 minutes of a busy run, without results.json, so that the
// check is in it too, and reports the bytes the loaded run holds per
// operation.
func BenchmarkRenderLong(b *testing.B) {
	const n = 100000
	dir := b.TempDir()
	writeLongHistory(b, dir, n)
	held, _, err := report.HeldForTest(dir)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if err := report.Render(io.Discard, dir); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(held)/n, "held-B/operation")
}

// writeLongHistory writes dir/history.jsonl: n operations of eight
// processes, each taking five IDs at a time, and a pause every thousand.
func writeLongHistory(tb testing.TB, dir string, n int) {
	tb.Helper()
	f, err := os.Create(filepath.Join(dir, checker.HistoryFile))
	require.NoError(tb, err)
	w := bufio.NewWriter(f)
	var now time.Duration
	rec := history.NewRecorder(w, func() time.Duration { return now })
	next := uint64(1)
	for k := range n {
		switch k % 1000 {
		case 100:
			rec.Nemesis("start-pause", map[string]string{"node": "n2"})
		case 400:
			rec.Nemesis("stop-pause", map[string]string{"node": "n2"})
		}
		proc := k % 8
		now += time.Millisecond
		rec.Invoke(proc, history.NextRange, history.RangeValue{Name: "default", N: 5})
		now += 3 * time.Millisecond
		rec.Ok(proc, history.NextRange, history.RangeValue{Name: "default", N: 5, From: next, To: next + 5}, "n1", "")
		next += 5
	}
	require.NoError(tb, rec.Err())
	require.NoError(tb, w.Flush())
	require.NoError(tb, f.Close())
}

// TestBadInput: what cannot make a report says why, writes nothing, and
// changes nothing; a last line cut short is left out, and said so.
func TestBadInput(t *testing.T) {
	good, err := os.ReadFile(filepath.Join(fixture("history-only"), checker.HistoryFile))
	require.NoError(t, err)
	lines := strings.SplitAfter(string(good), "\n")
	cases := []struct {
		name  string
		files map[string]string
		err   string // "" when a report is made
		note  string
	}{
		{"no history", map[string]string{"run.json": `{"scenario":"A/b"}`}, "history.jsonl: no such file", ""},
		{"empty history", map[string]string{"history.jsonl": ""}, "no events: nothing to report", ""},
		{"malformed line", map[string]string{"history.jsonl": lines[0] + "{not json\n" + strings.Join(lines[1:], "")}, "malformed lines, first: line 2", ""},
		{"malformed run.json", map[string]string{"history.jsonl": string(good), "run.json": "{"}, "run.json", ""},
		{"unknown promise", map[string]string{"history.jsonl": string(good), "run.json": `{"promises":["fast"]}`}, `unknown property "fast"`, ""},
		{"malformed results", map[string]string{"history.jsonl": string(good), "results.json": `{"checks":`}, "results.json", ""},
		{"results without checks", map[string]string{"history.jsonl": string(good), "results.json": `{}`}, "no checks", ""},
		{"cut short", map[string]string{"history.jsonl": string(good) + `{"index":9,"ti`}, "", "was cut short"},
		{"nemesis only", map[string]string{"history.jsonl": `{"index":0,"time":5,"process":"nemesis","type":"info","f":"start-pause"}` + "\n"}, "", "no results.json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range c.files {
				require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
			}
			before := snapshot(t, dir)
			err := report.Write(dir)
			if c.err != "" {
				require.ErrorContains(t, err, c.err)
				require.Equal(t, before, snapshot(t, dir), "a failed report changes nothing")
				return
			}
			require.NoError(t, err)
			page, err := os.ReadFile(filepath.Join(dir, report.File))
			require.NoError(t, err)
			require.Contains(t, string(page), c.note)
			after := snapshot(t, dir)
			delete(after, report.File)
			require.Equal(t, before, after, "Write writes report.html and nothing else")
		})
	}
	t.Run("missing dir", func(t *testing.T) {
		require.ErrorContains(t, report.Write(filepath.Join(t.TempDir(), "nowhere")), "no such file or directory")
	})
	t.Run("a file", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "history.jsonl")
		require.NoError(t, os.WriteFile(f, good, 0o644))
		require.ErrorContains(t, report.Write(f), "is not a directory")
	})
}

// TestNoPanic renders each of the checker's golden histories, the
// malformed and the odd ones included: a report or an error, never a
// panic.
func TestNoPanic(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "checker", "testdata", "*.jsonl"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, checker.HistoryFile), b, 0o644))
			if err := report.Render(io.Discard, dir); err != nil {
				t.Logf("%s: %v", filepath.Base(f), err)
			}
		})
	}
}

// TestSameSeedSameReport runs one sim seed twice: each run writes its
// report and titles porcupine's view, and the two reports are
// byte-identical outside the section that names the start, the wall
// time and the directory.
func TestSameSeedSameReport(t *testing.T) {
	sc, err := scenarios.Find("Bug/crash-all-in-memory")
	require.NoError(t, err)
	var pages [2]string
	for i := range pages {
		rep, err := scenarios.RunSim(sc, scenarios.Options{Seed: 1, HasSeed: true, TimeLimit: 7 * time.Second, Concurrency: 2, Store: t.TempDir(), Out: io.Discard})
		require.NoError(t, err)
		written, err := os.ReadFile(filepath.Join(rep.Dir, report.File))
		require.NoError(t, err, "every run directory has a report")
		var b bytes.Buffer
		require.NoError(t, report.Render(&b, rep.Dir))
		require.Equal(t, string(written), b.String(), "the run's report is the recording's")
		pages[i] = b.String()
		view, err := os.ReadFile(filepath.Join(rep.Dir, "linearizable-default.html"))
		require.NoError(t, err)
		require.Contains(t, string(view), "<title>porcupine: sequence default of Bug/crash-all-in-memory, seed 1 (sim mode)</title>", "the run titles porcupine's view")
	}
	require.NotEqual(t, pages[0], pages[1], "the runs differ in their directories")
	a, b := withoutRunSpecific(t, pages[0]), withoutRunSpecific(t, pages[1])
	if d := firstDiff([]byte(a), []byte(b)); d != "" {
		t.Errorf("two runs of one seed: %s", d)
	}
}

// TestViews: porcupine's real view gets a title naming the run, from View
// without writing and from TitleViews in place, once.
func TestViews(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(fixture("history-only"), checker.HistoryFile))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, checker.HistoryFile), b, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, checker.RunFile), []byte(`{"scenario":"Bug/x","seed":7,"mode":"sim"}`), 0o644))
	res, err := checker.CheckDir(dir, checker.Options{VisualizeDir: dir})
	require.NoError(t, err)
	require.Len(t, res.Visualizations, 1, "the fixture is not linearizable")
	name := "linearizable-default.html"
	raw, err := os.ReadFile(filepath.Join(dir, name))
	require.NoError(t, err)
	require.Contains(t, string(raw), "<title>Porcupine</title>", "porcupine's own title, which TitleViews replaces")

	want := "<title>porcupine: sequence default of Bug/x, seed 7 (sim mode)</title>"
	v, err := report.View(dir, name)
	require.NoError(t, err)
	require.Contains(t, string(v), want)
	again, _ := os.ReadFile(filepath.Join(dir, name))
	require.Equal(t, raw, again, "View writes nothing")

	require.NoError(t, report.TitleViews(dir))
	titled, _ := os.ReadFile(filepath.Join(dir, name))
	require.Equal(t, v, titled)
	require.NoError(t, report.TitleViews(dir))
	twice, _ := os.ReadFile(filepath.Join(dir, name))
	require.Equal(t, titled, twice, "a titled view stays as it is")

	for _, bad := range []string{"../" + name, "summary.txt", "linearizable-x.htm"} {
		_, err := report.View(dir, bad)
		require.Error(t, err, bad)
	}
}

// snapshot is each file of dir with its size, time and digest.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		fi, err := e.Info()
		require.NoError(t, err)
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		out[e.Name()] = fmt.Sprintf("%d %v %x", fi.Size(), fi.ModTime().UnixNano(), sha256.Sum256(b))
	}
	return out
}

func firstDiff(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	n := 0
	for n < len(got) && n < len(want) && got[n] == want[n] {
		n++
	}
	line := bytes.Count(got[:n], []byte("\n")) + 1
	clip := func(b []byte) string { return string(b[max(0, n-60):min(len(b), n+60)]) }
	return fmt.Sprintf("first difference at byte %d, line %d:\n got  ...%s...\n want ...%s...", n, line, clip(got), clip(want))
}

// faultKinds are the fault kinds of dir's history, and the bands a plot
// should draw: one per kind of each window (a start event).
func faultKinds(t *testing.T, dir string) ([]string, int) {
	events, _, err := history.ReadFile(filepath.Join(dir, checker.HistoryFile))
	require.NoError(t, err)
	var kinds []string
	seen := map[string]bool{}
	bands := 0
	for _, e := range events {
		if name, ok := strings.CutPrefix(e.F, "start-"); ok && e.Nemesis {
			for _, k := range strings.Split(name, "+") {
				bands++
				if !seen[k] {
					seen[k] = true
					kinds = append(kinds, k)
				}
			}
		}
	}
	return kinds, bands
}

func plotsOf(page string) map[string]string {
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`(?s)<svg class="plot" id="plot-(\w+)".*?</svg>`).FindAllStringSubmatch(page, -1) {
		out[m[1]] = m[0]
	}
	return out
}

func section(page, from, to string) string {
	i := strings.Index(page, from)
	if i < 0 {
		return ""
	}
	j := strings.Index(page[i:], to)
	if j < 0 {
		return page[i:]
	}
	return page[i : i+j]
}

// results checks dir's history as the run did.
// recorded reports whether dir's results.json, when it has one, holds
// check: a run recorded before a check existed has none to show.
func recorded(t *testing.T, dir, check string) bool {
	b, err := os.ReadFile(filepath.Join(dir, checker.ResultsFile))
	if os.IsNotExist(err) {
		return true // checked in memory, with every check
	}
	require.NoError(t, err)
	var r struct {
		Checks map[string]json.RawMessage `json:"checks"`
	}
	require.NoError(t, json.Unmarshal(b, &r))
	_, ok := r.Checks[check]
	return ok
}

func results(t *testing.T, dir string) checker.Results {
	res, err := checker.CheckDir(dir, checker.Options{})
	require.NoError(t, err)
	return res
}

// blockWords are the words of the checks in dir's summary.txt, the
// block the run printed.
func blockWords(t *testing.T, dir string) map[string]string {
	out := map[string]string{}
	b, err := os.ReadFile(filepath.Join(dir, "summary.txt"))
	if os.IsNotExist(err) {
		return out
	}
	require.NoError(t, err)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "check     "); ok {
			name, rest, _ := strings.Cut(rest, " ")
			rest = strings.TrimLeft(rest, " ")
			word := rest[:min(len(rest), 13)]
			out[name] = strings.TrimSpace(word)
		}
	}
	return out
}

// match fails t when page has no match of pattern, without printing
// the page.
func match(t *testing.T, pattern, page string) {
	t.Helper()
	if !regexp.MustCompile(pattern).MatchString(page) {
		t.Fatalf("the page has no %q", pattern)
	}
}

func withoutRunSpecific(t *testing.T, page string) string {
	i := strings.Index(page, `<section id="run-specific"`)
	j := strings.Index(page, "</section>")
	require.True(t, i >= 0 && j > i, "the page marks its run-specific section")
	return page[:i] + page[j:]
}
