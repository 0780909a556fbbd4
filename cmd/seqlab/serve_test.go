package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seqlab/seqlab/report"
	"github.com/seqlab/seqlab/scenarios"
)

// testStore is a store with two short sim runs, a planted bug caught
// and a run with composed faults, each as seqlab run leaves it.
type testStore struct {
	dir        string
	bug, mixed string // their run directories, relative to dir, slash-separated
}

func newTestStore(t *testing.T) testStore {
	t.Helper()
	s := testStore{dir: t.TempDir()}
	for _, c := range []struct {
		name  string
		limit time.Duration
		conc  int
		into  *string
	}{{"Bug/crash-all-in-memory", 7 * time.Second, 2, &s.bug}, {"Mixed/at-once-n5", 20 * time.Second, 1, &s.mixed}} {
		sc, err := scenarios.Find(c.name)
		require.NoError(t, err)
		rep, err := scenarios.RunSim(sc, scenarios.Options{Seed: 1, HasSeed: true, TimeLimit: c.limit, Concurrency: c.conc, Store: s.dir, Out: io.Discard})
		require.NoError(t, err)
		rel, err := filepath.Rel(s.dir, rep.Dir)
		require.NoError(t, err)
		*c.into = filepath.ToSlash(rel)
	}
	return s
}

// startServe serves store on a free port until the test ends; it
// returns the base URL.
func startServe(t *testing.T, store string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, store) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, url string) (int, string, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// rawGet sends path as it stands, with no client cleaning it first.
func rawGet(t *testing.T, base, path string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// TestServe: the list, newest first, with its filters; each run's
// report, summary, history and porcupine view; a report made in memory
// for a run without one; and nothing in the store changed.
func TestServe(t *testing.T) {
	s := newTestStore(t)
	// An older run, from before reports, and a bare history.
	old := filepath.Join(s.dir, filepath.FromSlash(s.bug))
	require.NoError(t, os.Remove(filepath.Join(old, report.File)))
	require.NoError(t, os.MkdirAll(filepath.Join(s.dir, "elsewhere", "h1"), 0o755))
	h, err := os.ReadFile(filepath.Join("..", "..", "checker", "testdata", "overlap.jsonl"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(s.dir, "elsewhere", "h1", "history.jsonl"), h, 0o644))
	long := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	require.NoError(t, os.Chtimes(filepath.Join(s.dir, "elsewhere", "h1", "history.jsonl"), long, long))
	before := sums(t, s.dir)
	base := startServe(t, s.dir)

	code, ctype, page := get(t, base+"/")
	require.Equal(t, 200, code)
	assert.Equal(t, "text/html; charset=utf-8", ctype)
	rows := regexp.MustCompile(`<tr class="run" data-dir="([^"]+)">`).FindAllStringSubmatch(page, -1)
	require.Len(t, rows, 3, page)
	assert.Equal(t, s.mixed, rows[0][1], "newest first")
	assert.Equal(t, s.bug, rows[1][1])
	assert.Equal(t, "elsewhere/h1", rows[2][1], "a history without run.json is dated by its file")
	assert.Contains(t, page, `<td>Bug/crash-all-in-memory</td><td>1</td><td>sim</td><td class="status good">PASS</td><td class="verdict good">caught</td>`)
	assert.Contains(t, page, `<td>Mixed/at-once-n5</td><td>1</td><td>sim</td><td class="status good">PASS</td><td class="verdict good">held</td>`)

	for _, c := range []struct {
		query string
		want  []string
	}{
		{"?scenario=Bug/", []string{s.bug}},
		{"?scenario=Mixed/at-once-n5", []string{s.mixed}},
		{"?scenario=Mixed/at-once", nil},
		{"?verdict=caught", []string{s.bug}},
		{"?verdict=held", []string{s.mixed}},
		{"?verdict=PASS", []string{s.mixed, s.bug}},
		{"?verdict=FAIL", nil},
		{"?scenario=Bug/&verdict=held", nil},
	} {
		_, _, page := get(t, base+"/"+c.query)
		var got []string
		for _, m := range regexp.MustCompile(`<tr class="run" data-dir="([^"]+)">`).FindAllStringSubmatch(page, -1) {
			got = append(got, m[1])
		}
		assert.Equal(t, c.want, got, c.query)
		assert.Contains(t, page, fmt.Sprintf(`<p id="count">%d of 3 runs`, len(c.want)), c.query)
	}

	code, ctype, body := get(t, base+"/files/"+s.mixed+"/report.html")
	assert.Equal(t, 200, code)
	assert.Equal(t, "text/html; charset=utf-8", ctype)
	assert.Contains(t, body, "<title>seqlab: Mixed/at-once-n5, seed 1</title>")
	code, _, body = get(t, base+"/files/"+s.bug+"/report.html")
	assert.Equal(t, 200, code, "a run without report.html gets one, made in memory")
	assert.Contains(t, body, "<title>seqlab: Bug/crash-all-in-memory, seed 1</title>")
	code, _, body = get(t, base+"/files/elsewhere/h1/report.html")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, "no results.json: the report checked the history itself")
	code, ctype, body = get(t, base+"/files/"+s.bug+"/summary.txt")
	assert.Equal(t, 200, code)
	assert.Equal(t, "text/plain; charset=utf-8", ctype, "shown, not downloaded")
	assert.Contains(t, body, "=== PASS Bug/crash-all-in-memory")
	code, _, body = get(t, base+"/files/"+s.bug+"/history.jsonl")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, `"f":"start-crash-all"`)
	require.Contains(t, page, s.bug+"/linearizable-default.html", "the list links porcupine's view")
	code, _, body = get(t, base+"/files/"+s.bug+"/linearizable-default.html")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, "<title>porcupine: sequence default of Bug/crash-all-in-memory, seed 1 (sim mode)</title>")

	assert.Equal(t, before, sums(t, s.dir), "serving changes nothing in the store")
}

// TestServeOnlyTheStore: every path that is not a file of the store, or
// leads out of it, is a 404; anything but GET and HEAD is refused.
func TestServeOnlyTheStore(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret.txt")
	require.NoError(t, os.WriteFile(secret, []byte("secret"), 0o644))
	store := filepath.Join(t.TempDir(), "store")
	run := filepath.Join(store, "A", "b", "r1")
	require.NoError(t, os.MkdirAll(run, 0o755))
	h, err := os.ReadFile(filepath.Join("..", "..", "checker", "testdata", "valid.jsonl"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(run, "history.jsonl"), h, 0o644))
	// Links out of the store: a file, a directory, and a run whose
	// results are a file outside.
	require.NoError(t, os.Symlink(secret, filepath.Join(store, "link.txt")))
	require.NoError(t, os.Symlink(outside, filepath.Join(store, "out")))
	leaky := filepath.Join(store, "A", "b", "leaky")
	require.NoError(t, os.MkdirAll(leaky, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(leaky, "history.jsonl"), h, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "results.json"), []byte(`{"checks":{}}`), 0o644))
	require.NoError(t, os.Symlink(filepath.Join(outside, "results.json"), filepath.Join(leaky, "results.json")))
	base := startServe(t, store)

	code, _, _ := get(t, base+"/files/A/b/r1/history.jsonl")
	require.Equal(t, 200, code, "a file of the store")
	for _, p := range []string{
		"/files/../../../../../../etc/passwd",
		"/files/A/../../" + filepath.Base(filepath.Dir(store)) + "/store/A/b/r1/history.jsonl",
		"/files/%2e%2e/%2e%2e/etc/passwd",
		"/files/..%2f..%2fetc%2fpasswd",
		"/files/A/b/r1/../r1/history.jsonl",
		"/files/./A/b/r1/history.jsonl",
		"/files//etc/passwd",
		"/files/" + strings.TrimPrefix(secret, "/"),
		"/files/link.txt",
		"/files/out/secret.txt",
		"/files/A/b/leaky/report.html",
		"/files/A/b/leaky/results.json",
		"/files/A",
		"/files/A/b/r1",
		"/files/",
		"/files/A/b/r1/nothing.txt",
		"/files/A/b/r1/%00",
		"/files/A\\b\\r1\\history.jsonl",
		"/etc/passwd",
		"/../etc/passwd",
	} {
		assert.Equal(t, http.StatusNotFound, rawGet(t, base, p), p)
	}
	resp, err := http.Post(base+"/", "text/plain", strings.NewReader("x"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	_, _, page := get(t, base+"/")
	assert.NotContains(t, page, "secret")
	http.DefaultClient.CloseIdleConnections()
}

// TestServeStops: cancelling serve's context stops it promptly, with an
// idle connection open and a client that sent half a request, and
// leaves no goroutine behind.
func TestServeStops(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	store := newTestStore(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, store.dir) }()
	base := "http://" + ln.Addr().String()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(base + "/")
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close() // the connection stays open, idle
	// A request whose headers never end.
	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	fmt.Fprintf(conn, "GET /files/%s/history.jsonl HTTP/1.1\r\nHost: x\r\n", store.bug)
	time.Sleep(50 * time.Millisecond) // for the server to take it

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop within 10s of its context ending")
	}
	assert.Less(t, time.Since(start), shutdownGrace+time.Second)
	c.CloseIdleConnections()
	_, err = c.Get(base + "/")
	assert.Error(t, err, "nothing listens after it stopped")
}

// TestServeSignal: a real SIGINT stops seqlab serve cleanly, exit 0.
func TestServeSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the command as a process")
	}
	store := t.TempDir()
	cmd := exec.Command(os.Args[0], "serve", store, "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "SEQLAB_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	lines := bufio.NewScanner(stdout)
	require.True(t, lines.Scan(), "the first line says where it serves")
	m := regexp.MustCompile(`^serving   .* at (http://127\.0\.0\.1:\d+/) \(Ctrl-C stops\)$`).FindStringSubmatch(lines.Text())
	if m == nil {
		_ = cmd.Process.Kill()
		t.Fatalf("first line %q", lines.Text())
	}
	code, _, page := get(t, m[1])
	assert.Equal(t, 200, code)
	assert.Contains(t, page, "0 of 0 runs")
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	var rest []string
	for lines.Scan() {
		rest = append(rest, lines.Text())
	}
	require.NoError(t, cmd.Wait(), "stderr: %s", stderr.String())
	assert.Equal(t, []string{"stopped"}, rest)
	assert.Contains(t, stderr.String(), "seqlab: interrupt: stopping")
}

func TestServeBadArgs(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(f, nil, 0o644))
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"serve", filepath.Join(t.TempDir(), "none")}, "no such file or directory"},
		{[]string{"serve", f}, "is not a directory"},
		{[]string{"serve", t.TempDir(), "--addr", "nonsense"}, "missing port"},
		{[]string{"serve", t.TempDir(), "extra"}, "unexpected arguments"},
		{[]string{"serve", "--port", "1"}, "flag provided but not defined"},
	} {
		code, _, errOut := seqlab(c.args...)
		assert.Equal(t, 2, code, "%q", c.args)
		assert.Contains(t, errOut, c.msg, "%q", c.args)
	}
}
