package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/scenarios"
	"github.com/seqlab/seqlab/scenarios/script"
)

// loadScript reads the script a command names (FILE.scn). A bad script
// is reported whole, each error as FILE:LINE: message, and nothing runs.
func loadScript(cmd, path string, stderr io.Writer) (scenarios.Scenario, bool) {
	sc, err := scenarios.LoadScript(path)
	if err == nil {
		return sc, true
	}
	var es script.Errors
	if errors.As(err, &es) {
		for _, e := range es {
			fmt.Fprintln(stderr, e)
		}
		fmt.Fprintf(stderr, "seqlab %s: %s is not a script the lab can run (%d %s); nothing ran\n", cmd, path, len(es), plural(len(es), "error"))
		return sc, false
	}
	fmt.Fprintf(stderr, "seqlab %s: %v\n", cmd, err)
	return sc, false
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}

// runScenario is the scenario a run directory ran: the script it keeps,
// or the catalogue's.
func runScenario(dir, name string) (scenarios.Scenario, error) {
	if _, err := os.Stat(filepath.Join(dir, scenarios.ScriptFile)); err == nil {
		return scenarios.RunScenario(dir, name)
	}
	return findOne(name)
}

// checkScript reads a script without running it: whether the lab can
// run it, and what it would run.
func checkScript(path string, stdout, stderr io.Writer) int {
	sc, ok := loadScript("check", path, stderr)
	if !ok {
		return 2
	}
	var modes []string
	for _, m := range []string{scenarios.ModeGRPC, scenarios.ModeSim, scenarios.ModeProcess} {
		if sc.Supports(m) {
			modes = append(modes, m)
		}
	}
	fmt.Fprintf(stdout, "%s: scenario %s, a script the lab can run\n", path, sc.Name)
	fmt.Fprintf(stdout, "systems   %s\n", strings.Join(sc.SystemNames(), ","))
	fmt.Fprintf(stdout, "modes     %s\n", strings.Join(modes, ","))
	fmt.Fprintf(stdout, "faults    %d timed, %d random windows, random schedule of %s\n", len(sc.Timeline), len(sc.Windows)+min(1, len(sc.Faults)),
		orNone(strings.Join(sc.Faults, ",")))
	if sc.Ops != nil {
		fmt.Fprintf(stdout, "ops       %d, spelt out\n", len(sc.Ops))
	}
	return 0
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
