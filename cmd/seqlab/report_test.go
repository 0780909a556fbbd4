package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/report"
)

// TestReport: every run directory has report.html; seqlab report writes
// the same bytes again from the recording, and changes nothing else.
func TestReport(t *testing.T) {
	store := newTestStore(t)
	for _, run := range []string{store.bug, store.mixed} {
		dir := filepath.Join(store.dir, filepath.FromSlash(run))
		written, err := os.ReadFile(filepath.Join(dir, report.File))
		require.NoError(t, err, "the run wrote its report")
		before := sums(t, dir)
		require.NoError(t, os.Remove(filepath.Join(dir, report.File)))
		code, out, errOut := seqlab("report", dir)
		require.Equal(t, 0, code, out+errOut)
		assert.Regexp(t, `^report    .*report\.html \(\d+ KB in \d+m?s\)\n$`, out)
		again, err := os.ReadFile(filepath.Join(dir, report.File))
		require.NoError(t, err)
		assert.Equal(t, string(written), string(again), "the same recording gives the same report")
		assert.Equal(t, before, sums(t, dir), "seqlab report writes report.html, and nothing else")
	}
}

func TestReportBadInput(t *testing.T) {
	empty := t.TempDir()
	bad := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bad, "history.jsonl"), []byte("{\"index\":0\n{}\n"), 0o644))
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"report"}, "usage: seqlab report RUN_DIR"},
		{[]string{"report", filepath.Join(empty, "none")}, "no such file or directory"},
		{[]string{"report", empty}, "history.jsonl: no such file or directory"},
		{[]string{"report", bad}, "malformed lines, first: line 1"},
		{[]string{"report", "--x"}, "flag provided but not defined"},
	} {
		code, out, errOut := seqlab(c.args...)
		assert.Equal(t, 2, code, "%q", c.args)
		assert.Empty(t, out, "%q", c.args)
		assert.Contains(t, errOut, c.msg, "%q", c.args)
	}
	assert.Empty(t, dirNames(t, empty), "nothing written")
	assert.Equal(t, []string{"history.jsonl"}, dirNames(t, bad), "nothing written")
}

// TestReadmeReports follows the README's "Reports" as a reader would,
// in a fresh directory: the commands of its marked block, one by one,
// with the run directory the first prints in place of RUN_DIR, and the
// server on a free port instead of 8080 (which may be taken). The
// screenshot it shows must be there, and small.
func TestReadmeReports(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	sec := readmeSection(string(readme), "### Reports")
	require.NotEmpty(t, sec, `README.md has a section "### Reports"`)
	img := regexp.MustCompile(`!\[[^\]]*\]\(([^)]+\.png)\)`).FindStringSubmatch(sec)
	require.NotNil(t, img, "the section shows a screenshot")
	fi, err := os.Stat(filepath.Join("..", "..", filepath.FromSlash(img[1])))
	require.NoError(t, err, "the screenshot is committed; go test ./cmd/seqlab -run TestBrowser -readme-png writes it")
	assert.Less(t, fi.Size(), int64(150<<10), "the screenshot stays small")

	_, block, ok := strings.Cut(sec, "<!-- walkthrough: reports -->\n```\n")
	require.True(t, ok, "the section marks its commands with <!-- walkthrough: reports -->")
	block, _, _ = strings.Cut(block, "```")
	var cmds [][]string
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		require.Equal(t, "seqlab", f[0], "each line of the block is a seqlab command: %q", line)
		cmds = append(cmds, f[1:])
	}
	require.Len(t, cmds, 3, "run, report, serve")
	require.Equal(t, "run", cmds[0][0])
	require.Equal(t, "report", cmds[1][0])
	require.Equal(t, "serve", cmds[2][0])

	inTest(t)
	t.Chdir(t.TempDir())
	code, out, errOut := seqlab(cmds[0]...)
	require.Equal(t, 0, code, out+errOut)
	m := regexp.MustCompile(`(?m)^run dir   (\S+)$`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	dir := m[1]
	assert.FileExists(t, filepath.Join(dir, report.File), "the run wrote its report")
	assert.Contains(t, out, "CAUGHT", "the README shows a planted bug's report")

	args := append([]string(nil), cmds[1]...)
	for i, a := range args {
		if a == "RUN_DIR" {
			args[i] = dir
		}
	}
	code, out, errOut = seqlab(args...)
	require.Equal(t, 0, code, out+errOut)
	assert.Contains(t, out, filepath.Join(dir, report.File))

	// seqlab serve, until the test stops it as Ctrl-C would.
	ctx, cancel := context.WithCancel(context.Background())
	old := notify
	notify = func(io.Writer) (context.Context, func()) { return ctx, cancel }
	t.Cleanup(func() { notify = old })
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		code := run(append(cmds[2], "--addr", "127.0.0.1:0"), pw, io.Discard)
		pw.Close()
		done <- code
	}()
	lines := bufio.NewScanner(pr)
	require.True(t, lines.Scan())
	addr := regexp.MustCompile(`http://\S+/`).FindString(lines.Text())
	require.NotEmpty(t, addr, lines.Text())
	code, _, page := get(t, addr)
	assert.Equal(t, 200, code)
	assert.Contains(t, page, "Bug/crash-all-in-memory")
	code, _, page = get(t, addr+"files/"+strings.TrimPrefix(filepath.ToSlash(dir), "store/")+"/report.html")
	assert.Equal(t, 200, code)
	assert.Contains(t, page, "CAUGHT")
	cancel()
	for lines.Scan() {
	}
	select {
	case code := <-done:
		assert.Equal(t, 0, code)
	case <-time.After(10 * time.Second):
		t.Fatal("seqlab serve did not stop")
	}
}

// readmeSection is the README's section under heading, to the next
// heading of the same or a higher level.
func readmeSection(readme, heading string) string {
	i := strings.Index(readme, "\n"+heading+"\n")
	if i < 0 {
		return ""
	}
	rest := readme[i+1+len(heading):]
	level := strings.Repeat("#", strings.Count(heading, "#"))
	for _, l := range []string{"\n" + level + " ", "\n" + level[:len(level)-1] + " "} {
		if j := strings.Index(rest, l); j >= 0 {
			rest = rest[:j]
		}
	}
	return rest
}
