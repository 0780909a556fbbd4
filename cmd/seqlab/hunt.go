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
// violation of a real configuration), 1 when it does not, 2 on bad input,
// 130 when interrupted (it prints what the seeds run so far found).
func huntCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "merge" {
		return mergeCmd(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("seqlab hunt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seeds := fs.String("seeds", "1-1000", "seeds to sweep, FROM-TO, 0 <= FROM <= TO")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "runs at once, 1 to 256")
	timeLimit := fs.Duration("time-limit", 0, "simulated length of each run (default: the scenario's)")
	concurrency := fs.Int("concurrency", 0, "number of clients (default: the scenario's)")
	store := fs.String("store", "store", "directory that keeps the hunt's journal (under hunts/) and the first hit's run directory")
	shard := fs.String("shard", "", "run only shard I of N (I from 0): the seeds whose position in --seeds is I modulo N")
	maxFailures := fs.Int("max-failures", 0, "stop after this many failing seeds (0: no limit)")
	var swarm swarmFlag
	fs.Var(&swarm, "swarm", "swarm testing: each seed also draws which of the scenario's faults run, how often and how long, and the client mix; --swarm=all draws from every registered fault")
	system := fs.String("system", "", "the system under test, of "+strings.Join(systemNames(), ", ")+" (default: the scenario's first)")
	buggify := fs.Bool("buggify", false, "each seed also enables some of the system's seed-fired sites (delay a reply, refuse a request, drop a hedge timer, a slow fsync, a long backoff), drawn from the seed and kept in plan.json")
	resume := fs.Bool("resume", false, "continue the newest hunt of the same scenario, seeds, shard and options in --store, if any: run only the seeds it lacks (none if it finished)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: seqlab hunt SCENARIO|FILE.scn [--seeds FROM-TO] [--swarm[=all]] [--buggify] [--system NAME] [--shard I/N] [--resume] [--max-failures K] [--workers N] [--time-limit D] [--store DIR]")
		fmt.Fprintln(stderr, "       seqlab hunt merge DIR...   (combine the shards of one hunt from their journals)")
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
		fmt.Fprintf(stderr, "seqlab hunt: bad --seeds %q: %v\n", *seeds, err)
		return 2
	}
	plan := scenarios.HuntPlan{From: from, To: to, Workers: *workers, MaxFailures: *maxFailures, Store: *store, Resume: *resume}
	if *shard != "" {
		if plan.Shard, plan.Shards, err = shardFlag(*shard); err != nil {
			fmt.Fprintf(stderr, "seqlab hunt: bad --shard %q: %v\n", *shard, err)
			return 2
		}
	}
	if *maxFailures < 0 {
		fmt.Fprintf(stderr, "seqlab hunt: bad --max-failures %d: want 0 or more\n", *maxFailures)
		return 2
	}
	if *workers < 1 || *workers > 256 {
		fmt.Fprintf(stderr, "seqlab hunt: bad --workers %d: want 1 to 256\n", *workers)
		return 2
	}
	var sc scenarios.Scenario
	if scenarios.IsScript(name) {
		var ok bool
		if sc, ok = loadScript("hunt", name, stderr); !ok {
			return 2
		}
	} else if sc, err = findOne(name); err != nil {
		fmt.Fprintf(stderr, "seqlab hunt: %v\n", err)
		return 2
	}
	ctx, release := notify(stderr)
	defer release()
	bug := len(sc.Expect.Violates) > 0
	opts := scenarios.Options{System: *system, TimeLimit: *timeLimit, Concurrency: *concurrency, Store: *store, Out: stdout, Context: ctx, Swarm: string(swarm), Buggify: *buggify}
	rep, err := scenarios.HuntSeeds(sc, plan, opts, progressPrinter(stderr, bug, time.Now))
	if err != nil {
		fmt.Fprintf(stderr, "seqlab hunt: %v\n", err)
		return 2
	}
	n := rep.Total
	seedsText := fmt.Sprintf("seeds %d-%d", from, to)
	if rep.Shards > 1 {
		seedsText += fmt.Sprintf(" shard %d/%d (%d seeds)", rep.Shard, rep.Shards, rep.Total)
	}
	switch {
	case rep.Interrupted:
		fmt.Fprintf(stdout, "hunted %s: INTERRUPTED after %d of %s in %v on %d workers (%.0f seeds a minute)\n",
			sc.Name, rep.Done, seedsText, rep.Elapsed.Round(time.Millisecond), *workers, rep.SeedsPerMinute())
	case rep.Stopped:
		fmt.Fprintf(stdout, "hunted %s: STOPPED at %d failing seeds (--max-failures) after %d of %s in %v on %d workers (%.0f seeds a minute)\n",
			sc.Name, len(rep.Hits), rep.Done, seedsText, rep.Elapsed.Round(time.Millisecond), *workers, rep.SeedsPerMinute())
	default:
		fmt.Fprintf(stdout, "hunted %s on %s: %s in %v on %d workers (%.0f seeds a minute)\n",
			sc.Name, rep.System, seedsText, rep.Elapsed.Round(time.Millisecond), *workers, rep.SeedsPerMinute())
	}
	defer func() {
		if rep.Resumed > 0 {
			fmt.Fprintf(stdout, "resumed   %d seeds from the journal of an earlier run\n", rep.Resumed)
		}
		if rep.Dir != "" {
			fmt.Fprintf(stdout, "journal   %s\n", rep.Dir)
		}
	}()
	for _, e := range rep.Errors {
		fmt.Fprintf(stdout, "error     %s\n", e)
	}
	code := 0
	switch {
	case len(rep.Hits) == 0 && bug:
		fmt.Fprintf(stdout, "no seed of %d run catches the planted bug\n", rep.Done)
		code = 1
	case len(rep.Hits) == 0:
		fmt.Fprintf(stdout, "no seed of %d run violates a property: every promise held\n", rep.Done)
	default:
		what := "violate a property"
		if bug {
			what = "catch the planted bug"
		}
		fmt.Fprintf(stdout, "%d of %d seeds run %s; first: %d; seeds: %s\n", len(rep.Hits), rep.Done, what, rep.Hits[0], compactSeeds(rep.Hits))
		fmt.Fprintln(stdout, "the first, recorded:")
		first, err := scenarios.RunSim(sc, scenarios.Options{System: rep.System, Seed: rep.Hits[0], HasSeed: true, TimeLimit: *timeLimit,
			Concurrency: *concurrency, Store: *store, Out: stdout, Swarm: string(swarm), Buggify: *buggify})
		if err != nil {
			fmt.Fprintf(stderr, "seqlab hunt: %v\n", err)
			return 2
		}
		if !bug || !first.Met() {
			code = 1
		}
	}
	if rep.Interrupted {
		fmt.Fprintf(stderr, "seqlab hunt: interrupted: %d of %d seeds run; what they found is above\n", rep.Done, n)
		return exitInterrupted
	}
	return code
}

// progressPrinter prints a hunt's progress to w: seeds done, speed, hits
// so far and the time left. It prints every second for the first ten
// seconds, then every ten, and only when seeds were done since the last
// line.
func progressPrinter(w io.Writer, bug bool, now func() time.Time) func(scenarios.HuntProgress) {
	start := now()
	last := start
	what := "violate a property"
	if bug {
		what = "catch the bug"
	}
	return func(p scenarios.HuntProgress) {
		t := now()
		every := time.Second
		if t.Sub(start) >= 10*time.Second {
			every = 10 * time.Second
		}
		if t.Sub(last) < every || p.Done == p.Total {
			return
		}
		last = t
		line := fmt.Sprintf("hunt      %d of %d seeds, %.0f seeds/s, %d %s, about %v left",
			p.Done, p.Total, p.SeedsPerSecond(), p.Hits, what, p.Left().Round(time.Second))
		if p.Errors > 0 {
			line += fmt.Sprintf(", %d errors", p.Errors)
		}
		fmt.Fprintln(w, line)
	}
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

// swarmFlag is --swarm (the scenario's faults) or --swarm=all.
type swarmFlag string

func (s *swarmFlag) String() string   { return string(*s) }
func (s *swarmFlag) IsBoolFlag() bool { return true }
func (s *swarmFlag) Set(v string) error {
	switch v {
	case "true":
		*s = scenarios.SwarmScenario
	case "false":
		*s = ""
	case scenarios.SwarmAll:
		*s = scenarios.SwarmAll
	default:
		return fmt.Errorf("want --swarm or --swarm=all")
	}
	return nil
}

// shardFlag parses I/N.
func shardFlag(s string) (int64, int64, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.ParseInt(a, 10, 64)
	n, err2 := strconv.ParseInt(b, 10, 64)
	switch {
	case !ok || err1 != nil || err2 != nil:
		return 0, 0, fmt.Errorf("want I/N, e.g. 0/4")
	case n < 1 || n > 1_000_000:
		return 0, 0, fmt.Errorf("N %d outside 1..1000000", n)
	case i < 0 || i >= n:
		return 0, 0, fmt.Errorf("I %d outside 0..%d", i, n-1)
	}
	return i, n, nil
}

// mergeCmd combines the journals of a hunt's shards. It reads and writes
// nothing else. Exit codes as for hunt.
func mergeCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, "usage: seqlab hunt merge DIR...   (hunt directories, or directories that hold them)")
		return 2
	}
	m, err := scenarios.MergeHunts(args...)
	if err != nil {
		fmt.Fprintf(stderr, "seqlab hunt: %v\n", err)
		return 2
	}
	sc, err := findOne(m.Scenario)
	if err != nil {
		fmt.Fprintf(stderr, "seqlab hunt merge: %v\n", err)
		return 2
	}
	bug := len(sc.Expect.Violates) > 0
	fmt.Fprintf(stdout, "merged %s: seeds %d-%d from %d shards\n", m.Scenario, m.From, m.To, m.Shards)
	for _, b := range m.Builds {
		fmt.Fprintf(stdout, "warning   shards ran different builds: %s\n", b)
	}
	for _, e := range m.Errors {
		fmt.Fprintf(stdout, "error     %s\n", e)
	}
	switch {
	case len(m.Hits) == 0 && bug:
		fmt.Fprintf(stdout, "no seed of %d run catches the planted bug\n", m.Done)
		return 1
	case len(m.Hits) == 0:
		fmt.Fprintf(stdout, "no seed of %d run violates a property: every promise held\n", m.Done)
		return 0
	}
	what := "violate a property"
	if bug {
		what = "catch the planted bug"
	}
	fmt.Fprintf(stdout, "%d of %d seeds run %s; first: %d; seeds: %s\n", len(m.Hits), m.Done, what, m.Hits[0], compactSeeds(m.Hits))
	fmt.Fprintf(stdout, "replay    seqlab run %s --mode sim --seed %d\n", m.Scenario, m.Hits[0])
	if bug {
		return 0
	}
	return 1
}

func seedRange(s string) (int64, int64, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		b = a
	}
	from, err1 := strconv.ParseInt(a, 10, 64)
	to, err2 := strconv.ParseInt(b, 10, 64)
	switch {
	case err1 != nil || err2 != nil:
		return 0, 0, fmt.Errorf("want FROM-TO, two seeds 0 or more")
	case to < from:
		return 0, 0, fmt.Errorf("FROM %d is above TO %d", from, to)
	case to-from >= 10_000_000:
		return 0, 0, fmt.Errorf("%d seeds: at most 10000000 at once", to-from+1)
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
