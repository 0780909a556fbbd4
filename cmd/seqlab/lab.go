package main

import (
	"encoding/json"
	stderrors "errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/scenarios"
)

func init() {
	commands["run"] = func(args []string, stdout, stderr io.Writer) int {
		return bubble(func(t *testing.T) int { return runCmd(t, args, stdout, stderr) })
	}
	commands["replay"] = func(args []string, stdout, stderr io.Writer) int {
		return bubble(func(t *testing.T) int { return replayCmd(t, args, stdout, stderr) })
	}
	commands["list"] = listCmd
}

// bubble runs f with a *testing.T, which testing/synctest needs. Tests of
// this command replace it with one that passes their own.
var bubble = inBubble

// inBubble gives f a *testing.T, which testing/synctest needs, by running it
// as the one test of testing.Main. testing.Main exits the process, so f's
// code is handed to os.Exit from inside.
func inBubble(f func(t *testing.T) int) int {
	testing.Init()
	_ = flag.CommandLine.Parse(nil) // keep testing from parsing our arguments
	testing.Main(func(pat, str string) (bool, error) { return true, nil },
		[]testing.InternalTest{{Name: "seqlab", F: func(t *testing.T) { os.Exit(f(t)) }}}, nil, nil)
	return 2 // not reached
}

// labFlags are the flags run and replay share.
type labFlags struct {
	seed        int64
	timeLimit   time.Duration
	concurrency int
	store       string
	verbose     bool
	mode        string
	system      string
	process     processFlags
}

func (l *labFlags) register(fs *flag.FlagSet) {
	fs.Int64Var(&l.seed, "seed", 0, "seed of the run, 0 or more (default: the scenario's own)")
	fs.DurationVar(&l.timeLimit, "time-limit", 0, fmt.Sprintf("simulated length of the run, %v to 1h (default: the scenario's)", scenarios.MinTimeLimit))
	fs.IntVar(&l.concurrency, "concurrency", 0, fmt.Sprintf("number of range clients, up to %d with the ID clients (default: the scenario's)", scenarios.MaxClients))
	fs.StringVar(&l.store, "store", "store", "directory that keeps run directories")
	fs.BoolVar(&l.verbose, "verbose", false, "print the nodes' logs")
	fs.StringVar(&l.system, "system", "", "the system under test, of "+strings.Join(systemNames(), ", ")+" (default: the scenario's first; seqlab list shows each scenario's)")
	fs.StringVar(&l.mode, "mode", scenarios.ModeGRPC, "grpc (real nodes over simnet), sim (the deterministic simulator) or process (node processes, real faults, wall time; needs root)")
	fs.StringVar(&l.process.nodeCmd, "node-cmd", "", "process mode: the nodes' command template, with {listen} {peer_listen} {peers} {name} {index} {n} {data_dir} (default: rrseq-node, built by the lab)")
	fs.StringVar(&l.process.promise, "promise", "", "process mode: comma-separated properties the nodes promise, of "+strings.Join(checker.Properties, ",")+" (default: the scenario's)")
}

// splitPositional lets the positional argument come before the flags, as
// in `seqlab run NAME --seed 3`.
func splitPositional(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func runCmd(t *testing.T, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seqlab run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var lf labFlags
	lf.register(fs)
	all := fs.Bool("all", false, "run every scenario, in each mode it supports (or in --mode), and a short hunt of each")
	hunt := fs.Int64("hunt", 0, fmt.Sprintf("with --all or a group: hunt seeds 1..N of each scenario in the simulator (default %d with --all, 0 for a group)", defaultAllHunt))
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: seqlab run SCENARIO|GROUP|FILE.scn [--mode grpc|sim|process] [--seed N] [--time-limit D] [--concurrency C] [--store DIR]")
		fmt.Fprintln(stderr, "       seqlab run SCENARIO|GROUP --mode process [--node-cmd TEMPLATE] [--promise LIST] ...")
		fmt.Fprintln(stderr, "       seqlab run --all [--hunt N] [--mode grpc|sim|process] [--store DIR]")
		fs.PrintDefaults()
	}
	name, rest := splitPositional(args)
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "seqlab run: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if (name == "") == !*all {
		if *all {
			fmt.Fprintf(stderr, "seqlab run: --all runs every scenario; name none (got %q)\n", name)
		} else {
			fs.Usage()
		}
		return 2
	}
	if lf.mode != scenarios.ModeGRPC && lf.mode != scenarios.ModeSim && lf.mode != scenarios.ModeProcess {
		fmt.Fprintf(stderr, "seqlab run: --mode %q is not grpc, sim or process\n", lf.mode)
		return 2
	}
	if lf.mode != scenarios.ModeProcess && (isSet(fs, "node-cmd") || isSet(fs, "promise")) {
		fmt.Fprintln(stderr, "seqlab run: --node-cmd and --promise are for --mode process")
		return 2
	}
	proc, err := processOf(lf.process)
	if err != nil {
		fmt.Fprintf(stderr, "seqlab run: %v\n", err)
		return 2
	}
	if *hunt < 0 || *hunt > 1_000_000 {
		fmt.Fprintf(stderr, "seqlab run: --hunt %d: want 0 to 1000000 seeds\n", *hunt)
		return 2
	}
	scs := scenarios.Catalogue()
	switch {
	case *all:
	case scenarios.IsScript(name):
		sc, ok := loadScript("run", name, stderr)
		if !ok {
			return 2
		}
		scs = []scenarios.Scenario{sc}
	default:
		if scs, err = findRun(name); err != nil {
			fmt.Fprintf(stderr, "seqlab run: %v\n", err)
			return 2
		}
	}
	if lf.system != "" {
		if _, err := scenarios.LookupSystem(lf.system); err != nil {
			fmt.Fprintf(stderr, "seqlab run: --system: %v\n", err)
			return 2
		}
	}
	opts := scenarios.Options{Seed: lf.seed, HasSeed: isSet(fs, "seed"), TimeLimit: lf.timeLimit,
		Concurrency: lf.concurrency, Store: lf.store, Out: stdout, Verbose: lf.verbose, System: lf.system}
	disk := false
	for _, sc := range scs { // bad settings fail before anything runs
		if _, _, err := scenarios.Prepare(sc, opts); err != nil {
			fmt.Fprintf(stderr, "seqlab run: %v\n", err)
			return 2
		}
		if lf.mode == scenarios.ModeProcess && runsInProcessMode(sc, proc) == "" {
			disk = disk || sc.Cluster.Persist == scenarios.Disk
			check := proc
			if check.Command == "" {
				check.Bin = "rrseq-node" // built once the run is sure to go ahead
			}
			if _, _, err := scenarios.PrepareProcess(sc, opts, check); err != nil {
				fmt.Fprintf(stderr, "seqlab run: %v\n", err)
				return 2
			}
		}
	}
	if lf.mode == scenarios.ModeProcess {
		if len(scs) == 1 && !*all {
			if why := runsInProcessMode(scs[0], proc); why != "" {
				fmt.Fprintf(stderr, "seqlab run: %s does not run in process mode: %s\n", scs[0].Name, why)
				return 2
			}
		}
		code := 0
		if proc, code = startProcessMode("run", proc, disk, lf.store, stderr); code != 0 {
			return code
		}
	}
	ctx, release := notify(stderr)
	defer release()
	opts.Context = ctx
	if len(scs) == 1 && !*all {
		return runOne(t, scs[0], lf.mode, opts, proc, stdout, stderr)
	}
	plan := multiPlan{hunt: *hunt, process: proc}
	if *all && !isSet(fs, "hunt") {
		plan.hunt = defaultAllHunt
	}
	if !*all || isSet(fs, "mode") {
		plan.mode = lf.mode
	}
	return runMany(t, scs, plan, opts, stdout, stderr)
}

// runOne runs one scenario in one mode and prints its block.
func runOne(t *testing.T, sc scenarios.Scenario, mode string, opts scenarios.Options, proc scenarios.Process, stdout, stderr io.Writer) int {
	var rep *scenarios.Report
	code := 0
	switch mode {
	case scenarios.ModeGRPC:
		rep, code = play(t, "run", sc, opts, stderr)
	case scenarios.ModeProcess:
		if rep, code = runProcess(opts.Context, sc, opts, proc, stderr); rep == nil {
			return code
		}
	default:
		var err error
		if rep, err = scenarios.RunSim(sc, opts); err != nil {
			fmt.Fprintf(stderr, "seqlab run: %v\n", err)
			return 2
		}
		code = runExit(rep)
	}
	if opts.Context.Err() != nil {
		return interruptedRun(rep, stderr, "run")
	}
	return code
}

// interruptedRun says that a run was interrupted, and where its record is.
func interruptedRun(rep *scenarios.Report, stderr io.Writer, cmd string) int {
	switch {
	case rep == nil:
		fmt.Fprintf(stderr, "seqlab %s: interrupted\n", cmd)
	case rep.Info.Interrupted:
		fmt.Fprintf(stderr, "seqlab %s: interrupted at %.1fs of %.1fs simulated; %s records it, and the checks of what ran\n",
			cmd, rep.Info.SimTime.Seconds(), rep.Info.TimeLimit.Seconds(), rep.Dir)
	default:
		fmt.Fprintf(stderr, "seqlab %s: interrupted after the run had finished; %s holds all of it\n", cmd, rep.Dir)
	}
	return exitInterrupted
}

// play runs sc in the gRPC mode and returns its report and exit status;
// the report is nil when the run could not be carried out.
func play(t *testing.T, cmd string, sc scenarios.Scenario, opts scenarios.Options, stderr io.Writer) (*scenarios.Report, int) {
	if _, _, err := scenarios.Prepare(sc, opts); err != nil {
		fmt.Fprintf(stderr, "seqlab %s: %v\n", cmd, err)
		return nil, 2
	}
	rep, err := scenarios.Run(t, sc, opts)
	if err != nil {
		fmt.Fprintf(stderr, "seqlab %s: %v\n", cmd, err)
		return nil, 2
	}
	return rep, runExit(rep)
}

// runExit is 0 when the run met its expected verdict, 2 when the checks
// could not say (a timeout: unknown), and 1 otherwise.
func runExit(rep *scenarios.Report) int {
	switch {
	case rep.Met():
		return 0
	case rep.Verdict.Valid == checker.ValidUnknown:
		return 2
	}
	return 1
}

// violated lists the properties a run directory's results.json found
// false.
func violated(dir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, checker.ResultsFile))
	if err != nil {
		return nil, err
	}
	var res struct {
		Checks map[string]struct {
			Valid checker.Valid `json:"valid"`
		} `json:"checks"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, errors.Wrapf(err, "%s", filepath.Join(dir, checker.ResultsFile))
	}
	var out []string
	for name, r := range res.Checks {
		if r.Valid == checker.ValidFalse {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// compareVerdicts prints whether a replay found what the recording did.
func compareVerdicts(stdout io.Writer, recorded, replayed string) {
	was, err1 := violated(recorded)
	now, err2 := violated(replayed)
	if err1 != nil || err2 != nil {
		fmt.Fprintf(stdout, "verdicts  cannot compare: %v\n", stderrors.Join(err1, err2))
		return
	}
	word := "the same"
	if !slices.Equal(was, now) {
		word = "NOT the same"
	}
	fmt.Fprintf(stdout, "verdicts  %s: recorded violations %v, replayed %v\n", word, was, now)
}

// storeOf returns the store a run directory lives in
// (STORE/GROUP/NAME/RUN), or def.
func storeOf(dir, scenario, def string) string {
	parent := filepath.Dir(filepath.Clean(dir))
	if s, ok := strings.CutSuffix(parent, string(filepath.Separator)+filepath.FromSlash(scenario)); ok && s != "" {
		return s
	}
	return def
}

func replayCmd(t *testing.T, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seqlab replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	store := fs.String("store", "store", "directory that keeps run directories")
	dir, rest := splitPositional(args)
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	if dir == "" && fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	if dir == "" {
		fmt.Fprintln(stderr, "usage: seqlab replay RUN_DIR [--store DIR]")
		return 2
	}
	b, err := os.ReadFile(filepath.Join(dir, checker.RunFile))
	if err != nil {
		fmt.Fprintf(stderr, "seqlab replay: %v\n", err)
		return 2
	}
	var info scenarios.RunInfo
	if err := json.Unmarshal(b, &info); err != nil {
		fmt.Fprintf(stderr, "seqlab replay: %s: %v\n", filepath.Join(dir, checker.RunFile), err)
		return 2
	}
	if !isSet(fs, "store") {
		*store = storeOf(dir, info.Scenario, *store) // beside the recording
	}
	if info.Mode == scenarios.ModeProcess {
		return replayProcess(dir, *store, info, stdout, stderr)
	}
	ctx, release := notify(stderr)
	defer release()
	warnBuild(stdout, info)
	if info.Interrupted {
		fmt.Fprintf(stdout, "warning   the recording was interrupted at %.1fs of %.1fs: the replay runs all of it\n",
			info.SimTime.Seconds(), info.TimeLimit.Seconds())
	}
	if info.Mode == scenarios.ModeSim {
		fmt.Fprintf(stdout, "replaying %s with seed %d in the simulator\n", info.Scenario, info.Seed)
		rep, exact, err := scenarios.ReplaySim(dir, scenarios.Options{Store: *store, Out: stdout})
		if err != nil {
			fmt.Fprintf(stderr, "seqlab replay: %v\n", err)
			return 2
		}
		compareVerdicts(stdout, dir, rep.Dir)
		if !exact {
			fmt.Fprintf(stdout, "NOT bit-exact: hash %s, the recording has %s\n", rep.Info.Hash, info.Hash)
			return 1
		}
		fmt.Fprintf(stdout, "bit-exact: hash %s matches the recording\n", rep.Info.Hash)
		if ctx.Err() != nil {
			return interruptedRun(rep, stderr, "replay")
		}
		return runExit(rep)
	}
	sc, err := runScenario(dir, info.Scenario)
	if err != nil {
		fmt.Fprintf(stderr, "seqlab replay: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "replaying %s with seed %d\n", info.Scenario, info.Seed)
	rep, code := play(t, "replay", sc, scenarios.Options{System: info.SystemName(), Seed: info.Seed, HasSeed: true, TimeLimit: info.TimeLimit,
		Concurrency: info.Concurrency, Store: *store, Out: stdout, Context: ctx}, stderr)
	if rep != nil {
		compareVerdicts(stdout, dir, rep.Dir)
	}
	if ctx.Err() != nil {
		return interruptedRun(rep, stderr, "replay")
	}
	return code
}

// warnBuild says how the build replaying a run differs from the one that
// recorded it: another commit, another Go, uncommitted changes.
func warnBuild(stdout io.Writer, info scenarios.RunInfo) {
	now := scenarios.CurrentBuild()
	diffs := info.Build.Differences(now)
	if len(diffs) == 0 {
		return
	}
	fmt.Fprintf(stdout, "warning   recorded by %s; replaying with %s\n", info.Build, now)
	for _, d := range diffs {
		fmt.Fprintf(stdout, "warning   %s: the replay may differ for that reason\n", d)
	}
}

func listCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seqlab list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	long := fs.Bool("long", false, "also each scenario's cluster, faults, expected verdict and modes")
	asScript := fs.String("script", "", "print the scenario `NAME` as a script (seqlab run FILE.scn runs it, to the same run)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "seqlab list: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *asScript != "" {
		sc, err := findOne(*asScript)
		if err != nil {
			fmt.Fprintf(stderr, "seqlab list: %v\n", err)
			return 2
		}
		stdout.Write(scenarios.ToScript(sc).Format())
		return 0
	}
	all := scenarios.Catalogue()
	width, sysWidth := 0, 0
	for _, sc := range all {
		width = max(width, len(sc.Name))
		sysWidth = max(sysWidth, len(strings.Join(sc.SystemNames(), ",")))
	}
	for _, sc := range all {
		if !*long {
			systems := strings.Join(sc.SystemNames(), ",")
			fmt.Fprintf(stdout, "%-*s  %-*s  %s\n", width, sc.Name, sysWidth, systems, shortLine(sc.Description, 120-width-sysWidth-4))
			continue
		}
		fmt.Fprintf(stdout, "%s\n    %s\n    %s\n", sc.Name, sc.Description, longLine(sc))
	}
	if !*long {
		fmt.Fprintf(stdout, "%d scenarios in %d groups; seqlab list --long for their settings\n", len(all), len(scenarios.Groups()))
		for _, s := range scenarios.Systems() {
			head := fmt.Sprintf("system %-10s modes %-17s ", s.Name, strings.Join(s.Modes(), ","))
			fmt.Fprintf(stdout, "%s%s\n", head, shortLine(s.Description, 120-len(head)))
		}
		fmt.Fprintf(stdout, "process mode: %s, no loss fault; see --long\n", scenarios.NoClockFaults)
	}
	return 0
}

// longLine is a scenario's settings, for list --long.
func longLine(sc scenarios.Scenario) string {
	sc = sc.WithDefaults()
	c, w := sc.Cluster, sc.Workload
	faults := strings.Join(sc.FaultNames(), ",")
	if faults == "" {
		faults = "none"
	}
	expect := "every promise held"
	if len(sc.Expect.Violates) > 0 {
		expect = "a planted bug: the violation of " + strings.Join(sc.Expect.Violates, ",") + " caught"
	}
	var modes []string
	for _, m := range []string{scenarios.ModeGRPC, scenarios.ModeSim, scenarios.ModeProcess} {
		if sc.Supports(m) {
			modes = append(modes, m)
		}
	}
	var systems []string
	for _, name := range sc.SystemNames() {
		p, _, err := scenarios.Prepare(sc, scenarios.Options{System: name})
		if err != nil {
			continue
		}
		systems = append(systems, fmt.Sprintf("%s (promises %s)", name, strings.Join(p.Promises, ",")))
	}
	line := fmt.Sprintf("%d nodes, %s, %s; %d range and %d ID clients for %v; faults %s; expects %s; modes %s; systems %s",
		c.Nodes, c.WriteRule, c.Persist, w.RangeClients, w.IDClients, sc.TimeLimit, faults,
		expect, strings.Join(modes, ","), strings.Join(systems, ", "))
	if why := sc.WhyNotProcess(false); why != "" {
		line += "; not in process mode: " + why
	}
	return line
}

// systemNames lists the registered systems.
func systemNames() []string {
	var out []string
	for _, s := range scenarios.Systems() {
		out = append(out, s.Name)
	}
	return out
}
