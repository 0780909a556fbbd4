package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/report"
)

func init() { commands["serve"] = serveCmd }

// defaultServeAddr is where seqlab serve listens: this machine only.
const defaultServeAddr = "127.0.0.1:8080"

func serveCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seqlab serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", defaultServeAddr, "address to listen on (host:port; port 0 picks a free one)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: seqlab serve [STORE] [--addr HOST:PORT]")
		fmt.Fprintln(stderr, "Serves the runs of STORE (default store) to a browser, newest first, with their reports,")
		fmt.Fprintln(stderr, "summaries, histories and porcupine's views. It changes nothing in the store. Ctrl-C stops it.")
		fs.PrintDefaults()
	}
	store, rest := splitPositional(args)
	if err := fs.Parse(rest); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if store == "" && fs.NArg() == 1 {
		store = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "seqlab serve: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if store == "" {
		store = "store"
	}
	if fi, err := os.Stat(store); err != nil || !fi.IsDir() {
		if err == nil {
			err = fmt.Errorf("%s is not a directory", store)
		}
		fmt.Fprintf(stderr, "seqlab serve: %v: name the directory that keeps the run directories (seqlab run writes them to store/)\n", err)
		return 2
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "seqlab serve: %v\n", err)
		return 2
	}
	ctx, stop := notify(stderr)
	defer stop()
	fmt.Fprintf(stdout, "serving   %s at http://%s/ (Ctrl-C stops)\n", store, ln.Addr())
	if err := serve(ctx, ln, store); err != nil {
		fmt.Fprintf(stderr, "seqlab serve: %v\n", err)
		return 2
	}
	fmt.Fprintln(stdout, "stopped")
	return 0
}

// serve answers on ln until ctx ends, then stops: it takes no new
// connection, gives the requests in flight shutdownGrace to finish,
// cuts what is left (a client that sent half a request, say), and
// returns once its goroutines have.
func serve(ctx context.Context, ln net.Listener, store string) error {
	root, err := os.OpenRoot(store)
	if err != nil {
		ln.Close()
		return err
	}
	defer root.Close()
	srv := &http.Server{Handler: &storeHandler{root: root, name: store}, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err = srv.Shutdown(shut)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close() // requests still in flight: cut them
	}
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// shutdownGrace is how long serve waits for requests in flight when it
// stops: the pages are small, and Ctrl-C should feel immediate.
const shutdownGrace = time.Second

// storeHandler serves a store read-only: the list of runs at /, and the
// files of the store under /files/. It opens files only through root,
// which refuses any path that leads out of the store, symbolic links
// included; every path it refuses, or that names no regular file, is a
// 404.
type storeHandler struct {
	root *os.Root
	name string
}

func (h *storeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "seqlab serve is read-only", http.StatusMethodNotAllowed)
		return
	}
	switch {
	case r.URL.Path == "/":
		h.index(w, r)
	case r.URL.Path == "/favicon.ico":
		// Pages that name no icon (porcupine's) make the browser ask.
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(r.URL.Path, "/files/"):
		name, ok := storePath(strings.TrimPrefix(r.URL.Path, "/files/"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.file(w, r, name)
	default:
		http.NotFound(w, r)
	}
}

// storePath checks a path below /files/: it must be relative, clean
// (no . or .. element, no empty one) and plain, else it names nothing.
func storePath(p string) (string, bool) {
	if p == "" || strings.ContainsAny(p, "\\\x00") || path.IsAbs(p) || path.Clean(p) != p || !fs.ValidPath(p) {
		return "", false
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." || el == "." {
			return "", false
		}
	}
	return p, true
}

// file serves one file of the store. A run's report is rendered in
// memory when the run has none (older runs), and porcupine's views get a
// title that names their run; neither is written back.
func (h *storeHandler) file(w http.ResponseWriter, r *http.Request, name string) {
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	fi, err := h.root.Stat(name)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		http.NotFound(w, r)
		return
	case err != nil && base == report.File && dir != "" && h.isRun(dir) && h.contained(dir):
		var buf bytes.Buffer
		if err := report.Render(&buf, h.local(dir)); err != nil {
			http.Error(w, "no report: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(buf.Bytes())
		return
	case err != nil:
		http.NotFound(w, r)
		return
	}
	if report.IsView(base) && dir != "" && h.contained(dir) {
		b, err := report.View(h.local(dir), base)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(b)
		return
	}
	f, err := h.root.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	switch path.Ext(base) {
	case ".txt", ".jsonl", ".json":
		// Shown, not downloaded.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	http.ServeContent(w, r, base, fi.ModTime(), f)
}

// local is a store path as a path of this machine, for package report.
// The path was checked by storePath, and the files it names are in the
// store as far as root could tell: report reads only the run's own
// files by their fixed names.
func (h *storeHandler) local(dir string) string {
	return h.name + string(os.PathSeparator) + strings.ReplaceAll(dir, "/", string(os.PathSeparator))
}

// contained reports whether every file of dir that package report reads
// is in the store, or absent: report reads by paths of this machine, so
// a link from the run to a file outside the store must stop it here.
func (h *storeHandler) contained(dir string) bool {
	for _, f := range []string{checker.RunFile, checker.HistoryFile, checker.ResultsFile, "summary.txt"} {
		if _, err := h.root.Stat(path.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false
		}
	}
	return true
}

// isRun reports whether dir, a store path, holds a history.
func (h *storeHandler) isRun(dir string) bool {
	fi, err := h.root.Stat(path.Join(dir, checker.HistoryFile))
	return err == nil && fi.Mode().IsRegular()
}

// storedRun is one line of the list.
type storedRun struct {
	Dir      string // its path in the store
	Scenario string
	Seed     string
	Mode     string
	Status   string // PASS, FAIL, INTERRUPTED, from summary.txt
	Verdict  string // caught, held, violated, unknown, not caught
	Started  time.Time
	Files    []fileLink
}

type fileLink struct{ Name, Href string }

// maxDepth bounds how deep the list looks for run directories: the
// store's are Group/name/run, three down.
const maxDepth = 6

// runs lists the store's runs, newest first.
func (h *storeHandler) runs() []storedRun {
	var out []storedRun
	fsys := h.root.FS()
	fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil // unreadable: left out
		}
		if strings.Count(p, "/") >= maxDepth {
			return fs.SkipDir
		}
		if fi, err := fs.Stat(fsys, path.Join(p, checker.HistoryFile)); err != nil || !fi.Mode().IsRegular() || p == "." {
			return nil
		}
		out = append(out, h.describe(fsys, p))
		return fs.SkipDir
	})
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.After(out[j].Started)
		}
		return out[i].Dir > out[j].Dir
	})
	return out
}

func (h *storeHandler) describe(fsys fs.FS, dir string) storedRun {
	r := storedRun{Dir: dir, Scenario: dir, Status: "-", Verdict: "-"}
	var info struct {
		Scenario string    `json:"scenario"`
		Seed     int64     `json:"seed"`
		Mode     string    `json:"mode"`
		Started  time.Time `json:"started"`
	}
	if b, err := fs.ReadFile(fsys, path.Join(dir, checker.RunFile)); err == nil && json.Unmarshal(b, &info) == nil && info.Scenario != "" {
		r.Scenario, r.Seed, r.Mode, r.Started = info.Scenario, fmt.Sprint(info.Seed), info.Mode, info.Started
	} else if fi, err := fs.Stat(fsys, path.Join(dir, checker.HistoryFile)); err == nil {
		r.Started = fi.ModTime()
	}
	if b, err := fs.ReadFile(fsys, path.Join(dir, "summary.txt")); err == nil {
		r.Status, r.Verdict = readBlock(b)
	} else if b, err := fs.ReadFile(fsys, path.Join(dir, checker.ResultsFile)); err == nil {
		var res struct {
			Valid checker.Valid `json:"valid"`
		}
		if json.Unmarshal(b, &res) == nil {
			r.Verdict = string(res.Valid.Word())
		}
	}
	r.Files = append(r.Files, fileLink{"report", "/files/" + dir + "/" + report.File})
	for _, f := range []string{"summary.txt", checker.HistoryFile} {
		if fi, err := fs.Stat(fsys, path.Join(dir, f)); err == nil && fi.Mode().IsRegular() {
			r.Files = append(r.Files, fileLink{strings.TrimSuffix(strings.TrimSuffix(f, ".txt"), ".jsonl"), "/files/" + dir + "/" + f})
		}
	}
	if views, err := fs.Glob(fsys, path.Join(globEscape(dir), "linearizable-*.html")); err == nil {
		sort.Strings(views)
		for _, v := range views {
			r.Files = append(r.Files, fileLink{"porcupine", "/files/" + v})
		}
	}
	return r
}

// globEscape quotes the metacharacters of a directory name for fs.Glob.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// readBlock takes a run's status (PASS, FAIL, INTERRUPTED) and verdict
// word (caught, not caught, held, violated, unknown) from its block.
func readBlock(b []byte) (string, string) {
	status, verdict := "-", "-"
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "=== "); ok && status == "-" {
			status, _, _ = strings.Cut(rest, " ")
		}
		if rest, ok := strings.CutPrefix(line, "verdict "); ok && verdict == "-" {
			rest = strings.TrimSpace(rest)
			switch {
			case strings.HasPrefix(rest, "CAUGHT"):
				verdict = "caught"
			case strings.HasPrefix(rest, "NOT CAUGHT"):
				verdict = "not caught"
			default:
				verdict, _, _ = strings.Cut(rest, " ")
			}
		}
	}
	return status, verdict
}

// serveClass is the colour of a status or verdict word in the list.
func serveClass(s string) string {
	switch s {
	case "PASS", "held", "caught":
		return "good"
	case "FAIL", "violated", "not caught":
		return "bad"
	case "INTERRUPTED", "unknown":
		return "warn"
	}
	return "none"
}

// verdictFilters are the values the verdict filter takes: a status or a
// verdict word.
var verdictFilters = []string{"PASS", "FAIL", "INTERRUPTED", "caught", "not caught", "held", "violated", "unknown"}

type indexPage struct {
	Store            string
	Runs             []storedRun
	Total            int
	Scenario         string
	Verdict          string
	Scenarios        []string // groups and scenarios present, for the filter
	Verdicts         []string
	ScenarioFiltered bool
}

func (h *storeHandler) index(w http.ResponseWriter, r *http.Request) {
	all := h.runs()
	q := r.URL.Query()
	p := indexPage{Store: h.name, Total: len(all), Scenario: q.Get("scenario"), Verdict: q.Get("verdict"), Verdicts: verdictFilters}
	seen := map[string]bool{}
	for _, run := range all {
		if g, _, ok := strings.Cut(run.Scenario, "/"); ok && !seen[g+"/"] {
			seen[g+"/"] = true
			p.Scenarios = append(p.Scenarios, g+"/")
		}
		if !seen[run.Scenario] {
			seen[run.Scenario] = true
			p.Scenarios = append(p.Scenarios, run.Scenario)
		}
		if !matchScenario(run.Scenario, p.Scenario) || (p.Verdict != "" && run.Status != p.Verdict && run.Verdict != p.Verdict) {
			continue
		}
		p.Runs = append(p.Runs, run)
	}
	sort.Strings(p.Scenarios)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := indexTemplate.Execute(w, p); err != nil {
		fmt.Fprintf(w, "<p>error: %s</p>", template.HTMLEscapeString(err.Error()))
	}
}

// matchScenario: a scenario's name, a group ending in "/", or "" for all.
func matchScenario(name, filter string) bool {
	if strings.HasSuffix(filter, "/") {
		return strings.HasPrefix(name, filter)
	}
	return filter == "" || name == filter
}

var indexTemplate = template.Must(template.New("index").Funcs(template.FuncMap{"class": serveClass}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>seqlab: runs in {{.Store}}</title>
<style>
body { font-family: "Liberation Sans", Arial, Helvetica, sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.4em; }
table { border-collapse: collapse; width: 100%; font-size: .92em; }
th, td { text-align: left; padding: .25em .5em; border-bottom: 1px solid #eee; }
th { color: #555; font-weight: normal; border-bottom: 1px solid #ccc; }
.good { color: #2e7d32; font-weight: bold; } .bad { color: #c62828; font-weight: bold; } .warn { color: #b26a00; font-weight: bold; } .none { color: #777; }
form { margin: .5em 0 1em; } select { margin-right: 1em; }
td.files a { margin-right: .6em; }
</style>
</head>
<body>
<h1>Runs in {{.Store}}</h1>
<form method="get" action="/">
<label>scenario <select name="scenario"><option value="">all</option>{{range .Scenarios}}<option{{if eq . $.Scenario}} selected{{end}}>{{.}}</option>{{end}}</select></label>
<label>verdict <select name="verdict"><option value="">all</option>{{range .Verdicts}}<option{{if eq . $.Verdict}} selected{{end}}>{{.}}</option>{{end}}</select></label>
<button type="submit">filter</button>
</form>
<p id="count">{{len .Runs}} of {{.Total}} runs, newest first.</p>
<table id="runs">
<tr><th>started (UTC)</th><th>scenario</th><th>seed</th><th>mode</th><th>status</th><th>verdict</th><th>files</th></tr>
{{range .Runs}}<tr class="run" data-dir="{{.Dir}}"><td>{{if not .Started.IsZero}}{{.Started.UTC.Format "2006-01-02 15:04:05"}}{{end}}</td><td>{{.Scenario}}</td><td>{{.Seed}}</td><td>{{.Mode}}</td><td class="status {{class .Status}}">{{.Status}}</td><td class="verdict {{class .Verdict}}">{{.Verdict}}</td><td class="files">{{range .Files}}<a href="{{.Href}}">{{.Name}}</a>{{end}}</td></tr>
{{end}}</table>
</body>
</html>
`))
