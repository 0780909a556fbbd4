package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/scenarios"
)

func init() { commands["check"] = checkCmd }

func checkCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seqlab check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the results as JSON")
	promise := fs.String("promise", "", "comma-separated properties the system promises: "+strings.Join(checker.Properties, ",")+
		" (default: the run's scenario's, or "+strings.Join(checker.DefaultPromises, ",")+")")
	timeout := fs.Duration("timeout", time.Minute, "time limit for the checks; past it a check is unknown")
	out := fs.String("out", "", "write the results as JSON to this new file, and porcupine's view of a violation beside it (default: write nothing)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: seqlab check PATH [--json] [--promise LIST] [--timeout D] [--out FILE]")
		fmt.Fprintln(stderr, "       seqlab check FILE.scn   (reads a scenario script, runs nothing, and says whether the lab can run it)")
		fmt.Fprintln(stderr, "Checks the history again and prints the verdict. It writes nothing, unless --out names a new file:")
		fmt.Fprintln(stderr, "what a run recorded stays as it was.")
		fs.PrintDefaults()
	}
	path, rest := splitPositional(args)
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	if path == "" && fs.NArg() == 1 {
		path = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "seqlab check: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if path == "" {
		fs.Usage()
		return 2
	}
	if scenarios.IsScript(path) {
		return checkScript(path, stdout, stderr)
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "seqlab check: --timeout must be positive, got %v\n", *timeout)
		return 2
	}
	var promises []string
	if *promise != "" {
		for _, p := range strings.Split(*promise, ",") {
			p = strings.TrimSpace(p)
			if !slices.Contains(checker.Properties, p) {
				fmt.Fprintf(stderr, "seqlab check: unknown property %q in --promise (known: %s)\n", p, strings.Join(checker.Properties, ","))
				return 2
			}
			promises = append(promises, p)
		}
	}
	opts := checker.Options{Promises: promises, Timeout: *timeout}
	if *out != "" {
		// Refuse before checking, and never write into what a run
		// recorded.
		if _, err := os.Lstat(*out); err == nil {
			fmt.Fprintf(stderr, "seqlab check: --out %s exists: name a new file\n", *out)
			return 2
		}
		stem := strings.TrimSuffix(filepath.Base(*out), filepath.Ext(*out))
		opts.VisualizeDir, opts.VisualizePrefix = filepath.Dir(*out), stem+"."
	}
	res, err := checker.CheckDir(path, opts)
	if err != nil {
		fmt.Fprintf(stderr, "seqlab check: %v\n", err)
		return 2
	}
	if *out != "" {
		if err := checker.WriteResults(*out, res); err != nil {
			fmt.Fprintf(stderr, "seqlab check: %v\n", err)
			return 2
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "seqlab check: %v\n", err)
			return 2
		}
	} else {
		fmt.Fprint(stdout, res.Summary())
		switch {
		case *out != "":
			fmt.Fprintf(stdout, "%-27s results in %s\n", "written", *out)
		case res.Checks[checker.Linearizable].Valid == checker.ValidFalse:
			fmt.Fprintf(stdout, "%-27s --out FILE writes the results, and porcupine's view of the violation beside FILE\n", "")
		}
	}
	return exitCode(res.Valid)
}

func exitCode(v checker.Valid) int {
	switch v {
	case checker.ValidTrue:
		return 0
	case checker.ValidFalse:
		return 1
	default:
		return 2
	}
}
