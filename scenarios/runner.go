package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/checker/history"
	"github.com/seqlab/seqlab/nemesis"
	"github.com/seqlab/seqlab/simnet"
)

// Options are the knobs of one run; the zero value runs the scenario as
// catalogued with its default seed.
type Options struct {
	// Seed, when HasSeed, replaces the scenario's default seed.
	Seed    int64
	HasSeed bool
	// TimeLimit and Concurrency, when set, replace the scenario's.
	TimeLimit   time.Duration
	Concurrency int
	// Store is the directory that keeps run directories; default "store".
	Store string
	// Out receives the run's block; default os.Stdout.
	Out io.Writer
	// Verbose sends the nodes' logs to Out.
	Verbose bool
}

// RunInfo is run.json: what a replay needs, and what the run was.
type RunInfo struct {
	Scenario    string        `json:"scenario"`
	Mode        string        `json:"mode"` // grpc or sim`
	Seed        int64         `json:"seed"`
	TimeLimit   time.Duration `json:"time_limit_ns"`
	Concurrency int           `json:"concurrency"`
	Promises    []string      `json:"promises"`
	Expect      []string      `json:"expect_violations,omitempty"`
	Faults      []string      `json:"faults,omitempty"`
	Started     time.Time     `json:"started"`
	SimTime     time.Duration `json:"sim_time_ns,omitempty"`
	WallTime    time.Duration `json:"wall_time_ns,omitempty"`
	Replay      string        `json:"replay"`
	// Hash (sim mode) is the simulator's trace hash: a replay must match.
	Hash string `json:"hash,omitempty"`
	Note string `json:"note,omitempty"`
}

// Report is what a run found.
type Report struct {
	Info    RunInfo
	Dir     string
	Ops     map[string]int // by outcome: ok, fail, info
	Faults  []string       // every nemesis event, in order
	Verdict Verdict
	// Problems say how the run missed its expected verdict; empty when it
	// met it.
	Problems []string
}

// Met reports whether the run reached the scenario's expected verdict.
func (r *Report) Met() bool { return len(r.Problems) == 0 }

// ReplayCommand is the go test command that replays a run of name with
// seed and the settings of opts.
func ReplayCommand(name string, seed int64, opts Options) string {
	g, rest, _ := strings.Cut(name, "/")
	cmd := fmt.Sprintf("go test ./scenarios -run '^Test%s$/^%s$' -seed %d", g, regexp.QuoteMeta(rest), seed)
	if opts.TimeLimit > 0 {
		cmd += fmt.Sprintf(" -time-limit %v", opts.TimeLimit)
	}
	if opts.Concurrency > 0 {
		cmd += fmt.Sprintf(" -concurrency %d", opts.Concurrency)
	}
	return cmd + " -v"
}

// Prepare applies opts to sc and validates the result.
func Prepare(sc Scenario, opts Options) (Scenario, int64, error) {
	if opts.TimeLimit < 0 || opts.Concurrency < 0 {
		return sc, 0, errors.Errorf("time limit %v and concurrency %d must not be negative", opts.TimeLimit, opts.Concurrency)
	}
	sc = sc.WithDefaults()
	if opts.TimeLimit > 0 {
		sc.TimeLimit = opts.TimeLimit
		sc.Recovery = sc.TimeLimit / 5
	}
	if opts.Concurrency > 0 {
		sc.Workload.RangeClients = opts.Concurrency
	}
	seed := sc.DefaultSeed()
	if opts.HasSeed {
		seed = opts.Seed
	}
	return sc, seed, sc.Validate()
}

// Run plays sc inside a synctest bubble of t, checks the history, writes
// the run directory and prints the block. It returns an error only when
// the run could not be carried out; a violated property is a Report.
func Run(t *testing.T, sc Scenario, opts Options) (*Report, error) {
	sc, seed, err := Prepare(sc, opts)
	if err != nil {
		return nil, err
	}
	if err := sc.supports(ModeGRPC); err != nil {
		return nil, err
	}
	if opts.Store == "" {
		opts.Store = "store"
	}
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	started := time.Now()
	dir := filepath.Join(opts.Store, filepath.FromSlash(sc.Name), fmt.Sprintf("%s-seed%d", started.UTC().Format("20060102T150405.000"), seed))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, errors.Wrap(err, "create run dir")
	}
	info := RunInfo{
		Scenario: sc.Name, Mode: ModeGRPC, Seed: seed, TimeLimit: sc.TimeLimit, Concurrency: sc.Workload.RangeClients,
		Promises: sc.Promises, Expect: sc.Expect.Violates, Faults: sc.Faults, Started: started.UTC(),
		Replay: ReplayCommand(sc.Name, seed, opts),
	}
	if err := writeJSON(filepath.Join(dir, "run.json"), info); err != nil {
		return nil, err
	}
	hf, err := os.Create(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		return nil, errors.Wrap(err, "create history")
	}
	defer hf.Close()

	rep := &Report{Dir: dir, Ops: map[string]int{}}
	var runErr error
	synctest.Test(t, func(t *testing.T) {
		runErr = play(sc, seed, hf, opts, rep)
	})
	info.SimTime = rep.Info.SimTime
	if runErr != nil {
		return nil, runErr
	}
	if err := hf.Sync(); err != nil {
		return nil, errors.Wrap(err, "sync history")
	}
	info.WallTime = time.Since(started)
	rep.Info = info
	if err := writeJSON(filepath.Join(dir, "run.json"), info); err != nil {
		return nil, err
	}
	v, err := checkRun(dir, sc)
	if err != nil {
		return nil, err
	}
	rep.Verdict = v
	rep.Problems = judge(sc, v)
	block := rep.Block()
	fmt.Fprint(opts.Out, block)
	if err := os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(block), 0o644); err != nil {
		return nil, errors.Wrap(err, "write summary")
	}
	return rep, nil
}

// play runs the cluster, the workload and the nemesis; inside the bubble.
func play(sc Scenario, seed int64, hf io.Writer, opts Options, rep *Report) error {
	start := time.Now()
	now := func() time.Duration { return time.Since(start) }
	rec := history.NewRecorder(hf, now)
	logger := slog.New(slog.DiscardHandler)
	if opts.Verbose {
		logger = slog.New(slog.NewTextHandler(opts.Out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	net := simnet.New(simnet.Config{Seed: seed, Default: linkConfig(sc.Cluster)})
	defer net.Close()
	clients := newClientSet()
	cl, err := newCluster(sc, seed, net, clients, logger)
	if err != nil {
		return err
	}
	defer cl.close()

	var faults []nemesis.Fault
	for _, name := range sc.Faults {
		f, err := nemesis.Lookup(name)
		if err != nil {
			return err
		}
		faults = append(faults, f)
	}
	ctx, stop := context.WithCancel(context.Background())
	w := &workload{sc: sc, seed: seed, net: net, rec: rec, nodes: cl.Nodes(), set: clients}
	w.run(ctx)
	nemDone := make(chan struct{})
	go func() {
		defer close(nemDone)
		s := nemesis.Schedule{Faults: faults, Interval: sc.Interval, Duration: sc.FaultFor, Jitter: sc.Interval / 2, InTurn: sc.InTurn}
		s.Run(ctx, cl, now, sc.TimeLimit-sc.Recovery, func(e nemesis.Event) {
			v := e.Value
			if e.Err != nil {
				v = map[string]any{"value": e.Value, "error": e.Err.Error()}
			}
			rec.Nemesis(e.F, v)
			rep.Faults = append(rep.Faults, fmt.Sprintf("%s %s", e.At.Round(time.Millisecond), e.F))
		})
	}()
	time.Sleep(sc.TimeLimit)
	stop()
	<-nemDone
	w.wait()
	rep.Info.SimTime = now()
	return errors.Wrap(rec.Err(), "record history")
}

// promised reports whether check k decides a verdict under promises.
func promised(promises []string, k string) bool {
	for _, p := range promises {
		if p == k || p == "gap-free" && k == "gaps" {
			return true
		}
	}
	return false
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return errors.Wrapf(err, "encode %s", path)
	}
	return errors.Wrapf(os.WriteFile(path, append(b, '\n'), 0o644), "write %s", path)
}

// Block is the run's summary for a terminal.
func (r *Report) Block() string {
	var b strings.Builder
	i := r.Info
	status := "PASS"
	if !r.Met() {
		status = "FAIL"
	}
	fmt.Fprintf(&b, "=== %s %s\n", status, i.Scenario)
	fmt.Fprintf(&b, "seed      %d (%s mode)\n", i.Seed, i.Mode)
	if i.Hash != "" {
		fmt.Fprintf(&b, "hash      %s\n", i.Hash)
	}
	ratio := 0.0
	if i.WallTime > 0 {
		ratio = float64(i.SimTime) / float64(i.WallTime)
	}
	fmt.Fprintf(&b, "time      %.1fs simulated in %.2fs wall (%.0fx)\n", i.SimTime.Seconds(), i.WallTime.Seconds(), ratio)
	var outcomes []string
	for _, k := range []string{"ok", "fail", "info"} {
		outcomes = append(outcomes, fmt.Sprintf("%s=%d", k, r.Verdict.Ops[k]))
	}
	fmt.Fprintf(&b, "ops       %s\n", strings.Join(outcomes, " "))
	fmt.Fprintf(&b, "faults    %d events", len(r.Faults))
	if len(r.Verdict.Faults) > 0 {
		applied := make([]string, 0, len(r.Verdict.Faults))
		for name, k := range r.Verdict.Faults {
			applied = append(applied, fmt.Sprintf("%s x%d", name, k))
		}
		sort.Strings(applied)
		fmt.Fprintf(&b, ": %s", strings.Join(applied, ", "))
	}
	if len(i.Faults) > 0 {
		fmt.Fprintf(&b, " (%d of %d kinds applied)", len(r.Verdict.Faults), len(i.Faults))
	}
	b.WriteString("\n")
	names := make([]string, 0, len(r.Verdict.Checks))
	for k := range r.Verdict.Checks {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		note := ""
		if k != "stats" && !promised(i.Promises, k) {
			note = " (not promised)"
		}
		fmt.Fprintf(&b, "check     %-13s %s%s\n", k, r.Verdict.Checks[k], note)
	}
	fmt.Fprintf(&b, "verdict   %s (promised %s", r.Verdict.Valid, strings.Join(i.Promises, ","))
	if len(i.Expect) > 0 {
		fmt.Fprintf(&b, "; expected violation of %s", strings.Join(i.Expect, ","))
	}
	b.WriteString(")\n")
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "problem   %s\n", p)
	}
	for k, line := range r.Verdict.Evidence {
		label := ""
		if k == 0 {
			label = "evidence"
		}
		fmt.Fprintf(&b, "%-9s %s\n", label, line)
	}
	fmt.Fprintf(&b, "run dir   %s\n", r.Dir)
	if !r.Met() || len(i.Expect) > 0 {
		if i.Mode == ModeSim {
			fmt.Fprintf(&b, "replay    seqlab replay %s   (bit-exact)\n", r.Dir)
			fmt.Fprintf(&b, "shrink    seqlab shrink %s\n", r.Dir)
		} else {
			fmt.Fprintf(&b, "replay    %s\n", i.Replay)
			fmt.Fprintf(&b, "          seqlab replay %s\n", r.Dir)
		}
	}
	return b.String()
}
