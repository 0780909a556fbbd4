package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/checker/history"
	"github.com/seqlab/seqlab/nemesis"
	"github.com/seqlab/seqlab/simnet"
)

// Options are the knobs of one run; the zero value runs the scenario as
// catalogued with its default seed.
type Options struct {
	// System is the system under test (RRSeq, RaftSeq, FlakeSeq or a
	// registered one); empty means the scenario's first.
	System string
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
	// Swarm, when set (SwarmScenario or SwarmAll), makes each seed of the
	// simulator also draw the run's faults, their pace, and the client
	// mix (see SwarmDraw).
	Swarm string
	// Buggify, in the simulator, makes each seed also enable some of the
	// system's seed-fired sites (rrsim.Sites), drawn from the seed and
	// kept in the plan.
	Buggify bool
	// Context, when done, ends a run early (what was recorded so far is
	// checked, and the run is marked interrupted) and stops a hunt from
	// taking new seeds. Nil never ends.
	Context context.Context
}

// done reports whether opts.Context has ended.
func (o Options) done() bool { return o.Context != nil && o.Context.Err() != nil }

// MinTimeLimit is the shortest run allowed: a shorter one hands out
// next to nothing and tests nothing.
const MinTimeLimit = time.Second

// MaxClients caps a run's clients, range and ID clients together.
const MaxClients = 200

// RunInfo is run.json: what a replay needs, and what the run was.
type RunInfo struct {
	Scenario string `json:"scenario"`
	// System is the system under test; empty in runs from before there
	// were several, all of rr_seq. Sparse says its IDs are sparse by
	// design, so the checker judges no gaps (seqlab check reads it).
	System string `json:"system,omitempty"`
	Sparse bool   `json:"sparse,omitempty"`
	// LiveWithin is the time the cluster had after the last fault to
	// serve again (the live check's bound), as the run was judged.
	LiveWithin  time.Duration `json:"live_within_ns,omitempty"`
	Mode        string        `json:"mode"` // grpc, sim or process
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
	// Build is what the run was built from; zero when not recorded (runs
	// from before it was, and sim-mode runs, which do not record it yet).
	Build Build `json:"build"`
	// Interrupted: the run was stopped before its time limit (Ctrl-C);
	// SimTime says how far it got, and the checks saw only that part.
	Interrupted bool `json:"interrupted,omitempty"`
	// Setup and Cleanup (process mode) are the wall time the cluster
	// took to start and to be removed, within WallTime; SimTime is then
	// the run's own wall time.
	Setup   time.Duration `json:"setup_ns,omitempty"`
	Cleanup time.Duration `json:"cleanup_ns,omitempty"`
}

// SystemName is the run's system under test: rr_seq for runs from before
// run.json named it.
func (i RunInfo) SystemName() string {
	if i.System == "" {
		return RRSeq
	}
	return i.System
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

// ShowsReplay reports whether the run's block prints the commands that
// replay it: when it missed its verdict, or caught a planted bug. Whoever
// keeps run directories must keep these.
func (r *Report) ShowsReplay() bool { return !r.Met() || len(r.Info.Expect) > 0 }

// Word is a check's word in the run: caught for the violation a planted
// bug is expected to cause, else the checker's (held, violated, not
// promised, n/a or unknown).
func (r *Report) Word(check string) checker.Word {
	if slices.Contains(r.Info.Expect, check) && r.Verdict.Results.Checks[check].Valid == checker.ValidFalse {
		return checker.Caught
	}
	return r.Verdict.Results.Word(check)
}

// VerdictLine is the run's verdict in words: CAUGHT for a planted bug
// found, else held, violated or unknown, with what was promised.
func (r *Report) VerdictLine() string {
	i := r.Info
	promised := strings.Join(i.Promises, ",")
	if len(i.Expect) == 0 {
		return fmt.Sprintf("%s (promised %s)", r.Verdict.Valid.Word(), promised)
	}
	caught := true
	for _, p := range i.Expect {
		caught = caught && r.Word(p) == checker.Caught
	}
	expect := strings.Join(i.Expect, ",")
	if caught {
		return fmt.Sprintf("CAUGHT: the expected violation of %s (promised %s)", expect, promised)
	}
	return fmt.Sprintf("NOT CAUGHT: the expected violation of %s did not happen; the run %s (promised %s)",
		expect, r.Verdict.Valid.Word(), promised)
}

// ReplayCommand is the go test command that replays a run of name on
// system with seed and the settings of opts.
func ReplayCommand(name, system string, seed int64, opts Options) string {
	g, rest, _ := strings.Cut(name, "/")
	cmd := fmt.Sprintf("go test ./scenarios -run '^Test%s$/^%s$/^%s$' -seed %d", g, regexp.QuoteMeta(rest), regexp.QuoteMeta(system), seed)
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
	switch {
	case opts.HasSeed && opts.Seed < 0:
		return sc, 0, errors.Errorf("seed %d is negative: seeds are 0 or more", opts.Seed)
	case opts.TimeLimit < 0:
		return sc, 0, errors.Errorf("time limit %v is negative", opts.TimeLimit)
	case opts.TimeLimit > 0 && opts.TimeLimit < MinTimeLimit:
		return sc, 0, errors.Errorf("time limit %v is under %v: a shorter run tests nothing", opts.TimeLimit, MinTimeLimit)
	case opts.Concurrency < 0:
		return sc, 0, errors.Errorf("concurrency %d is negative", opts.Concurrency)
	}
	sc, _, err := resolve(sc, opts.System)
	if err != nil {
		return sc, 0, err
	}
	if ids := sc.Workload.IDClients; opts.Concurrency > MaxClients-ids {
		if ids == 0 {
			return sc, 0, errors.Errorf("concurrency %d is over %d, the most clients a run has", opts.Concurrency, MaxClients)
		}
		return sc, 0, errors.Errorf("concurrency %d is over %d: a run has at most %d clients, and %s has %d ID clients besides its range clients",
			opts.Concurrency, MaxClients-ids, MaxClients, sc.Name, ids)
	}
	if opts.TimeLimit > 0 {
		sc.TimeLimit = opts.TimeLimit
		if !sc.NoRecovery {
			sc.Recovery = sc.TimeLimit / 5
		}
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
// the run directory (report.html last) and prints the block. It returns
// an error when the run could not be carried out, with a nil Report, or
// when its report could not be written, with the Report of the run,
// recorded whole; a violated property is a Report.
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
	dir, err := newRunDir(filepath.Join(opts.Store, filepath.FromSlash(sc.Name)), fmt.Sprintf("%s-%s-seed%d", started.UTC().Format("20060102T150405.000"), sc.System(), seed))
	if err != nil {
		return nil, err
	}
	info := RunInfo{
		Scenario: sc.Name, System: sc.System(), Sparse: sc.sparse(), LiveWithin: sc.LiveWithin(), Mode: ModeGRPC, Seed: seed, TimeLimit: sc.TimeLimit, Concurrency: sc.Workload.RangeClients,
		Promises: sc.Promises, Expect: sc.Expect.Violates, Faults: sc.FaultNames(), Started: started.UTC(),
		Replay: ReplayCommand(sc.Name, sc.System(), seed, opts), Build: CurrentBuild(),
	}
	if err := writeJSON(filepath.Join(dir, "run.json"), info); err != nil {
		return nil, err
	}
	if err := writeScript(dir, sc); err != nil {
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
	info.SimTime, info.Interrupted = rep.Info.SimTime, rep.Info.Interrupted
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
	if info.Interrupted {
		rep.Problems = append([]string{fmt.Sprintf("interrupted at %.1fs of %.1fs: the checks saw only that part of the run",
			info.SimTime.Seconds(), info.TimeLimit.Seconds())}, rep.Problems...)
	}
	block := rep.Block()
	fmt.Fprint(opts.Out, block)
	if err := os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(block), 0o644); err != nil {
		return nil, errors.Wrap(err, "write summary")
	}
	return rep, writeReport(dir)
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
	sys, err := LookupSystem(sc.System())
	if err != nil {
		return err
	}
	cl, err := newCluster(sc, sys, seed, net, clients, logger)
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
	timeline, err := sc.nemesisTimeline(seed)
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(context.Background())
	w := &workload{sc: sc, seed: seed, dialer: net.Dialer, rec: rec, nodes: cl.Nodes(), set: clients}
	w.run(ctx)
	// The random schedule and the timeline run side by side, and record
	// in one history.
	var emitMu sync.Mutex
	emit := func(e nemesis.Event) {
		emitMu.Lock()
		defer emitMu.Unlock()
		v := e.Value
		if e.Err != nil {
			v = map[string]any{"value": e.Value, "error": e.Err.Error()}
		}
		rec.Nemesis(e.F, v)
		rep.Faults = append(rep.Faults, fmt.Sprintf("%s %s", e.At.Round(time.Millisecond), e.F))
	}
	var nemesisRuns sync.WaitGroup
	nemesisRuns.Go(func() {
		s := nemesis.Schedule{Faults: faults, Interval: sc.Interval, Duration: sc.FaultFor, Jitter: sc.Interval / 2, InTurn: sc.InTurn}
		s.Run(ctx, cl, now, sc.TimeLimit-sc.Recovery, emit)
	})
	nemesisRuns.Go(func() { timeline.Run(ctx, cl, now, sc.TimeLimit-sc.Recovery, emit) })
	nemDone := make(chan struct{})
	go func() {
		nemesisRuns.Wait()
		close(nemDone)
	}()
	// Sleep out the run in steps, so that an interrupt from outside the
	// bubble (whose channels cannot wake it) is seen within one.
	for end := start.Add(sc.TimeLimit); time.Now().Before(end); {
		if opts.done() {
			rep.Info.Interrupted = true
			break
		}
		time.Sleep(min(interruptPoll, time.Until(end)))
	}
	stop()
	<-nemDone
	w.wait()
	rep.Info.SimTime = now()
	return errors.Wrap(rec.Err(), "record history")
}

// Build is what a run was built from. Binaries that go test and go run
// build carry no VCS stamp (nor do builds with -buildvcs=false), so the
// commit comes from git in the working directory when the binary cannot
// say; it is "unknown" when neither can.
type Build struct {
	Commit string `json:"commit"`
	// Dirty: the working tree had changes not committed.
	Dirty bool   `json:"dirty"`
	Go    string `json:"go"`
}

// String is the build's one-line form: "commit 0123456789ab (dirty), go1.26.0".
func (b Build) String() string {
	if b.Commit == "" && b.Go == "" {
		return "not recorded"
	}
	c := b.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	dirty := ""
	if b.Dirty {
		dirty = " (dirty)"
	}
	return fmt.Sprintf("commit %s%s, %s", c, dirty, b.Go)
}

// Differences says how b, a recording's build, differs from now, the
// build replaying it, in ways that can change what a replay does: another
// commit, another Go, or uncommitted changes that no commit names.
func (b Build) Differences(now Build) []string {
	if b.Commit == "" && b.Go == "" {
		return []string{"the recording does not say what built it"}
	}
	var out []string
	switch {
	case b.Commit == "unknown" || now.Commit == "unknown":
		out = append(out, fmt.Sprintf("the commit is not known (recorded %s, now %s)", b.Commit, now.Commit))
	case b.Commit != now.Commit:
		out = append(out, fmt.Sprintf("recorded at commit %s, replayed at %s", short(b.Commit), short(now.Commit)))
	}
	if b.Dirty || now.Dirty {
		out = append(out, "the working tree had uncommitted changes, which no commit records")
	}
	if b.Go != now.Go {
		out = append(out, fmt.Sprintf("recorded with %s, replayed with %s", b.Go, now.Go))
	}
	return out
}

func short(commit string) string { return commit[:min(12, len(commit))] }

// CurrentBuild is the build of this process, worked out once.
var CurrentBuild = sync.OnceValue(func() Build {
	b := Build{Commit: "unknown", Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.modified":
				b.Dirty = s.Value == "true"
			}
		}
	}
	if b.Commit != "unknown" {
		return b
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return b // no git, or not a git tree
	}
	b.Commit = strings.TrimSpace(string(head))
	status, err := exec.Command("git", "status", "--porcelain").Output()
	b.Dirty = err != nil || len(bytes.TrimSpace(status)) > 0 // cannot tell: say it may differ
	return b
})

// interruptPoll is how often, in simulated time, a run looks for an
// interrupt.
const interruptPoll = 100 * time.Millisecond

// promised reports whether check k decides a verdict under promises.
func promised(promises []string, k string) bool { return slices.Contains(promises, k) }

// newRunDir creates a new directory name in parent, or name-2, name-3...
// when it exists: a run never writes into another's directory.
func newRunDir(parent, name string) (string, error) {
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", errors.Wrap(err, "create run dir")
	}
	for i := 1; ; i++ {
		dir := filepath.Join(parent, name)
		if i > 1 {
			dir += fmt.Sprintf("-%d", i)
		}
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, os.ErrExist) || i == 100 {
			return "", errors.Wrap(err, "create run dir")
		}
	}
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return errors.Wrapf(err, "encode %s", path)
	}
	return errors.Wrapf(os.WriteFile(path, append(b, '\n'), 0o644), "write %s", path)
}

// Block is the run's summary for a terminal. Its header says whether the
// run met the scenario's expected verdict (PASS, FAIL, or INTERRUPTED),
// and every check and the verdict are in the checker's words.
func (r *Report) Block() string {
	var b strings.Builder
	i := r.Info
	status := "PASS"
	switch {
	case i.Interrupted:
		status = "INTERRUPTED"
	case !r.Met():
		status = "FAIL"
	}
	fmt.Fprintf(&b, "=== %s %s\n", status, i.Scenario)
	fmt.Fprintf(&b, "system    %s\n", i.SystemName())
	fmt.Fprintf(&b, "seed      %d (%s mode)\n", i.Seed, i.Mode)
	if i.Hash != "" {
		fmt.Fprintf(&b, "hash      %s\n", i.Hash)
	}
	fmt.Fprintf(&b, "build     %s\n", i.Build)
	ratio := 0.0
	if i.WallTime > 0 {
		ratio = float64(i.SimTime) / float64(i.WallTime)
	}
	if i.Mode == ModeProcess {
		fmt.Fprintf(&b, "time      %.1fs of real time, %.2fs wall with setup %.2fs and cleanup %.2fs",
			i.SimTime.Seconds(), i.WallTime.Seconds(), i.Setup.Seconds(), i.Cleanup.Seconds())
	} else {
		fmt.Fprintf(&b, "time      %.1fs simulated in %.2fs wall (%.0fx)", i.SimTime.Seconds(), i.WallTime.Seconds(), ratio)
	}
	if i.Interrupted {
		fmt.Fprintf(&b, ", interrupted: %.1fs of %.1fs", i.SimTime.Seconds(), i.TimeLimit.Seconds())
	}
	b.WriteString("\n")
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
	for _, k := range checker.Properties {
		if c, ok := r.Verdict.Results.Checks[k]; ok {
			fmt.Fprintf(&b, "check     %-13s %-13s %s\n", k, r.Word(k), c.Reason)
		}
	}
	if c, ok := r.Verdict.Results.Checks[checker.StatsCheck]; ok {
		fmt.Fprintf(&b, "stats     %s\n", c.Reason)
	}
	fmt.Fprintf(&b, "verdict   %s\n", r.VerdictLine())
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
	if r.Dir == "" {
		fmt.Fprintf(&b, "run dir   not kept\n")
		return b.String()
	}
	fmt.Fprintf(&b, "run dir   %s\n", r.Dir)
	if r.ShowsReplay() {
		if i.Mode == ModeSim {
			fmt.Fprintf(&b, "replay    seqlab replay %s   (bit-exact)\n", r.Dir)
			fmt.Fprintf(&b, "shrink    seqlab shrink %s\n", r.Dir)
		} else {
			fmt.Fprintf(&b, "replay    %s\n", i.Replay)
			if i.Mode == ModeProcess {
				fmt.Fprintf(&b, "          seqlab replay %s   (the same schedule; real processes are not bit-exact)\n", r.Dir)
			} else {
				fmt.Fprintf(&b, "          seqlab replay %s\n", r.Dir)
			}
		}
	}
	return b.String()
}
