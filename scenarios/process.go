package scenarios

import (
	"context"
	"encoding/json"
	stderrors "errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/errors"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/checker/history"
	"github.com/seqlab/seqlab/nemesis"
	pcluster "github.com/seqlab/seqlab/process/cluster"
	"github.com/seqlab/seqlab/process/supervisor"
	"github.com/seqlab/seqlab/rr_seq"
)

// ModeProcess runs every node as an OS process (the system's node binary,
// or any program given as a command template) in a network namespace of its
// own, with real faults: nftables cuts, a proxy's delays, SIGKILL,
// SIGSTOP, and a FUSE disk that loses what was not synced (package
// process/cluster). The workload and the nemesis run in the lab's process
// in wall-clock time; a seed fixes the schedule (fault times and targets,
// the clients' pacing), and the kernel and the scheduler the rest.
const ModeProcess = "process"

// The process mode's records in a run directory, beside the other modes'.
const (
	// ProcessFile is process.json: the command template, the commands,
	// and the harness's setup and cleanup times (ProcessRecord).
	ProcessFile = "process.json"
	// CommandsFile is commands.txt: the exact command of each node, one a
	// line, with the environment the lab adds, as a shell would run it.
	CommandsFile = "commands.txt"
)

// processPeerSecret is every node's RRSEQ_PEER_SECRET. Nothing outside
// the lab's namespaces reaches a peer port, so it need not be secret;
// fixed, a run's commands.txt runs as recorded.
const processPeerSecret = "lab"

// Process says what the process mode runs.
type Process struct {
	// Command is the nodes' command template, with the placeholders of
	// process/supervisor ({listen}, {peer_listen}, {peers}, {name},
	// {index}, {n}, {data_dir}). Empty runs the system's node binary
	// (System.Process) with the scenario's settings.
	Command string
	// Bin is the run's system's node binary, for the default command.
	// Empty: RunProcess builds it into BinDir.
	Bin string
	// BinDir is where RunProcess builds the node binaries it needs
	// (STORE/.bin), each once per process.
	BinDir string
	// Promises, when set, replace the scenario's: what the program
	// promises, the checks that decide the verdict.
	Promises []string
	// Note is kept in run.json ("replay of ...").
	Note string
}

// ProcessRecord is process.json.
type ProcessRecord struct {
	// NodeCmd is the command template given (--node-cmd); empty for the
	// system's own node binary, built by the lab.
	NodeCmd string `json:"node_cmd,omitempty"`
	// Promise is the promises given (--promise); empty for the
	// scenario's.
	Promise []string `json:"promise,omitempty"`
	// Template is the template the nodes ran from.
	Template string `json:"template"`
	// Commands and Env are what each node ran, with what the lab added
	// to its environment.
	Commands []string `json:"commands,omitempty"`
	Env      []string `json:"env"`
	// Setup is the time from nothing to every node ready: namespaces,
	// proxies, disks, processes. Cleanup is the time to remove it all.
	Setup   time.Duration `json:"setup_ns"`
	Cleanup time.Duration `json:"cleanup_ns"`
	// Namespaces are the inode numbers of the network namespaces the run
	// made, so that anyone can check that none outlived it.
	Namespaces []uint64 `json:"namespaces,omitempty"`
}

// notInProcessMode are the faults the process mode does not offer, and
// why.
var notInProcessMode = map[string]string{
	"loss":            "has no loss fault (new connections dropped, open ones reset at random)",
	"clock-offset":    "has " + NoClockFaults,
	"clock-step-back": "has " + NoClockFaults,
	"clock-strobe":    "has " + NoClockFaults,
	"clock-drift":     "has " + NoClockFaults,
}

// NoClockFaults says why no scenario shifts a clock in process mode: a
// Go process reads its clock through the vDSO, which no preload reaches.
const NoClockFaults = "no clock faults (a Go process's clock cannot be shifted from outside it)"

// WhyNotProcess says why s cannot run in process mode, or "" when it
// can: with rrseq-node, or, when own, with a program of one's own given
// as a command template, which takes no rrseq-node flag.
func (s Scenario) WhyNotProcess(own bool) string {
	for _, f := range s.FaultNames() {
		for _, part := range strings.Split(f, "+") {
			if why, ok := notInProcessMode[part]; ok {
				return fmt.Sprintf("fault %s: the process mode %s", part, why)
			}
		}
	}
	c := s.Cluster
	switch {
	case c.Planted == rr_seq.Planted{RejoinEmpty: true}:
		return "it plants a node that rejoins without its state, which no node binary has a flag for"
	case c.Planted != (rr_seq.Planted{}):
		return "it plants a coordinator bug, which rrseq-node has no flag for"
	case c.NoBootstrapOnRestart:
		return "a node restarts with the command it started with, so it cannot drop --bootstrap"
	case own && len(s.Expect.Violates) > 0:
		return "it is a bug planted in rrseq-node; a program of your own runs the scenarios that expect every promise to hold"
	case own && (c.R != 0 || c.W != 0 || c.Unsafe || c.WriteRule != rr_seq.SetIfUnchanged || c.ReadFirst || c.AckBeforeSync):
		return "it sets rrseq-node's flags (quorums, write rule, protocol), which a program of your own does not take"
	}
	return ""
}

// rrseqNodeTemplate is the command template of rrseq-node at bin with
// sc's settings, and the grpc mode's timers: a peer timeout of a quarter
// of the client's, and a round life of twice that.
func rrseqNodeTemplate(sc Scenario, bin string) string {
	c := sc.Cluster
	s := pcluster.RRSeqNode(bin, c.Persist == Disk)
	if c.R != 0 {
		s += fmt.Sprintf(" --r %d", c.R)
	}
	if c.W != 0 {
		s += fmt.Sprintf(" --w %d", c.W)
	}
	if c.Unsafe {
		s += " --unsafe"
	}
	if c.WriteRule != rr_seq.SetIfUnchanged {
		s += " --write-rule " + c.WriteRule.String()
	}
	if c.ReadFirst {
		s += " --read-first"
	}
	if c.AckBeforeSync {
		s += " --unsafe-ack-before-sync"
	}
	peer := sc.Workload.OpTimeout / 4
	return s + fmt.Sprintf(" --peer-timeout %v --round-life %v", peer, 2*peer)
}

// ProcessReplayCommand is the seqlab command that runs name again in
// process mode with seed and the settings of opts and p: the same
// schedule, not the same interleaving.
func ProcessReplayCommand(name string, seed int64, opts Options, p Process) string {
	args := []string{"seqlab", "run", name, "--mode", ModeProcess, "--seed", fmt.Sprint(seed)}
	if opts.TimeLimit > 0 {
		args = append(args, "--time-limit", opts.TimeLimit.String())
	}
	if opts.Concurrency > 0 {
		args = append(args, "--concurrency", fmt.Sprint(opts.Concurrency))
	}
	if p.Command != "" {
		args = append(args, "--node-cmd", p.Command)
	} else if opts.System != "" && opts.System != RRSeq {
		args = append(args, "--system", opts.System)
	}
	if len(p.Promises) > 0 {
		args = append(args, "--promise", strings.Join(p.Promises, ","))
	}
	return supervisor.Quote(args)
}

// CheckPromises returns an error unless every name is a property the
// checker knows.
func CheckPromises(promises []string) error {
	for _, p := range promises {
		if !slices.Contains(checker.Properties, p) {
			return errors.Errorf("unknown property %q (known: %s)", p, strings.Join(checker.Properties, ","))
		}
	}
	return nil
}

// PrepareProcess applies opts and p to sc and returns an error unless it
// can run in process mode.
func PrepareProcess(sc Scenario, opts Options, p Process) (Scenario, int64, error) {
	sc, seed, err := Prepare(sc, opts)
	if err != nil {
		return sc, 0, err
	}
	if len(sc.Modes) > 0 {
		if err := sc.supports(ModeProcess); err != nil {
			return sc, 0, err
		}
	}
	if why := sc.WhyNotProcess(p.Command != ""); why != "" {
		return sc, 0, errors.Errorf("scenario %s does not run in process mode: %s", sc.Name, why)
	}
	if err := CheckPromises(p.Promises); err != nil {
		return sc, 0, errors.Wrap(err, "promise")
	}
	if len(p.Promises) > 0 {
		sc.Promises = p.Promises
	}
	if p.Command == "" {
		sys, err := LookupSystem(sc.System())
		switch {
		case err != nil:
			return sc, 0, err
		case sys.Process == nil:
			return sc, 0, errors.Errorf("system %s has no node binary for the process mode: give a program with --node-cmd", sys.Name)
		case p.Bin == "" && p.BinDir == "":
			return sc, 0, errors.Errorf("process mode: no node command and no %s binary", sys.Name)
		}
	}
	if p.Command != "" {
		tmpl, err := supervisor.ParseTemplate(p.Command)
		switch {
		case err != nil:
			return sc, 0, errors.Wrap(err, "node command")
		case !tmpl.Uses("listen"):
			return sc, 0, errors.New("node command: it must take {listen}, where the lab's clients call it")
		case sc.Cluster.Persist == Disk && !tmpl.Uses("data_dir"):
			return sc, 0, errors.Errorf("node command: %s keeps its nodes on disk, and the command must take {data_dir}", sc.Name)
		}
	}
	return sc, seed, nil
}

// RunProcess plays sc in process mode: it starts the cluster, runs the
// workload and the nemesis on it in wall-clock time, removes the
// cluster, checks the history, writes the run directory (with
// process.json, commands.txt and each node's output in nodes/NAME.log)
// and prints the block. Everything it made is gone when it returns,
// whatever happened; a panic runs its deferred cleanup too. It returns an
// error when the run could not be carried out (a node that would not
// start, say: the run directory keeps its log), with a nil Report.
func RunProcess(sc Scenario, opts Options, p Process) (*Report, error) {
	sc, seed, err := PrepareProcess(sc, opts, p)
	if err != nil {
		return nil, err
	}
	opts.System = sc.System()
	template := p.Command
	if template == "" {
		sys, _ := LookupSystem(sc.System()) // PrepareProcess found it
		bin := p.Bin
		if bin == "" {
			if bin, err = BuildNode(p.BinDir, sys); err != nil {
				return nil, err
			}
		}
		template = sys.Process.Template(sc, bin)
	}
	if opts.Store == "" {
		opts.Store = "store"
	}
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	ctx := opts.Context
	if ctx == nil {
		ctx = context.Background()
	}
	started := time.Now()
	dir, err := newRunDir(filepath.Join(opts.Store, filepath.FromSlash(sc.Name)), fmt.Sprintf("%s-process-seed%d", started.UTC().Format("20060102T150405.000"), seed))
	if err != nil {
		return nil, err
	}
	// The nodes run in the run directory, and their {data_dir} must mean
	// the same to them as to the lab.
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, errors.Wrap(err, "run dir")
	}
	info := RunInfo{
		Scenario: sc.Name, LiveWithin: sc.LiveWithin(), Mode: ModeProcess, Seed: seed, TimeLimit: sc.TimeLimit, Concurrency: sc.Workload.RangeClients,
		Promises: sc.Promises, Expect: sc.Expect.Violates, Faults: sc.FaultNames(), Started: started.UTC(),
		Replay: ProcessReplayCommand(sc.Name, seed, opts, p), Note: p.Note, Build: CurrentBuild(),
	}
	info.System = sc.System()
	if p.Command != "" {
		info.System = OwnProgram // not the system's binary: whatever --node-cmd runs
	}
	if err := writeJSON(filepath.Join(dir, RunFile), info); err != nil {
		return nil, err
	}
	if err := writeScript(dir, sc); err != nil {
		return nil, err
	}
	env := []string{"RRSEQ_PEER_SECRET=" + processPeerSecret}
	rec := ProcessRecord{NodeCmd: p.Command, Promise: p.Promises, Template: template, Env: env}
	writeRecord := func() error { return writeJSON(filepath.Join(dir, ProcessFile), rec) }
	if err := writeRecord(); err != nil {
		return nil, err
	}
	hf, err := os.Create(filepath.Join(dir, checker.HistoryFile))
	if err != nil {
		return nil, errors.Wrap(err, "create history")
	}
	defer hf.Close()

	setup := time.Now()
	c, err := pcluster.Start(ctx, pcluster.Config{
		Nodes: sc.Cluster.Nodes, Command: template, Env: env, Dir: abs, Disk: sc.Cluster.Persist == Disk, Seed: seed,
		Link:  nemesis.Link{Latency: sc.Cluster.Latency, Jitter: sc.Cluster.Jitter},
		Ready: firstServing,
	})
	rec.Setup = time.Since(setup)
	if err != nil {
		_ = writeRecord()
		return nil, errors.Wrapf(err, "start the cluster (its logs are in %s)", filepath.Join(dir, "nodes"))
	}
	defer c.Close() // on every way out; a second Close does nothing
	rec.Commands, rec.Namespaces = c.Commands(), c.Lab().Inodes()
	if err := writeCommands(filepath.Join(dir, CommandsFile), env, rec.Commands); err != nil {
		return nil, err
	}
	if err := writeRecord(); err != nil {
		return nil, err
	}

	rep := &Report{Dir: dir, Ops: map[string]int{}}
	playErr := playProcess(ctx, sc, seed, c, hf, rep)
	cleanup := time.Now()
	closeErr := c.Close()
	rec.Cleanup = time.Since(cleanup)
	if err := writeRecord(); err != nil {
		return nil, err
	}
	if playErr != nil {
		return nil, playErr
	}
	if err := hf.Sync(); err != nil {
		return nil, errors.Wrap(err, "sync history")
	}
	info.SimTime, info.Interrupted = rep.Info.SimTime, rep.Info.Interrupted
	info.WallTime, info.Setup, info.Cleanup = time.Since(started), rec.Setup, rec.Cleanup
	rep.Info = info
	if err := writeJSON(filepath.Join(dir, RunFile), info); err != nil {
		return nil, err
	}
	v, err := checkRun(dir, sc)
	if err != nil {
		return nil, err
	}
	rep.Verdict = v
	rep.Problems = judge(sc, v)
	if closeErr != nil {
		rep.Problems = append(rep.Problems, "cleanup: "+closeErr.Error())
	}
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

// firstServing is the process mode's readiness: a node is ready when it
// accepts connections on its client port and, at its first start, when
// gRPC health says SERVING too, if the program serves health at all. So
// the run's clock starts on a cluster that serves. A restarted node may
// need peers that are down to recover, so a restart waits only for
// connections: the nemesis must not hang on it.
func firstServing(c *pcluster.Cluster, node string) func(ctx context.Context) error {
	accepting := supervisor.Accepting(c.Dial, c.ClientAddr(node))
	serving := supervisor.Serving(c.Dial, c.ClientAddr(node))
	var started atomic.Bool
	return func(ctx context.Context) error {
		if err := accepting(ctx); err != nil || started.Load() {
			return err
		}
		if err := serving(ctx); err != nil && status.Code(err) != codes.Unimplemented {
			return err
		}
		started.Store(true)
		return nil
	}
}

func writeCommands(path string, env, commands []string) error {
	var b strings.Builder
	for _, cmd := range commands {
		fmt.Fprintf(&b, "%s %s\n", strings.Join(env, " "), cmd)
	}
	return errors.Wrapf(os.WriteFile(path, []byte(b.String()), 0o644), "write %s", path)
}

// processCluster is the nemesis's view of a process-mode run: the nodes
// are the cluster's, the buffering clients the workload's.
type processCluster struct {
	*pcluster.Cluster
	clients *clientSet
}

func (p processCluster) Clients() []string          { return p.clients.names() }
func (p processCluster) CrashClient(n string) error { return p.clients.crash(n) }

// playProcess runs the workload and the nemesis on c for sc's time limit
// of wall-clock time, or until ctx ends.
func playProcess(ctx context.Context, sc Scenario, seed int64, c *pcluster.Cluster, hf *os.File, rep *Report) error {
	start := time.Now()
	now := func() time.Duration { return time.Since(start) }
	rec := history.NewRecorder(hf, now)
	clients := newClientSet()
	var faults []nemesis.Fault
	for _, name := range sc.Faults {
		f, err := nemesis.Lookup(name)
		if err != nil {
			return err
		}
		faults = append(faults, f)
	}
	// The clients name nodes as the other modes do (n1, n2, ...), and
	// reach them from the clients' namespace.
	dial := func(host string) dialFunc {
		return func(ctx context.Context, node string) (net.Conn, error) { return c.Dial(ctx, c.ClientAddr(node)) }
	}
	timeline, err := sc.nemesisTimeline(seed)
	if err != nil {
		return err
	}
	wctx, stop := context.WithCancel(context.Background())
	defer stop()
	w := &workload{sc: sc, seed: seed, dialer: dial, rec: rec, nodes: c.Nodes(), set: clients}
	w.run(wctx)
	// The harness's network records the errors of its faults (a rule
	// that could not be set) rather than return them: each event
	// carries those its start or stop met. The random schedule and the
	// timeline run side by side, and record in one history.
	var emitMu sync.Mutex
	seen := 0
	emit := func(e nemesis.Event) {
		emitMu.Lock()
		defer emitMu.Unlock()
		if errs := c.Errs(); len(errs) > seen {
			e.Err = stderrors.Join(append([]error{e.Err}, errs[seen:]...)...)
			seen = len(errs)
		}
		v := e.Value
		if e.Err != nil {
			v = map[string]any{"value": e.Value, "error": e.Err.Error()}
		}
		rec.Nemesis(e.F, v)
		rep.Faults = append(rep.Faults, fmt.Sprintf("%s %s", e.At.Round(time.Millisecond), e.F))
	}
	pc := processCluster{c, clients}
	var nemesisRuns sync.WaitGroup
	nemesisRuns.Go(func() {
		s := nemesis.Schedule{Faults: faults, Interval: sc.Interval, Duration: sc.FaultFor, Jitter: sc.Interval / 2, InTurn: sc.InTurn}
		s.Run(wctx, pc, now, sc.TimeLimit-sc.Recovery, emit)
	})
	nemesisRuns.Go(func() { timeline.Run(wctx, pc, now, sc.TimeLimit-sc.Recovery, emit) })
	nemDone := make(chan struct{})
	go func() {
		nemesisRuns.Wait()
		close(nemDone)
	}()
	t := time.NewTimer(sc.TimeLimit)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		rep.Info.Interrupted = true
	}
	stop()
	<-nemDone
	w.wait()
	rep.Info.SimTime = now()
	return errors.Wrap(rec.Err(), "record history")
}

var (
	buildMu sync.Mutex
	built   = map[string]string{} // dir and package: the binary built there
)

// BuildNode builds sys's node binary from the module's source into dir
// (once per process for each) and returns its path: the lab tests the
// code it was built from. It looks for the module's source from the
// working directory up, and says so when it finds none.
func BuildNode(dir string, sys System) (string, error) {
	if sys.Process == nil {
		return "", errors.Errorf("system %s has no node binary", sys.Name)
	}
	pkg := sys.Process.Package
	what := "build " + filepath.Base(pkg)
	buildMu.Lock()
	defer buildMu.Unlock()
	key := dir + "\x00" + pkg
	if bin, ok := built[key]; ok {
		return bin, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", errors.Wrap(err, what)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", errors.Wrap(err, what)
	}
	bin, err := filepath.Abs(filepath.Join(dir, filepath.Base(pkg)))
	if err != nil {
		return "", errors.Wrap(err, what)
	}
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", errors.Errorf("%s: go build %s in %s: %v\n%s", what, pkg, root, err, out)
	}
	built[key] = bin
	return bin, nil
}

// BuildRRSeqNode builds rrseq-node into dir (BuildNode of rr_seq).
func BuildRRSeqNode(dir string) (string, error) {
	sys, err := LookupSystem(RRSeq)
	if err != nil {
		return "", err
	}
	return BuildNode(dir, sys)
}

// ErrNoSource is returned by BuildNode outside the module's source.
var ErrNoSource = errors.New("no seqlab source here: run from the module's tree, or give --node-cmd")

// moduleRoot is the directory, from the working directory up, whose
// go.mod is this module's.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if strings.TrimSpace(line) == "module github.com/seqlab/seqlab" {
					return d, nil
				}
			}
		}
		if filepath.Dir(d) == d {
			return "", errors.Wrapf(ErrNoSource, "from %s", dir)
		}
	}
}

// ReadProcessRecord reads a process-mode run directory's process.json.
func ReadProcessRecord(dir string) (ProcessRecord, error) {
	var rec ProcessRecord
	b, err := os.ReadFile(filepath.Join(dir, ProcessFile))
	if err != nil {
		return rec, errors.Wrap(err, "read the process mode's record")
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, errors.Wrapf(err, "%s", filepath.Join(dir, ProcessFile))
	}
	return rec, nil
}

// ReplayProcess runs a process-mode run directory's scenario again with
// its seed, settings, node command and promises: the same schedule of
// faults and operations, on processes whose interleaving no seed fixes,
// so not bit for bit, on the same system; binDir is where the system's
// node binary is built, for a run that used it.
func ReplayProcess(dir string, opts Options, binDir string) (*Report, error) {
	info, _, err := ReadRun(dir)
	if err != nil {
		return nil, err
	}
	if info.Mode != ModeProcess {
		return nil, errors.Errorf("%s is a %s-mode run, not a process-mode one", dir, info.Mode)
	}
	rec, err := ReadProcessRecord(dir)
	if err != nil {
		return nil, err
	}
	sc, err := RunScenario(dir, info.Scenario)
	if err != nil {
		return nil, err
	}
	opts.Seed, opts.HasSeed, opts.TimeLimit, opts.Concurrency = info.Seed, true, info.TimeLimit, info.Concurrency
	if rec.NodeCmd == "" {
		opts.System = info.SystemName()
	}
	return RunProcess(sc, opts, Process{Command: rec.NodeCmd, BinDir: binDir, Promises: rec.Promise, Note: "replay of " + dir})
}

// CheckSource returns ErrNoSource unless the working directory is in the
// module's source, from which the process mode builds the node binaries.
func CheckSource() error {
	_, err := moduleRoot()
	return err
}
