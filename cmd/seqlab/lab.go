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
}

func (l *labFlags) register(fs *flag.FlagSet) {
	fs.Int64Var(&l.seed, "seed", 0, "seed of the run (default: the scenario's own)")
	fs.DurationVar(&l.timeLimit, "time-limit", 0, "simulated length of the run (default: the scenario's)")
	fs.IntVar(&l.concurrency, "concurrency", 0, "number of range clients (default: the scenario's)")
	fs.StringVar(&l.store, "store", "store", "directory that keeps run directories")
	fs.BoolVar(&l.verbose, "verbose", false, "print the nodes' logs")
	fs.StringVar(&l.mode, "mode", scenarios.ModeGRPC, "grpc (real nodes over simnet) or sim (the deterministic simulator)")
}

// splitPositional lets the positional argument come before the flags, as
// in `seqlab run NAME --seed 3`.
func splitPositional(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

func runCmd(t *testing.T, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seqlab run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var lf labFlags
	lf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: seqlab run SCENARIO [--mode grpc|sim] [--seed N] [--time-limit D] [--concurrency C] [--store DIR]")
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
	if name == "" {
		fs.Usage()
		return 2
	}
	sc, err := scenarios.Find(name)
	if err != nil {
		fmt.Fprintf(stderr, "seqlab run: %v\n", err)
		return 2
	}
	seedSet := false
	fs.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
	opts := scenarios.Options{Seed: lf.seed, HasSeed: seedSet, TimeLimit: lf.timeLimit,
		Concurrency: lf.concurrency, Store: lf.store, Out: stdout, Verbose: lf.verbose}
	switch lf.mode {
	case scenarios.ModeGRPC:
		_, code := play(t, "run", sc, opts, stderr)
		return code
	case scenarios.ModeSim:
		rep, err := scenarios.RunSim(sc, opts)
		if err != nil {
			fmt.Fprintf(stderr, "seqlab run: %v\n", err)
			return 2
		}
		if !rep.Met() {
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "seqlab run: --mode %q is not grpc or sim\n", lf.mode)
	return 2
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
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return nil, err
	}
	var res struct {
		Checks map[string]struct {
			Valid checker.Valid `json:"valid"`
		} `json:"checks"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, errors.Wrapf(err, "%s", filepath.Join(dir, "results.json"))
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
	b, err := os.ReadFile(filepath.Join(dir, "run.json"))
	if err != nil {
		fmt.Fprintf(stderr, "seqlab replay: %v\n", err)
		return 2
	}
	var info scenarios.RunInfo
	if err := json.Unmarshal(b, &info); err != nil {
		fmt.Fprintf(stderr, "seqlab replay: %s: %v\n", filepath.Join(dir, "run.json"), err)
		return 2
	}
	storeSet := false
	fs.Visit(func(f *flag.Flag) { storeSet = storeSet || f.Name == "store" })
	if !storeSet {
		*store = storeOf(dir, info.Scenario, *store) // beside the recording
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
		return runExit(rep)
	}
	sc, err := scenarios.Find(info.Scenario)
	if err != nil {
		fmt.Fprintf(stderr, "seqlab replay: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "replaying %s with seed %d\n", info.Scenario, info.Seed)
	rep, code := play(t, "replay", sc, scenarios.Options{Seed: info.Seed, HasSeed: true, TimeLimit: info.TimeLimit,
		Concurrency: info.Concurrency, Store: *store, Out: stdout}, stderr)
	if rep != nil {
		compareVerdicts(stdout, dir, rep.Dir)
	}
	return code
}

func listCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "seqlab list: unexpected arguments %q\n", args)
		return 2
	}
	for _, sc := range scenarios.Catalogue() {
		fmt.Fprintf(stdout, "%s  %s\n", sc, sc.Description)
	}
	return 0
}
