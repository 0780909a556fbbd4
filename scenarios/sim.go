package scenarios

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/nemesis"
	"github.com/seqlab/seqlab/rr_seq/rrsim"
	"github.com/seqlab/seqlab/simnet/sim"
)

// The two modes a scenario runs in.
const (
	// ModeGRPC runs real gRPC nodes over simnet in a synctest bubble: a
	// seed fixes the schedule, Go's scheduler the interleaving.
	ModeGRPC = "grpc"
	// ModeSim runs rr_seq's core in the deterministic simulator: a seed
	// fixes everything, bit for bit.
	ModeSim = "sim"
)

// PlanFile is the simulator's configuration in a sim run directory: what
// replay and shrink read.
const PlanFile = "plan.json"

// SimPlan is a simulated run: the simulator's configuration and the
// system's, side by side, as plan.json records them. rr_seq's fields sit
// inline (as in plans from before there were several systems); another
// system's configuration is under "system_config".
type SimPlan struct {
	sim.Config
	rrConfig
	// SystemName is the system under test; empty means rr_seq.
	SystemName string `json:"system,omitempty"`
	// SystemConfig is the configuration of a system other than rr_seq,
	// as its System.SimConfig gave it.
	SystemConfig json.RawMessage `json:"system_config,omitempty"`
	// Swarm, in a swarm run, is what the seed drew.
	Swarm *SwarmDraw `json:"swarm,omitempty"`
}

type rrConfig = rrsim.Config

// Sys is the plan's system under test.
func (p SimPlan) Sys() (System, error) {
	name := p.SystemName
	if name == "" {
		name = RRSeq
	}
	sys, err := LookupSystem(name)
	if err != nil {
		return sys, err
	}
	if !sys.Supports(ModeSim) {
		return sys, errors.Errorf("system %s does not run in the simulator (its modes: %s)", name, strings.Join(sys.Modes(), ","))
	}
	return sys, nil
}

// System returns the simulator's side of the plan's system under test.
func (p SimPlan) System() (sim.System, error) {
	sys, err := p.Sys()
	if err != nil {
		return nil, err
	}
	if sys.Name == RRSeq {
		return rrsim.New(p.rrConfig, p.Nodes)
	}
	return sys.NewSim(p.SystemConfig, p.Nodes)
}

// WithDefaults fills the unset fields of both parts.
func (p SimPlan) WithDefaults() SimPlan {
	p.Config = p.Config.WithDefaults()
	if p.SystemName == "" || p.SystemName == RRSeq {
		p.rrConfig = p.rrConfig.WithDefaults(p.Nodes)
	}
	return p
}

// MarshalJSON leaves rr_seq's inline fields out of another system's plan.
func (p SimPlan) MarshalJSON() ([]byte, error) {
	type plain SimPlan
	if p.SystemName == "" || p.SystemName == RRSeq {
		return json.Marshal(plain(p))
	}
	return json.Marshal(struct {
		sim.Config
		SystemName   string          `json:"system"`
		SystemConfig json.RawMessage `json:"system_config,omitempty"`
		Swarm        *SwarmDraw      `json:"swarm,omitempty"`
	}{p.Config, p.SystemName, p.SystemConfig, p.Swarm})
}

// Validate reports a plan that cannot run.
func (p SimPlan) Validate() error {
	sys, err := p.System()
	if err != nil {
		return err
	}
	return p.Config.Validate(sys)
}

// Run plays the plan in the simulator, its history in memory.
func (p SimPlan) Run(keepTrace bool) (*sim.Result, error) {
	return p.RunTo(sim.Output{Trace: keepTrace})
}

// RunTo plays the plan in the simulator, its history and trace where out
// says.
func (p SimPlan) RunTo(out sim.Output) (*sim.Result, error) {
	sys, err := p.System()
	if err != nil {
		return nil, err
	}
	return sim.RunTo(p.Config, sys, out)
}

// SimConfig turns a scenario into a simulator plan for seed.
func SimConfig(sc Scenario, opts Options) (SimPlan, int64, error) {
	sc, seed, err := Prepare(sc, opts)
	if err != nil {
		return SimPlan{}, 0, err
	}
	if err := sc.supports(ModeSim); err != nil {
		return SimPlan{}, 0, err
	}
	c, w := sc.Cluster, sc.Workload
	p := SimPlan{
		Config: sim.Config{
			Seed: seed, Nodes: c.Nodes, Latency: c.Latency, Jitter: c.Jitter, RoundRobin: c.ReadFirst,
			Clients: w.RangeClients, Sizes: w.Sizes, IDClients: w.IDClients, IDRangeSize: w.IDRangeSize,
			Rate: w.Rate, OpTimeout: w.OpTimeout, Names: w.Names,
			TimeLimit: sc.TimeLimit, Faults: sc.FaultPlan(seed), Ops: sc.Ops,
		},
	}
	sys, err := LookupSystem(sc.System())
	if err != nil {
		return SimPlan{}, 0, err
	}
	sysCfg, err := sys.SimConfig(sc)
	if err != nil {
		return SimPlan{}, 0, err
	}
	if sys.Name == RRSeq {
		p.rrConfig = sysCfg.(rrsim.Config)
	} else {
		p.SystemName = sys.Name
		if p.SystemConfig, err = json.Marshal(sysCfg); err != nil {
			return SimPlan{}, 0, errors.Wrapf(err, "%s's configuration", sys.Name)
		}
	}
	p = p.WithDefaults()
	if opts.Swarm != "" {
		if p, err = swarm(sc, seed, p, opts.Swarm); err != nil {
			return SimPlan{}, 0, err
		}
	}
	if opts.Buggify {
		if sys.Name != RRSeq {
			return SimPlan{}, 0, errors.Errorf("system %s has no seed-fired sites (--buggify is rr_seq's)", sys.Name)
		}
		// The sites stop with the last fault: from then on the run
		// judges liveness, on a cluster left alone. A run without faults
		// is all liveness, and gets no sites.
		var until time.Duration
		var crashes []rrsim.Span
		for _, f := range p.Faults {
			until = max(until, f.At+f.For)
			if fault, err := nemesis.Lookup(f.Name); err == nil {
				if _, ok := fault.(*nemesis.Crash); ok {
					crashes = append(crashes, rrsim.Span{From: f.At, To: f.At + f.For})
				}
			}
		}
		if until > 0 {
			p.Buggify = rrsim.DrawBuggify(seed, until)
			p.Buggify.Calm = rrsim.CalmBetween(crashes, until)
		}
	}
	return p, seed, p.Validate()
}

// SimOutcome is a simulated run, checked.
type SimOutcome struct {
	Result  *sim.Result
	Results checker.Results
	// Problems say how the run missed the scenario's expected verdict.
	Problems []string
}

// Met reports whether the run reached the expected verdict.
func (o SimOutcome) Met() bool { return len(o.Problems) == 0 }

// Violated lists the promised properties found false (a planted bug's
// expected violations are among them).
func (o SimOutcome) Violated() []string {
	var out []string
	for _, p := range checker.Properties {
		if r, ok := o.Results.Checks[p]; ok && r.Valid == checker.ValidFalse && promised(o.Results.Promises, p) {
			out = append(out, p)
		}
	}
	return out
}

// Simulate runs cfg and checks it against sc's promises and expectation,
// all in memory.
func Simulate(sc Scenario, cfg SimPlan) (SimOutcome, error) {
	return simulate(sc, cfg, sim.Output{})
}

// simulateSeed is Simulate for a hunt, which needs only the verdict: the
// checks take the run's events as it makes them, so no history is
// written, parsed or kept, and the run has no hash.
func simulateSeed(sc Scenario, cfg SimPlan) (SimOutcome, error) {
	sc, sys, err := resolve(sc, cfg.SystemName)
	if err != nil {
		return SimOutcome{}, err
	}
	c := cfg.Config.WithDefaults()
	ops := float64(c.Clients+c.IDClients) * c.Rate * c.TimeLimit.Seconds()
	st := checker.NewStream(sc.checkOptions(sys, checker.Options{PorcupineLimit: -1}), int(min(ops, 1<<20)))
	r, err := cfg.RunTo(sim.Output{Events: st.Add})
	if err != nil {
		return SimOutcome{}, err
	}
	return judged(sc, r, st.Results()), nil
}

// simulate is Simulate with the history in memory where out says.
func simulate(sc Scenario, cfg SimPlan, out sim.Output) (SimOutcome, error) {
	r, err := cfg.RunTo(out)
	if err != nil {
		return SimOutcome{}, err
	}
	sc, sys, err := resolve(sc, cfg.SystemName)
	if err != nil {
		return SimOutcome{}, err
	}
	// The checks take the history as they read it, in compact form,
	// never as a slice of events.
	res, err := checker.CheckReader(bytes.NewReader(r.History), sc.checkOptions(sys, checker.Options{PorcupineLimit: -1}))
	if err != nil {
		return SimOutcome{}, err
	}
	if m := res.Malformed; len(m) > 0 {
		return SimOutcome{}, errors.Errorf("simulator wrote a malformed history: line %d: %s", m[0].Line, m[0].Msg)
	}
	return judged(sc, r, res), nil
}

// judged is a run's outcome: its checks' results held to sc's promises.
func judged(sc Scenario, r *sim.Result, res checker.Results) SimOutcome {
	v := Verdict{Valid: res.Valid, Results: res, Ops: map[string]int{}}
	for _, byType := range res.Stats.Ops {
		for typ, n := range byType {
			if typ != "pending" {
				v.Ops[typ] += n
			}
		}
	}
	return SimOutcome{Result: r, Results: res, Problems: judge(sc, v)}
}

// RunSim plays sc in the simulator, writes a run directory (with plan.json
// for replay and shrink), checks it, and prints the block.
func RunSim(sc Scenario, opts Options) (*Report, error) {
	cfg, seed, err := SimConfig(sc, opts)
	if err != nil {
		return nil, err
	}
	return runSimConfig(sc, cfg, seed, opts, "")
}

// runSimConfig runs an explicit configuration (a replay, a shrunk plan).
func runSimConfig(sc Scenario, cfg SimPlan, seed int64, opts Options, note string) (*Report, error) {
	sc, _, err := Prepare(sc, Options{System: cfg.SystemName})
	if err != nil {
		return nil, err
	}
	if opts.Store == "" {
		opts.Store = "store"
	}
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	started := time.Now()
	dir := filepath.Join(opts.Store, filepath.FromSlash(sc.Name), fmt.Sprintf("%s-%s-sim-seed%d", started.UTC().Format("20060102T150405.000000"), sc.System(), seed))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, errors.Wrap(err, "create run dir")
	}
	r, err := runToFile(cfg, filepath.Join(dir, "history.jsonl"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	wall := time.Since(started)
	info := RunInfo{
		Scenario: sc.Name, System: sc.System(), Sparse: sc.sparse(), LiveWithin: sc.LiveWithin(), Mode: ModeSim, Seed: seed, TimeLimit: cfg.TimeLimit, Concurrency: cfg.Clients,
		Promises: sc.Promises, Expect: sc.Expect.Violates, Faults: sc.FaultNames(), Started: started.UTC(),
		SimTime: r.SimTime, WallTime: wall, Hash: r.Hash, Note: note,
		Replay: fmt.Sprintf("seqlab replay %s", dir), Build: CurrentBuild(),
	}
	if err := writeJSON(filepath.Join(dir, RunFile), info); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(dir, PlanFile), cfg); err != nil {
		return nil, err
	}
	if err := writeScript(dir, sc); err != nil {
		return nil, err
	}
	v, err := checkRun(dir, sc)
	if err != nil {
		return nil, err
	}
	rep := &Report{Info: info, Dir: dir, Verdict: v, Problems: judge(sc, v)}
	for _, f := range cfg.Faults {
		rep.Faults = append(rep.Faults, fmt.Sprintf("%s start-%s", f.At, f.Name), fmt.Sprintf("%s stop-%s", f.At+f.For, f.Name))
	}
	block := rep.Block()
	fmt.Fprint(opts.Out, block)
	if err := os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(block), 0o644); err != nil {
		return nil, errors.Wrap(err, "write summary")
	}
	return rep, writeReport(dir)
}

// runToFile plays cfg with its history going to path as it is made, so
// that a long run holds only what is in flight.
func runToFile(cfg SimPlan, path string) (*sim.Result, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, errors.Wrap(err, "create history")
	}
	w := bufio.NewWriterSize(f, 1<<16)
	r, err := cfg.RunTo(sim.Output{History: w})
	if err == nil {
		err = errors.Wrap(w.Flush(), "write history")
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = errors.Wrap(cerr, "write history")
	}
	return r, err
}

// RunFile is a run directory's description.
const RunFile = "run.json"

// ReadRun reads a run directory's run.json and, for a sim run, its plan.
func ReadRun(dir string) (RunInfo, *SimPlan, error) {
	var info RunInfo
	b, err := os.ReadFile(filepath.Join(dir, RunFile))
	if err != nil {
		return info, nil, errors.Wrap(err, "read run info")
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, nil, errors.Wrapf(err, "%s", filepath.Join(dir, RunFile))
	}
	if info.Mode != ModeSim {
		return info, nil, nil
	}
	b, err = os.ReadFile(filepath.Join(dir, PlanFile))
	if err != nil {
		return info, nil, errors.Wrap(err, "read plan")
	}
	var cfg SimPlan
	if err := json.Unmarshal(b, &cfg); err != nil {
		return info, nil, errors.Wrapf(err, "%s", filepath.Join(dir, PlanFile))
	}
	if err := cfg.Validate(); err != nil {
		return info, nil, errors.Wrapf(err, "%s", filepath.Join(dir, PlanFile))
	}
	return info, &cfg, nil
}

// ReplaySim runs a sim run directory's plan again and reports whether the
// new run is bit-exact (same hash).
func ReplaySim(dir string, opts Options) (*Report, bool, error) {
	info, cfg, err := ReadRun(dir)
	if err != nil {
		return nil, false, err
	}
	if cfg == nil {
		return nil, false, errors.Errorf("%s is not a sim run", dir)
	}
	sc, err := RunScenario(dir, info.Scenario)
	if err != nil {
		return nil, false, err
	}
	rep, err := runSimConfig(sc, *cfg, info.Seed, opts, "replay of "+dir)
	if err != nil {
		return nil, false, err
	}
	return rep, rep.Info.Hash == info.Hash, nil
}
