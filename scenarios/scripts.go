package scenarios

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/rr_seq"
	"github.com/seqlab/seqlab/scenarios/script"
	"github.com/seqlab/seqlab/simnet/sim"
)

// ScriptFile is a run directory's copy of the script its scenario was
// read from: what a replay, a shrink or a check reads, so that none
// needs the file.
const ScriptFile = "script.scn"

// ShrunkFile is the script Shrink writes in the shrunk run's directory:
// the shrunk run, its operations and faults spelt out.
const ShrunkFile = "shrunk.scn"

// ParseScript reads a scenario script (package script) and turns it into
// its Scenario, with the script as its Source. file names it in errors.
// A script with anything wrong is refused whole, with every error
// script.Parse finds, each as FILE:LINE: message, or the first thing
// the lab refuses in it (a planted bug on a system that has no such bug,
// say), at the line that says it.
func ParseScript(file string, src []byte) (Scenario, error) {
	var systems []string
	for _, s := range Systems() {
		systems = append(systems, s.Name)
	}
	s, err := script.ParseFor(file, bytes.NewReader(src), systems)
	if err != nil {
		return Scenario{}, err
	}
	sc, err := FromScript(s)
	if err != nil {
		line := 0
		var at *atCommand
		if errors.As(err, &at) {
			line = lineOf(src, at.cmd)
		}
		return Scenario{}, script.Errors{{File: file, Line: line, Msg: err.Error()}}
	}
	sc.Source = slices.Clone(src)
	return sc, nil
}

// LoadScript reads the script at path (ParseScript).
func LoadScript(path string) (Scenario, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return Scenario{}, errors.Wrap(err, "read script")
	}
	return ParseScript(path, src)
}

// IsScript reports whether arg names a script file (NAME.scn) rather
// than a scenario of the catalogue.
func IsScript(arg string) bool { return strings.HasSuffix(arg, ".scn") }

// RunScenario is the scenario a run directory ran: the script it keeps
// (ScriptFile), or else the catalogue's scenario name.
func RunScenario(dir, name string) (Scenario, error) {
	path := filepath.Join(dir, ScriptFile)
	src, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Find(name)
	}
	if err != nil {
		return Scenario{}, errors.Wrap(err, "read the run's script")
	}
	sc, err := ParseScript(path, src)
	if err != nil {
		return Scenario{}, err
	}
	if sc.Name != name {
		return Scenario{}, errors.Errorf("%s is scenario %s, but the run was of %s", path, sc.Name, name)
	}
	return sc, nil
}

// writeScript keeps the script sc was read from in its run directory.
func writeScript(dir string, sc Scenario) error {
	if sc.Source == nil {
		return nil
	}
	return errors.Wrap(os.WriteFile(filepath.Join(dir, ScriptFile), sc.Source, 0o644), "write the run's script")
}

// atCommand is an error about what one command of a script says.
type atCommand struct {
	cmd string
	err error
}

func (e *atCommand) Error() string { return e.err.Error() }

// lineOf is the line of src that gives cmd, or 0.
func lineOf(src []byte, cmd string) int {
	for i, l := range strings.Split(string(src), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == cmd {
			return i + 1
		}
	}
	return 0
}

// plant is a planted bug by its name in scripts (script.KnownBugs).
type plant struct {
	name string
	on   func(c *Cluster) *bool
}

var plants = []plant{
	{"ack-before-sync", func(c *Cluster) *bool { return &c.AckBeforeSync }},
	{"flake-clock-rollback", func(c *Cluster) *bool { return &c.FlakeClockRollback }},
	{"late-join", func(c *Cluster) *bool { return &c.Planted.LateJoin }},
	{"rejoin-empty", func(c *Cluster) *bool { return &c.Planted.RejoinEmpty }},
	{"shun-reset", func(c *Cluster) *bool { return &c.Planted.ShunReset }},
	{"trust-cache", func(c *Cluster) *bool { return &c.Planted.TrustCache }},
}

// FromScript turns a parsed script into its Scenario. What the script
// leaves out stays zero, and means the catalogue's default. Its first
// random step over the whole of the faults' time (0s to the recovery)
// is the scenario's own random schedule (Faults, Interval, FaultFor,
// InTurn), as a Go scenario's is; any other is one of Windows; the
// explicit steps, paired into starts and stops, are the Timeline.
func FromScript(s *script.Script) (Scenario, error) {
	sc := Scenario{
		Name: s.Name, Description: s.Description,
		Systems:   slices.Clone(s.Systems),
		TimeLimit: s.TimeLimit, Recovery: s.Recovery, NoRecovery: s.NoRecovery,
		Promises: slices.Clone(s.Promises),
		Expect:   Expect{Violates: slices.Clone(s.Expect.Violates), LostBuffers: s.Expect.LostBuffers, Rare: s.Expect.Rare},
		Modes:    slices.Clone(s.Modes),
		Seed:     s.Seed,
	}
	c := s.Cluster
	sc.Cluster = Cluster{Nodes: c.Nodes, R: c.R, W: c.W, Unsafe: c.Unsafe, ReadFirst: c.ReadFirst,
		NoBootstrapOnRestart: c.NoBootstrapOnRestart, Latency: c.Latency, Jitter: c.Jitter}
	if c.WriteRule != "" {
		rule, err := rr_seq.ParseWriteRule(c.WriteRule)
		if err != nil {
			return Scenario{}, &atCommand{"cluster", err}
		}
		sc.Cluster.WriteRule = rule
	}
	if c.Persist == "disk" {
		sc.Cluster.Persist = Disk
	}
	for _, name := range c.Planted {
		i := slices.IndexFunc(plants, func(p plant) bool { return p.name == name })
		if i < 0 {
			return Scenario{}, &atCommand{"plant", errors.Errorf("plant: the lab has no planted bug %q", name)}
		}
		*plants[i].on(&sc.Cluster) = true
	}
	w := s.Workload
	sc.Workload = Workload{RangeClients: w.RangeClients, Sizes: slices.Clone(w.Sizes), IDClients: w.IDClients,
		IDRangeSize: w.IDRangeSize, Rate: w.Rate, OpTimeout: w.OpTimeout, Names: slices.Clone(w.Names)}

	limit, recovery := s.Times()
	own := false
	for _, st := range s.Steps {
		if st.Verb != script.Random {
			continue
		}
		if !own && st.At == 0 && st.Until == limit-recovery {
			own = true
			sc.Faults, sc.Interval, sc.FaultFor, sc.InTurn = slices.Clone(st.Faults), st.Interval, st.For, st.InTurn
			continue
		}
		sc.Windows = append(sc.Windows, FaultWindow{From: st.At, Until: st.Until, Faults: slices.Clone(st.Faults),
			Interval: st.Interval, For: st.For, InTurn: st.InTurn})
	}
	for _, win := range s.Windows() {
		sc.Timeline = append(sc.Timeline, TimedFault{At: win.At, For: win.For, Fault: win.Fault,
			Targets: slices.Clone(win.Targets), Seed: win.Seed})
	}
	if s.Ops != nil {
		sc.Ops = []sim.OpSpec{}
		for _, o := range s.Ops {
			op := sim.OpSpec{Client: o.Client, At: o.At}
			if o.Client < sc.WithDefaults().Workload.RangeClients {
				op.Node, op.Name = o.Node, o.Name
			}
			sc.Ops = append(sc.Ops, op)
		}
	}

	if err := sc.WithDefaults().Validate(); err != nil {
		return Scenario{}, err
	}
	if len(sc.SystemNames()) == 0 {
		var why []string
		for _, sys := range Systems() {
			if len(sc.Systems) == 0 || slices.Contains(sc.Systems, sys.Name) {
				why = append(why, fmt.Sprintf("not %s, as %s", sys.Name, sys.whyNot(sc.WithDefaults())))
			}
		}
		cmd := "systems"
		if len(c.Planted) > 0 {
			cmd = "plant"
		}
		return Scenario{}, &atCommand{cmd, errors.Errorf("the scenario applies to no system under test: %s", strings.Join(why, "; "))}
	}
	return sc, nil
}

// ToScript prints a scenario as a script: FromScript of it is the same
// scenario, and runs the same, bit for bit in the simulator. A timed
// fault that lasts past the recovery is cut there, as a run cuts it.
func ToScript(sc Scenario) *script.Script {
	s := &script.Script{
		Name: sc.Name, Description: sc.Description,
		Systems:   slices.Clone(sc.Systems),
		TimeLimit: sc.TimeLimit, Recovery: sc.Recovery, NoRecovery: sc.NoRecovery,
		Promises: slices.Clone(sc.Promises),
		Expect:   script.Expect{Violates: slices.Clone(sc.Expect.Violates), LostBuffers: sc.Expect.LostBuffers, Rare: sc.Expect.Rare},
		Modes:    slices.Clone(sc.Modes),
		Seed:     sc.Seed,
	}
	c := sc.Cluster
	s.Cluster = script.Cluster{Nodes: c.Nodes, R: c.R, W: c.W, Unsafe: c.Unsafe, ReadFirst: c.ReadFirst,
		NoBootstrapOnRestart: c.NoBootstrapOnRestart, Latency: c.Latency, Jitter: c.Jitter}
	if c.WriteRule != rr_seq.SetIfUnchanged {
		s.Cluster.WriteRule = c.WriteRule.String()
	}
	if c.Persist == Disk {
		s.Cluster.Persist = "disk"
	}
	for _, p := range plants {
		if *p.on(&c) {
			s.Cluster.Planted = append(s.Cluster.Planted, p.name)
		}
	}
	w := sc.Workload
	s.Workload = script.Workload{RangeClients: w.RangeClients, Sizes: slices.Clone(w.Sizes), IDClients: w.IDClients,
		IDRangeSize: w.IDRangeSize, Rate: w.Rate, OpTimeout: w.OpTimeout, Names: slices.Clone(w.Names)}

	d := sc.WithDefaults()
	end := d.TimeLimit - d.Recovery
	var steps []script.Step
	if len(sc.Faults) > 0 {
		steps = append(steps, script.Step{At: 0, Verb: script.Random, Until: end, Faults: slices.Clone(sc.Faults),
			Interval: sc.Interval, For: sc.FaultFor, InTurn: sc.InTurn})
	}
	for _, win := range sc.Windows {
		steps = append(steps, script.Step{At: win.From, Verb: script.Random, Until: min(win.Until, end), Faults: slices.Clone(win.Faults),
			Interval: win.Interval, For: win.For, InTurn: win.InTurn})
	}
	for _, t := range sc.Timeline {
		if t.At >= end {
			continue
		}
		st := script.Step{At: t.At, Verb: script.Start, Fault: t.Fault, Targets: slices.Clone(t.Targets), For: min(t.For, end-t.At), Seed: t.Seed}
		steps = append(steps, st)
		if st.For == 0 {
			steps = append(steps, script.Step{At: t.At, Verb: script.Stop, Fault: t.Fault, Targets: slices.Clone(t.Targets)})
		}
	}
	slices.SortStableFunc(steps, func(a, b script.Step) int { return cmp.Compare(a.At, b.At) })
	s.Steps = steps
	if sc.Ops != nil {
		s.Ops = []script.Op{}
		for _, o := range sc.Ops {
			s.Ops = append(s.Ops, script.Op{At: o.At, Client: o.Client, Node: o.Node, Name: o.Name})
		}
	}
	return s
}

// shrunkScript is a shrunk run as a script: sc's settings (sc prepared
// for the run's system), with the plan's cluster size, network, workload
// and time limit, its operations and faults spelt out, and its seed, so
// that it runs in the simulator to the same run, bit for bit. It
// expects the violation the shrink kept.
func shrunkScript(sc Scenario, p SimPlan, seed int64, property string) *script.Script {
	s := ToScript(sc)
	name := sc.Name
	if !strings.HasSuffix(name, "-shrunk") {
		name += "-shrunk"
	}
	s.Name = name
	s.Description = fmt.Sprintf("%s, seed %d, shrunk: %s and %s still violate %s", sc.Name, seed,
		count(len(p.Ops), "operation"), count(len(p.Faults), "fault"), property)
	s.Systems = []string{sc.System()}
	s.Cluster.Nodes, s.Cluster.Latency, s.Cluster.Jitter, s.Cluster.ReadFirst = p.Nodes, p.Latency, p.Jitter, p.RoundRobin
	s.Workload = script.Workload{RangeClients: p.Clients, Sizes: slices.Clone(p.Sizes), IDClients: p.IDClients,
		IDRangeSize: p.IDRangeSize, Rate: p.Rate, OpTimeout: p.OpTimeout, Names: slices.Clone(p.Names)}
	s.TimeLimit, s.Recovery, s.NoRecovery = p.TimeLimit, 0, true
	s.Expect = script.Expect{Violates: []string{property}}
	s.Modes = []string{ModeSim}
	s.Seed = &seed
	s.Steps = nil
	for _, f := range p.Faults {
		st := script.Step{At: f.At, Verb: script.Start, Fault: f.Name, Targets: slices.Clone(f.Targets), For: f.For}
		if len(f.Targets) == 0 {
			fs := f.Seed
			st.Seed = &fs
		}
		s.Steps = append(s.Steps, st)
		if f.For == 0 {
			s.Steps = append(s.Steps, script.Step{At: f.At, Verb: script.Stop, Fault: f.Name, Targets: slices.Clone(f.Targets)})
		}
	}
	slices.SortStableFunc(s.Steps, func(a, b script.Step) int { return cmp.Compare(a.At, b.At) })
	s.Ops = []script.Op{}
	for _, o := range p.Ops {
		s.Ops = append(s.Ops, script.Op{At: o.At, Client: o.Client, Node: o.Node, Name: o.Name})
	}
	return s
}

// count says n things: "no faults", "1 fault", "3 faults".
func count(n int, thing string) string {
	switch n {
	case 0:
		return "no " + thing + "s"
	case 1:
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
