package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/checker/history"
)

// File is the report's name in a run directory.
const File = "report.html"

// Write writes dir/report.html, the report of the run recorded in dir,
// and changes nothing else there. The report replaces an older one
// whole, or, when it cannot be made, is not written at all: the error
// says why, and the directory is as it was.
func Write(dir string) error {
	var buf bytes.Buffer
	if err := Render(&buf, dir); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, File), buf.Bytes())
}

// Render writes the report of the run recorded in dir to w. It reads
// run.json, history.jsonl, results.json and summary.txt and writes
// nothing; without results.json (a history from elsewhere) it checks the
// history itself.
func Render(w io.Writer, dir string) error {
	r, err := load(dir)
	if err != nil {
		return err
	}
	p, err := r.page()
	if err != nil {
		return err
	}
	return errors.Wrap(page.Execute(w, p), "write report")
}

// writeFile replaces path with b through a temporary file beside it, so
// that a reader never sees half a file.
func writeFile(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return errors.Wrap(err, "write report")
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return errors.Wrapf(err, "write %s", path)
	}
	return nil
}

// pageData is what the template draws.
type pageData struct {
	Title    string
	Scenario string
	Status   string // PASS, FAIL, INTERRUPTED or ""
	Verdict  string
	Facts    []fact
	Replay   []string
	Specific []fact // what differs between two runs of the same seed
	Notes    []string
	Checks   []checkRow
	Kinds    []legendItem
	Figures  []figure
	Windows  []windowRow
	Faults   int
	Timeline timeline
	Links    []link
}

type fact struct{ Name, Value string }

type link struct{ Href, Text string }

type checkRow struct {
	Name, Word, Class, Reason string
	Evidence                  []evidenceLine
	More                      int // offending operations beyond those listed
	Ops                       []int64
}

type evidenceLine struct {
	Line   string
	Anchor string // the timeline box, when it is drawn
}

type windowRow struct {
	After, From, To, Ok, Availability, Class string
	Faulty                                   bool
}

func (r *run) page() (pageData, error) {
	i := r.info
	p := pageData{Scenario: i.Scenario, Status: r.status, Verdict: r.verdict}
	if p.Scenario == "" {
		p.Scenario = filepath.Base(filepath.Clean(r.dir))
	}
	p.Title = fmt.Sprintf("%s, seed %d", p.Scenario, i.Seed)
	if !r.hasInfo {
		p.Title = p.Scenario + ": a history"
	}
	if p.Verdict == "" {
		p.Verdict = fmt.Sprintf("%s (promised %s)", r.res.Valid.Word(), strings.Join(r.res.Promises, ","))
		if r.res.Reason != "" {
			p.Verdict += ": " + r.res.Reason
		}
	}
	if r.hasInfo {
		p.Facts = append(p.Facts, fact{"scenario", i.Scenario}, fact{"seed", fmt.Sprint(i.Seed)}, fact{"mode", modeName(i.Mode)})
		p.Facts = append(p.Facts, fact{"build", build(i)})
		if i.Hash != "" {
			p.Facts = append(p.Facts, fact{"hash", i.Hash})
		}
		sim := fmt.Sprintf("%.1fs of %.1fs", i.SimTime.Seconds(), i.TimeLimit.Seconds())
		if i.Interrupted {
			sim += ", interrupted"
		}
		label := "time simulated"
		if i.Mode == "process" {
			label = "time (wall clock)"
		}
		p.Facts = append(p.Facts, fact{label, sim}, fact{"range clients", fmt.Sprint(i.Concurrency)})
		if len(i.Faults) > 0 {
			p.Facts = append(p.Facts, fact{"faults", strings.Join(i.Faults, ", ")})
		}
		if len(i.Expect) > 0 {
			p.Facts = append(p.Facts, fact{"planted bug", "expected to violate " + strings.Join(i.Expect, ", ")})
		}
		if i.Note != "" {
			p.Facts = append(p.Facts, fact{"note", i.Note})
		}
		if i.Replay != "" {
			p.Replay = append(p.Replay, i.Replay)
		}
		if i.Mode != "sim" && i.Replay != "" {
			p.Replay = append(p.Replay, "seqlab replay "+filepath.ToSlash(r.dir))
		}
		p.Specific = append(p.Specific, fact{"started", i.Started.UTC().Format(time.RFC3339)}, fact{"wall time", i.WallTime.Round(time.Millisecond).String()})
	}
	p.Facts = append(p.Facts, fact{"promised", strings.Join(r.res.Promises, ", ")}, fact{"operations", r.outcomes()})
	p.Specific = append(p.Specific, fact{"run dir", filepath.ToSlash(r.dir)})
	p.Notes = append(p.Notes, r.notes...)
	if r.rechecked {
		p.Notes = append(p.Notes, "This directory has no results.json: the report checked the history itself.")
	}
	bad := r.violating()
	lo, hi := r.shown(bad)
	// The lines the page quotes or draws in full: the timeline's
	// operations and the evidence of each check.
	var need []int64
	for _, o := range r.ops[lo:hi] {
		need = append(need, o.ref())
	}
	for _, name := range checker.Properties {
		need = append(need, r.evidenceOf(name)...)
	}
	lines, err := r.lines(need)
	if err != nil {
		return p, err
	}
	tl, err := r.timeline(bad, lo, hi, lines)
	if err != nil {
		return p, err
	}
	shown := map[int64]bool{}
	for _, b := range tl.Boxes {
		if b.Class != "fault" {
			shown[b.Index] = true
		}
	}
	for _, name := range checker.Properties {
		c, ok := r.res.Checks[name]
		if !ok {
			continue
		}
		w := r.word(name)
		row := checkRow{Name: name, Word: string(w), Class: wordClass(w), Reason: c.Reason}
		for _, line := range r.evidence(name, lines) {
			ev := evidenceLine{Line: line}
			var e history.Event
			if e.UnmarshalJSON([]byte(line)) == nil && shown[e.Index] {
				ev.Anchor = fmt.Sprintf("op-%d", e.Index)
			}
			row.Evidence = append(row.Evidence, ev)
		}
		if c.Valid == checker.ValidFalse {
			row.Ops = c.Ops[:min(len(c.Ops), 20)]
			row.More = len(c.Ops) - len(row.Ops)
		}
		p.Checks = append(p.Checks, row)
	}
	if st, ok := r.res.Checks[checker.StatsCheck]; ok {
		p.Checks = append(p.Checks, checkRow{Name: checker.StatsCheck, Word: "", Class: "na", Reason: st.Reason})
	}
	for k, name := range r.kinds {
		p.Kinds = append(p.Kinds, legendItem{Label: name, Color: kindColor(k), Shape: "band"})
	}
	for _, w := range r.windows {
		p.Faults += len(w.kinds)
	}
	figs, err := r.figures()
	if err != nil {
		return p, err
	}
	p.Figures = figs
	p.Windows = r.windowRows()
	p.Timeline = tl
	for _, v := range r.views {
		what := r.res.Checks[checker.Linearizable].VisualizationOf
		text := "porcupine's view of " + strings.TrimSuffix(strings.TrimPrefix(v, "linearizable-"), ".html")
		if what != "" && len(r.views) == 1 {
			text += ": " + what
		}
		p.Links = append(p.Links, link{v, text})
	}
	for _, f := range []string{"summary.txt", checker.HistoryFile, checker.ResultsFile, checker.RunFile} {
		if fi, err := os.Stat(filepath.Join(r.dir, f)); err == nil && fi.Mode().IsRegular() {
			p.Links = append(p.Links, link{f, f})
		}
	}
	return p, nil
}

// outcomes counts the client operations by outcome.
func (r *run) outcomes() string {
	n := map[string]int{}
	for _, o := range r.ops {
		t := r.names.str(o.typ)
		if o.end < 0 {
			t = "pending"
		}
		n[t]++
	}
	s := fmt.Sprintf("ok=%d fail=%d info=%d", n[history.Ok], n[history.Fail], n[history.Info])
	if n["pending"] > 0 {
		s += fmt.Sprintf(" pending=%d", n["pending"])
	}
	return s
}

// windowRows are the stats check's windows: the stretches between fault
// events, each with its availability.
func (r *run) windowRows() []windowRow {
	ws := r.res.Checks[checker.StatsCheck].Windows
	var out []windowRow
	active := 0
	for k, w := range ws {
		to := r.end
		if k+1 < len(ws) {
			to = ws[k+1].Start
		}
		row := windowRow{After: w.After, From: fmt.Sprintf("%.3fs", secs(w.Start)), To: fmt.Sprintf("%.3fs", secs(to)), Ok: fmt.Sprintf("%d of %d", w.Ok, w.Total)}
		switch {
		case w.After == "":
			row.After = "the start"
		case strings.HasPrefix(w.After, "start-"):
			active++
		case strings.HasPrefix(w.After, "stop-"):
			active = max(0, active-1)
		}
		if w.After != "the start" && w.After != "" {
			row.After = fmt.Sprintf("%s (event %d)", w.After, w.Index)
		}
		row.Faulty = active > 0
		switch {
		case w.Availability < 0:
			row.Availability, row.Class = "nothing completed", "na"
		case w.Availability >= 0.99:
			row.Availability, row.Class = fmt.Sprintf("%.0f%%", 100*w.Availability), "good"
		case w.Availability >= 0.5:
			row.Availability, row.Class = fmt.Sprintf("%.0f%%", 100*w.Availability), "fair"
		default:
			row.Availability, row.Class = fmt.Sprintf("%.0f%%", 100*w.Availability), "poor"
		}
		out = append(out, row)
	}
	return out
}

func modeName(m string) string {
	switch m {
	case "grpc":
		return "grpc (real gRPC nodes on a simulated network, virtual time)"
	case "sim":
		return "sim (the deterministic simulator: bit-exact by seed)"
	case "process":
		return "process (node processes under real faults, wall-clock time)"
	}
	return m
}

func build(i runInfo) string {
	b := i.Build
	if b.Commit == "" && b.Go == "" {
		return "not recorded"
	}
	c := b.Commit[:min(12, len(b.Commit))]
	if b.Dirty {
		c += " (with uncommitted changes)"
	}
	return fmt.Sprintf("commit %s, %s", c, b.Go)
}

// wordClass is a word's colour in the page.
func wordClass(w checker.Word) string {
	switch w {
	case checker.Held:
		return "held"
	case checker.Violated:
		return "violated"
	case checker.Caught:
		return "caught"
	case checker.Unknown:
		return "unknown"
	}
	return "na"
}

//go:embed page.html.tmpl
var pageTemplate string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"statusClass": statusClass,
}).Parse(pageTemplate))

// statusClass is the CSS class, and so the colour, of a run's status:
// good (PASS), bad (FAIL), or neutral (INTERRUPTED, or none).
func statusClass(s string) string {
	switch strings.ToLower(s) {
	case "pass":
		return "good"
	case "fail":
		return "bad"
	}
	return "neutral"
}
