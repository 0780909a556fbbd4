package readmetest

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pkg/errors"
)

// A step of a walkthrough: a snippet to apply to a file, or (file "")
// commands to run.
type step struct {
	file   string // a path in the module, slash-separated
	after  string // the line to insert the snippet after; "" for a new file
	body   string // the fenced block, verbatim
	marker string // for messages
}

// A marker names what to do with the fenced block right below it:
//
//	<!-- walkthrough: nemesis/cutlast.go new -->
//	<!-- walkthrough: nemesis/nemesis.go after "var Registry = map[string]func() Fault{" -->
//	<!-- walkthrough: run -->
var marker = regexp.MustCompile(`^<!-- walkthrough: (?:run|(\S+) (?:new|after "(.*)")) -->$`)

// TestAddingAFault follows the README's "Adding a fault" on a copy of the
// module: it writes and inserts the section's snippets exactly as they
// stand, then runs the section's commands, each of which must succeed
// (and gofmt -l must list nothing).
func TestAddingAFault(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and tests a copy of the module")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go on PATH: %v", err)
	}
	root := moduleRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	steps, err := parse(section(string(readme), "### Adding a fault"))
	if err != nil {
		t.Fatalf("README.md, Adding a fault: %v", err)
	}
	var edits, runs int
	for _, s := range steps {
		if s.file == "" {
			runs++
		} else {
			edits++
		}
	}
	if edits < 4 || runs == 0 {
		t.Fatalf("README.md, Adding a fault: %d snippets and %d command blocks marked; want the fault, its Registry line, its test case, its scenario, and the commands", edits, runs)
	}

	dir := t.TempDir()
	start := time.Now()
	if err := copyModule(root, dir); err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if s.file == "" {
			continue
		}
		if err := apply(dir, s); err != nil {
			t.Fatalf("README.md, %s: %v", s.marker, err)
		}
	}
	t.Logf("copied the module and applied %d snippets in %v", edits, time.Since(start).Round(time.Millisecond))

	env := append(os.Environ(), "GOWORK=off", "SEQLAB_TTY=0") // no run blocks on the terminal
	for _, s := range steps {
		if s.file != "" {
			continue
		}
		for _, line := range strings.Split(s.body, "\n") {
			cmd := command(line)
			if len(cmd) == 0 {
				continue
			}
			path, err := tool(cmd[0], goTool)
			if err != nil {
				t.Fatalf("README.md: %s: %v", line, err)
			}
			start := time.Now()
			c := exec.Command(path, cmd[1:]...)
			c.Dir, c.Env = dir, env
			out, err := c.CombinedOutput()
			took := time.Since(start).Round(time.Millisecond)
			switch {
			case err != nil:
				t.Fatalf("README.md: `%s` failed after %v: %v\n%s", strings.Join(cmd, " "), took, err, out)
			case cmd[0] == "gofmt" && len(bytes.TrimSpace(out)) > 0:
				t.Fatalf("README.md: `%s` lists unformatted files:\n%s", strings.Join(cmd, " "), out)
			case bytes.Contains(out, []byte("no tests to run")):
				t.Fatalf("README.md: `%s` runs no test: does -run name the snippet's scenario?\n%s", strings.Join(cmd, " "), out)
			}
			t.Logf("%s: ok in %v", strings.Join(cmd, " "), took)
		}
	}
}

// moduleRoot is the directory above this package that holds go.mod.
func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = up
	}
}

// section returns the README's section under heading, up to the next
// heading of its level or above; lines in fenced blocks are no headings.
func section(readme, heading string) string {
	level := strings.Index(heading, " ")
	var out []string
	in, fenced := false, false
	for _, l := range strings.Split(readme, "\n") {
		if strings.HasPrefix(l, "```") {
			fenced = !fenced
		}
		if !fenced {
			hashes := len(l) - len(strings.TrimLeft(l, "#"))
			switch {
			case l == heading:
				in = true
				continue
			case in && hashes > 0 && hashes <= level && strings.HasPrefix(l[hashes:], " "):
				return strings.Join(out, "\n")
			}
		}
		if in {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// parse returns the marked steps of a section, in order. Each marker
// must be followed, after blank lines at most, by a fenced block.
func parse(sec string) ([]step, error) {
	if sec == "" {
		return nil, errors.New("no such section")
	}
	lines := strings.Split(sec, "\n")
	var steps []step
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(line, "<!-- walkthrough") {
			continue
		}
		m := marker.FindStringSubmatch(line)
		if m == nil {
			return nil, errors.Errorf("bad marker %s", line)
		}
		j := i + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			j++
		}
		if j == len(lines) || !strings.HasPrefix(lines[j], "```") {
			return nil, errors.Errorf("%s: no fenced block right below", line)
		}
		k := j + 1
		for k < len(lines) && !strings.HasPrefix(lines[k], "```") {
			k++
		}
		if k == len(lines) {
			return nil, errors.Errorf("%s: the fenced block does not end", line)
		}
		body := strings.Join(lines[j+1:k], "\n") + "\n"
		steps = append(steps, step{file: m[1], after: m[2], body: body, marker: line})
		i = k
	}
	return steps, nil
}

// apply writes a new file, or inserts a snippet after the one line of the
// file that reads s.after (spaces around it aside).
func apply(dir string, s step) error {
	path := filepath.Join(dir, filepath.FromSlash(s.file))
	if s.after == "" {
		if _, err := os.Stat(path); err == nil {
			return errors.Errorf("%s exists already", s.file)
		}
		return os.WriteFile(path, []byte(s.body), 0o644)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.SplitAfter(string(src), "\n")
	at := -1
	for i, l := range lines {
		if strings.TrimSpace(l) == s.after {
			if at >= 0 {
				return errors.Errorf("%s has the line %q more than once", s.file, s.after)
			}
			at = i
		}
	}
	if at < 0 {
		return errors.Errorf("%s has no line %q", s.file, s.after)
	}
	out := strings.Join(lines[:at+1], "") + s.body + strings.Join(lines[at+1:], "")
	return os.WriteFile(path, []byte(out), 0o644)
}

// command splits a line of a command block into words, without its
// trailing "# comment".
func command(line string) []string {
	if i := strings.Index(line, " #"); i >= 0 {
		line = line[:i]
	}
	if strings.HasPrefix(strings.TrimSpace(line), "#") {
		return nil
	}
	return strings.Fields(line)
}

// tool finds a command on PATH; gofmt also beside go, where a Go
// installation keeps it.
func tool(name, goTool string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil || name != "gofmt" {
		return p, err
	}
	p = filepath.Join(filepath.Dir(goTool), "gofmt")
	if _, statErr := os.Stat(p); statErr != nil {
		return "", err
	}
	return p, nil
}

// copyModule copies the module's files from root to dir, leaving out
// .git and run stores.
func copyModule(root, dir string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, rel)
		switch {
		case d.IsDir() && (d.Name() == ".git" || d.Name() == "store") && rel != ".":
			return filepath.SkipDir
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case !d.Type().IsRegular():
			return nil // symlinks and the like: none belongs to the module
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, info.Mode().Perm())
	})
}
