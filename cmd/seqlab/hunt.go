package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/seqlab/seqlab/scenarios"
)

func init() {
	commands["hunt"] = huntCmd
	commands["shrink"] = shrinkCmd
}

// huntCmd sweeps seeds of a scenario in the simulator. Exit 0 when the
// sweep meets the scenario's expectation (a planted bug found, or no
// violation of a real configuration), 1 when it does not, 2 on bad input.
func huntCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seqlab hunt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seeds := fs.String("seeds", "1-1000", "seeds to sweep, FROM-TO")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "runs at once")
	timeLimit := fs.Duration("time-limit", 0, "simulated length of each run (default: the scenario's)")
	concurrency := fs.Int("concurrency", 0, "number of clients (default: the scenario's)")
	store := fs.String("store", "store", "directory that keeps the first hit's run directory")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: seqlab hunt SCENARIO [--seeds FROM-TO] [--workers N] [--time-limit D] [--store DIR]")
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
	if err != nil || *workers < 1 || *workers > 256 {
		fmt.Fprintf(stderr, "seqlab hunt: bad --seeds %q or --workers %d (want FROM-TO and 1..256)\n", *seeds, *workers)
		return 2
	}
	sc, err := scenarios.Find(name)
	if err != nil {
		fmt.Fprintf(stderr, "seqlab hunt: %v\n", err)
		return 2
	}
	opts := scenarios.Options{TimeLimit: *timeLimit, Concurrency: *concurrency, Store: *store, Out: stdout}
	rep, err := scenarios.Hunt(sc, from, to, *workers, opts, nil)
	if err != nil {
		fmt.Fprintf(stderr, "seqlab hunt: %v\n", err)
		return 2
	}
	n := to - from + 1
	fmt.Fprintf(stdout, "hunted %s: seeds %d-%d in %v on %d workers (%.0f seeds a minute)\n",
		sc.Name, from, to, rep.Elapsed.Round(time.Millisecond), *workers, rep.SeedsPerMinute())
	for _, e := range rep.Errors {
		fmt.Fprintf(stdout, "error     %s\n", e)
	}
	bug := len(sc.Expect.Violates) > 0
	if len(rep.Hits) == 0 {
		fmt.Fprintf(stdout, "no seed of %d violates a property\n", n)
		if bug {
			return 1
		}
		return 0
	}
	fmt.Fprintf(stdout, "%d of %d seeds violate a property; first: %d; seeds: %s\n", len(rep.Hits), n, rep.Hits[0], compactSeeds(rep.Hits))
	fmt.Fprintln(stdout, "the first, recorded:")
	first, err := scenarios.RunSim(sc, scenarios.Options{Seed: rep.Hits[0], HasSeed: true, TimeLimit: *timeLimit,
		Concurrency: *concurrency, Store: *store, Out: stdout})
	if err != nil {
		fmt.Fprintf(stderr, "seqlab hunt: %v\n", err)
		return 2
	}
	if bug && first.Met() {
		return 0
	}
	return 1
}

// compactSeeds writes sorted seeds as runs: "1-5,9,12-13".
func compactSeeds(seeds []int64) string {
	var b strings.Builder
	for i := 0; i < len(seeds); {
		j := i
		for j+1 < len(seeds) && seeds[j+1] == seeds[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(seeds[i], 10))
		if j > i {
			b.WriteString("-" + strconv.FormatInt(seeds[j], 10))
		}
		i = j + 1
	}
	return b.String()
}

func seedRange(s string) (int64, int64, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		b = a
	}
	from, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return 0, 0, err
	}
	to, err := strconv.ParseInt(b, 10, 64)
	if err != nil {
		return 0, 0, err
	}
	if from < 0 || to < from || to-from >= 10_000_000 {
		return 0, 0, fmt.Errorf("bad range")
	}
	return from, to, nil
}

func shrinkCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seqlab shrink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	store := fs.String("store", "store", "directory that keeps the shrunk run's directory")
	dir, rest := splitPositional(args)
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	if dir == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: seqlab shrink RUN_DIR [--store DIR]   (a sim-mode run that violates a property)")
		return 2
	}
	rep, err := scenarios.Shrink(dir, scenarios.Options{Store: *store, Out: stdout})
	if err != nil {
		fmt.Fprintf(stderr, "seqlab shrink: %v\n", err)
		return 2
	}
	fmt.Fprint(stdout, rep)
	fmt.Fprintf(stdout, "shrunk run: %s\n", rep.Report.Dir)
	return 0
}
