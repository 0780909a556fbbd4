package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seqlab/seqlab/scenarios"
)

func init() {
	commands["compare"] = func(args []string, stdout, stderr io.Writer) int {
		return bubble(func(t *testing.T) int { return compareCmd(t, args, stdout, stderr) })
	}
}

// compareCmd runs a scenario on each system over the same seeds and
// prints one table, a row per system; it writes the table as JSON too.
// Exit 0 when every system kept its promises on every seed (or a planted
// bug was caught), 1 otherwise, 2 on bad input.
func compareCmd(t *testing.T, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seqlab compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seeds := fs.String("seeds", "1-20", "seeds to run on each system, FROM-TO")
	mode := fs.String("mode", scenarios.ModeSim, "sim (the simulator) or grpc (in-process gRPC nodes over simnet)")
	systems := fs.String("systems", "", "comma-separated systems (default: every system the scenario applies to in the mode)")
	timeLimit := fs.Duration("time-limit", 0, "simulated length of each run (default: the scenario's)")
	store := fs.String("store", "store", "directory for the JSON table (under compare/) and the gRPC mode's run directories")
	jsonOut := fs.String("json", "", "write the JSON table to this file (default: STORE/compare/SCENARIO-MODE-SEEDS.json)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: seqlab compare SCENARIO [--seeds A-B] [--mode sim|grpc] [--systems LIST] [--time-limit D] [--store DIR] [--json FILE]")
		fs.PrintDefaults()
	}
	name, rest := splitPositional(args)
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	if name == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	from, to, err := seedRange(*seeds)
	if err != nil {
		fmt.Fprintf(stderr, "seqlab compare: bad --seeds %q: %v\n", *seeds, err)
		return 2
	}
	sc, err := findOne(name)
	if err != nil {
		fmt.Fprintf(stderr, "seqlab compare: %v\n", err)
		return 2
	}
	var names []string
	if *systems != "" {
		for _, s := range strings.Split(*systems, ",") {
			if _, err := scenarios.LookupSystem(strings.TrimSpace(s)); err != nil {
				fmt.Fprintf(stderr, "seqlab compare: --systems: %v\n", err)
				return 2
			}
			names = append(names, strings.TrimSpace(s))
		}
	}
	ctx, release := notify(stderr)
	defer release()
	started := time.Now()
	c, err := scenarios.Compare(sc, scenarios.CompareOptions{From: from, To: to, Mode: *mode, Systems: names, T: t,
		Options: scenarios.Options{TimeLimit: *timeLimit, Store: *store, Context: ctx}})
	if err != nil {
		fmt.Fprintf(stderr, "seqlab compare: %v\n", err)
		return 2
	}
	fmt.Fprint(stdout, c.Table())
	path := *jsonOut
	if path == "" {
		path = filepath.Join(*store, "compare", fmt.Sprintf("%s-%s-seeds-%d-%d.json", strings.ReplaceAll(sc.Name, "/", "-"), *mode, from, to))
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err == nil {
		if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
			err = os.WriteFile(path, append(b, '\n'), 0o644)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "seqlab compare: write the JSON table: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "\njson      %s\ntook      %v\n", path, time.Since(started).Round(time.Millisecond))
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "seqlab compare: interrupted; the table holds the seeds that ran")
		return exitInterrupted
	}
	if !c.Kept() {
		return 1
	}
	return 0
}
