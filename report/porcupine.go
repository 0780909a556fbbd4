package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"strings"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/checker"
)

// porcupineTitle is the title porcupine gives every view it writes.
const porcupineTitle = "<title>Porcupine</title>"

// IsView reports whether name is the file name of porcupine's view of a
// sequence, as the checker writes it into a run directory.
func IsView(name string) bool {
	return strings.HasPrefix(name, "linearizable-") && strings.HasSuffix(name, ".html") && !strings.ContainsAny(name, `/\`)
}

// View returns porcupine's view name in dir with a title that names the
// run's scenario and seed (from run.json) and the sequence, in place of
// porcupine's own. It writes nothing.
func View(dir, name string) ([]byte, error) {
	if !IsView(name) {
		return nil, errors.Errorf("%s is not a view of porcupine's", name)
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil, err
	}
	return retitle(b, viewTitle(dir, name)), nil
}

// TitleViews gives each of porcupine's views in dir the title View gives
// it, rewriting the files whose title is still porcupine's. The runs
// that write the views call it; seqlab report does not, as a report
// writes only report.html.
func TitleViews(dir string) error {
	names, err := filepath.Glob(filepath.Join(dir, "linearizable-*.html"))
	if err != nil {
		return errors.Wrap(err, "find porcupine's views")
	}
	for _, path := range names {
		b, err := os.ReadFile(path)
		if err != nil {
			return errors.Wrap(err, "title porcupine's view")
		}
		if !bytes.Contains(b, []byte(porcupineTitle)) {
			continue
		}
		if err := writeFile(path, retitle(b, viewTitle(dir, filepath.Base(path)))); err != nil {
			return err
		}
	}
	return nil
}

// viewTitle names the view of one sequence of the run in dir.
func viewTitle(dir, name string) string {
	seq := strings.TrimSuffix(strings.TrimPrefix(name, "linearizable-"), ".html")
	var info struct {
		Scenario string `json:"scenario"`
		Seed     int64  `json:"seed"`
		Mode     string `json:"mode"`
	}
	b, err := os.ReadFile(filepath.Join(dir, checker.RunFile))
	if err != nil || json.Unmarshal(b, &info) != nil || info.Scenario == "" {
		return fmt.Sprintf("porcupine: sequence %s of %s", seq, filepath.Base(filepath.Clean(dir)))
	}
	return fmt.Sprintf("porcupine: sequence %s of %s, seed %d (%s mode)", seq, info.Scenario, info.Seed, info.Mode)
}

// retitle replaces porcupine's title; a page without it is left alone.
func retitle(page []byte, title string) []byte {
	return bytes.Replace(page, []byte(porcupineTitle), []byte("<title>"+html.EscapeString(title)+"</title>"), 1)
}
