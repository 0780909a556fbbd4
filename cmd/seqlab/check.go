package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/seqlab/seqlab/checker"
)

func init() { commands["check"] = checkCmd }

// knownPromises are the properties --promise accepts.
var knownPromises = []string{"unique", "linearizable", "monotonic", "gap-free"}

func checkCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seqlab check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the results as JSON")
	promise := fs.String("promise", "", "comma-separated properties the system promises: "+strings.Join(knownPromises, ",")+
		" (default: the run's scenario's, or unique,linearizable,monotonic)")
	timeout := fs.Duration("timeout", time.Minute, "time limit for the checks; past it a check is unknown")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: seqlab check PATH [--json] [--promise LIST] [--timeout D]")
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
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "seqlab check: --timeout must be positive, got %v\n", *timeout)
		return 2
	}
	var promises []string
	if *promise != "" {
		for _, p := range strings.Split(*promise, ",") {
			p = strings.TrimSpace(p)
			if !contains(knownPromises, p) {
				fmt.Fprintf(stderr, "seqlab check: unknown property %q in --promise (known: %s)\n", p, strings.Join(knownPromises, ","))
				return 2
			}
			promises = append(promises, p)
		}
	}
	res, err := checker.CheckDir(path, checker.Options{Promises: promises, Timeout: *timeout})
	if err != nil {
		fmt.Fprintf(stderr, "seqlab check: %v\n", err)
		return 2
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

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}
