package script

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/seqlab/seqlab/nemesis"
)

// What a script may name. Parse refuses anything else, so that a typo is
// an error with a line number, not a scenario that quietly differs.
var (
	KnownSystems    = []string{"rr_seq", "raft_seq", "flake_seq"}
	KnownModes      = []string{"grpc", "sim", "process"}
	KnownProperties = []string{"unique", "linearizable", "monotonic", "node-order", "gap-free", "live"}
	// KnownBugs are the planted bugs: ack-before-sync is rr_seq's nodes',
	// flake-clock-rollback flake_seq's, the others rr_seq.Planted's.
	KnownBugs       = []string{"ack-before-sync", "flake-clock-rollback", "late-join", "rejoin-empty", "shun-reset", "trust-cache"}
	knownWriteRules = []string{"set-if-unchanged", "set-if-greater"}
	knownPersist    = []string{"memory", "disk"}
)

// Error is one thing wrong with a script, at a line (0: the whole file).
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Errors is everything wrong with a script, by line; its Error is one
// line each.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// maxErrors is how many errors Parse reports; past that they are likely
// one mistake's echoes.
const maxErrors = 20

// Parse reads a script. name is the file's name, for errors. A script
// with anything wrong is refused whole: Parse returns Errors, every
// problem it found with its line, and no script.
func Parse(name string, r io.Reader) (*Script, error) {
	return ParseFor(name, r, KnownSystems)
}

// ParseFor is Parse for a lab whose systems under test are systems
// (KnownSystems and any registered since): a script may name any of
// them.
func ParseFor(name string, r io.Reader, systems []string) (*Script, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, Errors{{File: name, Msg: err.Error()}}
	}
	p := &parser{file: name, once: map[string]int{}, systems: systems}
	for i, line := range strings.Split(string(data), "\n") {
		p.line = i + 1
		p.command(line)
	}
	p.line = 0
	p.resolve()
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
		if len(p.errs) > maxErrors {
			n := len(p.errs) - maxErrors
			p.errs = append(p.errs[:maxErrors], &Error{File: name, Line: p.errs[maxErrors].Line,
				Msg: fmt.Sprintf("and %d more errors", n)})
		}
		return nil, p.errs
	}
	return &p.s, nil
}

type parser struct {
	file    string
	line    int
	systems []string // the systems a script may name
	s       Script
	errs    Errors
	once    map[string]int // command: the line that gave it
	// Lines of what resolve checks once the whole script is read.
	stepLines []int
	ops       []rawOp
	// Settings that were given but wrong: what depends on them is not
	// checked, so that one mistake gives one error.
	badNodes, badClients, badTimes bool
	clientsGiven                   bool // range-clients= or id-clients= said
}

type rawOp struct {
	line int
	at   time.Duration
	args []string // client [node name]
}

func (p *parser) errorf(format string, a ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: p.line, Msg: fmt.Sprintf(format, a...)})
}

func (p *parser) errorAt(line int, format string, a ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, a...)})
}

var commands = []string{"name", "description", "systems", "cluster", "plant", "workload", "time-limit", "recovery",
	"promises", "expect", "modes", "seed", "at", "random", "op"}

func (p *parser) command(line string) {
	text := strings.TrimSpace(line)
	if text == "" || strings.HasPrefix(text, "#") {
		return
	}
	words := strings.Fields(text)
	cmd, args := words[0], words[1:]
	switch cmd {
	case "at", "random", "op":
	default:
		if !slices.Contains(commands, cmd) {
			p.errorf("unknown command %q (known: %s)", cmd, strings.Join(commands, " "))
			return
		}
		if first, ok := p.once[cmd]; ok {
			p.errorf("%s given twice (first at line %d)", cmd, first)
			return
		}
		p.once[cmd] = p.line
		if len(args) == 0 {
			p.errorf("%s needs %s", cmd, needs[cmd])
			return
		}
	}
	s := &p.s
	switch cmd {
	case "name":
		if len(args) != 1 {
			p.errorf("name %q has spaces: a name is one word, Group/what", strings.Join(args, " "))
			return
		}
		s.Name = args[0]
	case "description":
		s.Description = strings.TrimSpace(text[len(cmd):])
	case "systems":
		s.Systems = p.words(cmd, args, p.systems)
	case "modes":
		s.Modes = p.words(cmd, args, KnownModes)
	case "promises":
		s.Promises = p.words(cmd, args, KnownProperties)
	case "plant":
		s.Cluster.Planted = p.words(cmd, args, KnownBugs)
	case "cluster":
		p.cluster(args)
	case "workload":
		p.workload(args)
	case "time-limit", "recovery":
		if len(args) != 1 {
			p.errorf("%s takes one duration, got %q", cmd, strings.Join(args, " "))
			p.badTimes = true
			return
		}
		d, ok := p.duration(cmd, args[0])
		switch {
		case !ok:
			p.badTimes = true
		case cmd == "time-limit" && (d <= 0 || d > time.Hour):
			p.errorf("time-limit %v outside (0s, 1h]", d)
			p.badTimes = true
		case cmd == "recovery" && d < 0:
			p.errorf("recovery %v is negative (leave it out for a fifth of the time limit)", d)
			p.badTimes = true
		case cmd == "recovery" && d == 0:
			s.NoRecovery = true
		case cmd == "time-limit":
			s.TimeLimit = d
		default:
			s.Recovery = d
		}
	case "seed":
		n, err := strconv.ParseInt(args[0], 10, 64)
		switch {
		case len(args) != 1:
			p.errorf("seed takes one number, got %q", strings.Join(args, " "))
		case err != nil || n < 0:
			p.errorf("seed %s is not a number in 0..2^63-1", args[0])
		default:
			s.Seed = &n
		}
	case "expect":
		p.keys(cmd, args, map[string]func(string){
			"violates": func(v string) { s.Expect.Violates = p.list(cmd, "violates", v, KnownProperties) },
		}, map[string]*bool{"lost-buffers": &s.Expect.LostBuffers, "rare": &s.Expect.Rare})
	case "at":
		p.at(args)
	case "random":
		p.random(args)
	case "op":
		p.op(args)
	}
}

var needs = map[string]string{
	"name": "a name, Group/what", "description": "some text", "systems": "the systems it applies to (" + strings.Join(KnownSystems, ", ") + ")",
	"cluster": "settings (nodes=N ...)", "plant": "a planted bug (" + strings.Join(KnownBugs, ", ") + ")",
	"workload": "settings (range-clients=N ...)", "time-limit": "a duration", "recovery": "a duration",
	"promises": "properties (" + strings.Join(KnownProperties, ", ") + ")", "expect": "violates=PROPERTY, lost-buffers or rare",
	"modes": "modes (" + strings.Join(KnownModes, ", ") + ")", "seed": "a number, the run's seed when none is given",
}

// words checks a list of words against the known ones.
func (p *parser) words(cmd string, args, known []string) []string {
	ok := true
	for i, w := range args {
		switch {
		case !slices.Contains(known, w):
			p.errorf("%s: unknown %q (known: %s)", cmd, w, strings.Join(known, ", "))
			ok = false
		case slices.Contains(args[:i], w):
			p.errorf("%s: %s given twice", cmd, w)
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return args
}

// list splits a comma list and checks it against known (nil: any word).
func (p *parser) list(cmd, key, v string, known []string) []string {
	items := strings.Split(v, ",")
	ok := true
	for i, it := range items {
		switch {
		case it == "":
			p.errorf("%s: %s=%s has an empty item", cmd, key, v)
			ok = false
		case known != nil && !slices.Contains(known, it):
			p.errorf("%s: %s: unknown %q (known: %s)", cmd, key, it, strings.Join(known, ", "))
			ok = false
		case slices.Contains(items[:i], it):
			p.errorf("%s: %s: %s given twice", cmd, key, it)
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return items
}

// keys reads key=value settings and bare flags, each at most once.
func (p *parser) keys(cmd string, args []string, vals map[string]func(string), flags map[string]*bool) {
	seen := map[string]bool{}
	for _, a := range args {
		k, v, hasValue := strings.Cut(a, "=")
		if seen[k] {
			p.errorf("%s: %s given twice", cmd, k)
			continue
		}
		seen[k] = true
		if set, ok := vals[k]; ok {
			if !hasValue || v == "" {
				p.errorf("%s: %s needs a value (%s=...)", cmd, k, k)
				continue
			}
			set(v)
			continue
		}
		if f, ok := flags[k]; ok {
			if hasValue {
				p.errorf("%s: %s is a flag and takes no value", cmd, k)
				continue
			}
			*f = true
			continue
		}
		var known []string
		for k := range vals {
			known = append(known, k)
		}
		for k := range flags {
			known = append(known, k)
		}
		sort.Strings(known)
		p.errorf("%s: unknown key %q (known: %s)", cmd, k, strings.Join(known, " "))
	}
}

func (p *parser) duration(what, v string) (time.Duration, bool) {
	d, err := time.ParseDuration(v)
	if err != nil {
		p.errorf("%s: %q is not a duration (such as 1.5s or 200ms)", what, v)
		return 0, false
	}
	return d, true
}

// intIn parses an int in lo..hi.
func (p *parser) intIn(cmd, key, v string, lo, hi int) (int, bool) {
	n, err := strconv.Atoi(v)
	if err != nil {
		p.errorf("%s: %s=%s is not a whole number", cmd, key, v)
		return 0, false
	}
	if n < lo || n > hi {
		p.errorf("%s: %s=%d outside %d..%d", cmd, key, n, lo, hi)
		return 0, false
	}
	return n, true
}

func (p *parser) cluster(args []string) {
	c := &p.s.Cluster
	const cmd = "cluster"
	delay := func(key string, d *time.Duration, zeroOK bool) func(string) {
		return func(v string) {
			x, ok := p.duration(cmd+": "+key, v)
			switch {
			case !ok:
			case x < 0 || x > time.Hour || x == 0 && !zeroOK:
				lo := "(0s"
				if zeroOK {
					lo = "[0s"
				}
				p.errorf("%s: %s=%v outside %s, 1h]", cmd, key, x, lo)
			default:
				*d = x
			}
		}
	}
	oneOf := func(key string, dst *string, known []string) func(string) {
		return func(v string) {
			if !slices.Contains(known, v) {
				p.errorf("%s: %s=%s is not %s", cmd, key, v, strings.Join(known, " or "))
				return
			}
			*dst = v
		}
	}
	p.keys(cmd, args, map[string]func(string){
		"nodes": func(v string) {
			n, ok := p.intIn(cmd, "nodes", v, 1, 9)
			p.badNodes = p.badNodes || !ok
			c.Nodes = n
		},
		"r":       func(v string) { c.R, _ = p.intIn(cmd, "r", v, 1, 9) },
		"w":       func(v string) { c.W, _ = p.intIn(cmd, "w", v, 1, 9) },
		"write":   oneOf("write", &c.WriteRule, knownWriteRules),
		"persist": oneOf("persist", &c.Persist, knownPersist),
		"latency": delay("latency", &c.Latency, false),
		"jitter":  delay("jitter", &c.Jitter, true),
	}, map[string]*bool{"unsafe": &c.Unsafe, "read-first": &c.ReadFirst, "no-bootstrap-on-restart": &c.NoBootstrapOnRestart})
}

func (p *parser) workload(args []string) {
	w := &p.s.Workload
	const cmd = "workload"
	p.keys(cmd, args, map[string]func(string){
		"range-clients": func(v string) {
			p.clientsGiven = true
			n, ok := p.intIn(cmd, "range-clients", v, 0, 200)
			p.badClients = p.badClients || !ok
			w.RangeClients = n
		},
		"id-clients": func(v string) {
			p.clientsGiven = true
			n, ok := p.intIn(cmd, "id-clients", v, 0, 200)
			p.badClients = p.badClients || !ok
			w.IDClients = n
		},
		"sizes": func(v string) {
			var sizes []uint64
			for _, it := range strings.Split(v, ",") {
				n, err := strconv.ParseUint(it, 10, 64)
				if err != nil || n == 0 {
					p.errorf("%s: sizes=%s: %q is not a positive range size", cmd, v, it)
					return
				}
				sizes = append(sizes, n)
			}
			w.Sizes = sizes
		},
		"id-range-size": func(v string) {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || n == 0 {
				p.errorf("%s: id-range-size=%s is not a positive range size", cmd, v)
				return
			}
			w.IDRangeSize = n
		},
		"rate": func(v string) {
			r, err := strconv.ParseFloat(v, 64)
			if err != nil || !(r > 0 && r <= 10000) || math.IsInf(r, 0) {
				p.errorf("%s: rate=%s outside (0, 10000] operations a second", cmd, v)
				return
			}
			w.Rate = r
		},
		"op-timeout": func(v string) {
			d, ok := p.duration(cmd+": op-timeout", v)
			if ok && (d <= 0 || d > time.Hour) {
				p.errorf("%s: op-timeout=%v outside (0s, 1h]", cmd, d)
				return
			}
			w.OpTimeout = d
		},
		"names": func(v string) { w.Names = p.list(cmd, "names", v, nil) },
	}, nil)
	if w.RangeClients+w.IDClients > 200 {
		p.errorf("%s: %d clients in all, more than 200", cmd, w.RangeClients+w.IDClients)
		p.badClients = true
	}
}

// at reads "at T start F [targets] [for=D] [seed=N]", "at T stop F
// [targets]" and "at T heal-all".
func (p *parser) at(args []string) {
	if len(args) < 2 {
		p.errorf("at needs a time and a step: at 5s start FAULT [TARGETS], at 5s stop FAULT, at 5s heal-all")
		return
	}
	at, ok := p.duration("at", args[0])
	if !ok {
		return
	}
	if at < 0 {
		p.errorf("at %v: before the run begins", at)
		return
	}
	st := Step{At: at, Verb: args[1]}
	rest := args[2:]
	switch st.Verb {
	case HealAll:
		if len(rest) > 0 {
			p.errorf("heal-all takes nothing more, got %q", strings.Join(rest, " "))
			return
		}
	case Start, Stop:
		if len(rest) == 0 {
			p.errorf("%s needs a fault, such as partition-isolate", st.Verb)
			return
		}
		st.Fault = rest[0]
		var keys []string
		for _, a := range rest[1:] {
			if strings.Contains(a, "=") {
				keys = append(keys, a)
			} else {
				st.Targets = append(st.Targets, a)
			}
		}
		if st.Verb == Stop && len(keys) > 0 {
			p.errorf("stop takes a fault and its targets, not %q", strings.Join(keys, " "))
			return
		}
		bad := len(p.errs)
		p.keys(st.Verb, keys, map[string]func(string){
			"for": func(v string) {
				if d, ok := p.duration("for", v); ok {
					if d <= 0 {
						p.errorf("for=%v must be positive", d)
					}
					st.For = d
				}
			},
			"seed": func(v string) {
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					p.errorf("seed=%s is not a number in 0..2^64-1", v)
					return
				}
				st.Seed = &n
			},
		}, nil)
		if len(p.errs) > bad {
			return
		}
		if _, err := nemesis.Targeted(st.Fault, st.Targets); err != nil {
			p.errorf("%s", faultError(st.Fault, err))
			return
		}
	default:
		p.errorf("unknown step %q (known: %s, %s, %s)", st.Verb, Start, Stop, HealAll)
		return
	}
	p.s.Steps = append(p.s.Steps, st)
	p.stepLines = append(p.stepLines, p.line)
}

// random reads "random A..B faults=F,G [interval=D] [for=D] [in-turn]".
func (p *parser) random(args []string) {
	if len(args) == 0 {
		p.errorf("random needs a window and faults: random 0s..24s faults=crash-one,pause")
		return
	}
	from, to, ok := strings.Cut(args[0], "..")
	if !ok {
		p.errorf("random: %q is not a window such as 0s..24s", args[0])
		return
	}
	st := Step{Verb: Random}
	var okA, okB bool
	st.At, okA = p.duration("random", from)
	st.Until, okB = p.duration("random", to)
	if !okA || !okB {
		return
	}
	if st.At < 0 || st.Until <= st.At {
		p.errorf("random: window %v..%v is empty or starts before the run", st.At, st.Until)
		return
	}
	bad := len(p.errs)
	positive := func(key string, d *time.Duration) func(string) {
		return func(v string) {
			if x, ok := p.duration("random: "+key, v); ok {
				if x <= 0 {
					p.errorf("random: %s=%v must be positive", key, x)
				}
				*d = x
			}
		}
	}
	p.keys("random", args[1:], map[string]func(string){
		"faults": func(v string) {
			st.Faults = p.list("random", "faults", v, nil)
			for _, f := range st.Faults {
				if _, err := nemesis.Lookup(f); err != nil {
					p.errorf("random: %s", faultError(f, err))
				}
			}
		},
		"interval": positive("interval", &st.Interval),
		"for":      positive("for", &st.For),
	}, map[string]*bool{"in-turn": &st.InTurn})
	if len(p.errs) > bad {
		return
	}
	if len(st.Faults) == 0 {
		p.errorf("random: no faults= to draw from")
		return
	}
	p.s.Steps = append(p.s.Steps, st)
	p.stepLines = append(p.stepLines, p.line)
}

// op reads "op T cN nM NAME" (a range client) and "op T kN" (an ID
// client); the clients, nodes and names are checked once the whole
// script is read.
func (p *parser) op(args []string) {
	if len(args) < 2 {
		p.errorf("op needs a time and a client: op 1s c1 n2 NAME, or op 1s k1")
		return
	}
	at, ok := p.duration("op", args[0])
	if !ok {
		return
	}
	if at < 0 {
		p.errorf("op at %v: before the run begins", at)
		return
	}
	p.ops = append(p.ops, rawOp{line: p.line, at: at, args: args[1:]})
}

// resolve checks what depends on the whole script: names, quorums,
// targets against the nodes, the timeline against the time limit, and
// the operations against the clients.
func (p *parser) resolve() {
	s := &p.s
	if s.Name == "" && p.once["name"] == 0 {
		p.errs = append(p.errs, &Error{File: p.file, Msg: "no name line (name Group/what)"})
	}
	p.quorum()
	w := s.Workload
	if p.clientsGiven && !p.badClients && w.RangeClients == 0 && w.IDClients == 0 {
		p.errorAt(p.once["workload"], "workload: no clients (leave both counts out for %d range clients)", DefaultRangeClients)
		p.badClients = true
	}
	limit, recovery := s.Times()
	if !p.badTimes && recovery >= limit {
		p.errorAt(max(p.once["recovery"], p.once["time-limit"]), "recovery %v is not shorter than the time limit %v", recovery, limit)
		p.badTimes = true
	}
	p.timeline(limit, recovery)
	p.resolveOps(limit)
}

func (p *parser) quorum() {
	c := p.s.Cluster
	line := p.once["cluster"]
	if p.badNodes || line == 0 {
		return
	}
	n := c.Nodes
	if n == 0 {
		n = DefaultNodes
	}
	r, w := c.R, c.W
	for _, x := range []struct {
		k string
		v int
	}{{"r", r}, {"w", w}} {
		if x.v > n {
			p.errorAt(line, "cluster: %s=%d is more than the %d nodes", x.k, x.v, n)
			return
		}
	}
	if r == 0 {
		r = n/2 + 1
	}
	if w == 0 {
		w = n/2 + 1
	}
	switch {
	case c.Unsafe:
	case r+w <= n:
		p.errorAt(line, "cluster: r=%d w=%d on %d nodes: reads can miss the latest write (say unsafe to allow it)", r, w, n)
	case 2*w <= n:
		p.errorAt(line, "cluster: w=%d is not a majority of %d nodes: two writes can both succeed (say unsafe to allow it)", w, n)
	}
}

func (p *parser) timeline(limit, recovery time.Duration) {
	s := &p.s
	end := limit - recovery
	nodes := s.nodes()
	_, clients := s.clients()
	for i, st := range s.Steps {
		line := p.stepLines[i]
		if i > 0 && st.At < s.Steps[i-1].At {
			p.errorAt(line, "at %v: time goes backwards (line %d is at %v)", st.At, p.stepLines[i-1], s.Steps[i-1].At)
		}
		if !p.badTimes {
			when := fmt.Sprintf("the faults end at %v (time limit %v, recovery %v)", end, limit, recovery)
			switch {
			case st.At >= limit:
				p.errorAt(line, "at %v: past the time limit %v", st.At, limit)
			case st.At > end || st.Verb != Stop && st.Verb != HealAll && st.At == end:
				p.errorAt(line, "at %v: in the recovery, when every fault is healed: %s", st.At, when)
			case st.Verb == Random && st.Until > end:
				p.errorAt(line, "random %v..%v: ends after %s", st.At, st.Until, when)
			case st.Verb == Start && st.At+st.For > end:
				p.errorAt(line, "at %v: %s for=%v stays on until %v, after %s", st.At, st.Fault, st.For, st.At+st.For, when)
			}
		}
		if p.badNodes || p.badClients {
			continue
		}
		faults := st.Faults
		if st.Verb == Start {
			faults = []string{st.Fault}
		}
		for _, name := range faults {
			f, err := nemesis.Targeted(name, st.Targets)
			if err == nil {
				err = nemesis.Fits(f, nodes)
			}
			if err == nil {
				err = nemesis.CheckTargets(f, nodes, clients)
			}
			if err != nil {
				p.errorAt(line, "%s", strings.TrimPrefix(err.Error(), "nemesis: "))
			}
		}
	}
	_, bad := pair(s.Steps, end, func(i int) string { return fmt.Sprintf("line %d", p.stepLines[i]) })
	for i, msg := range bad {
		p.errorAt(p.stepLines[i], "at %v: %s", s.Steps[i].At, msg)
	}
}

func (p *parser) resolveOps(limit time.Duration) {
	s := &p.s
	if len(p.ops) == 0 || p.badNodes || p.badClients {
		return
	}
	rc, kc := s.clients()
	nodes, names := s.nodes(), s.names()
	known := func() string {
		var parts []string
		for _, xs := range [][]string{rc, kc} {
			if len(xs) > 0 {
				parts = append(parts, span(xs))
			}
		}
		return strings.Join(parts, " ")
	}
	ops := make([]Op, 0, len(p.ops))
	for i, o := range p.ops {
		if i > 0 && o.at < p.ops[i-1].at {
			p.errorAt(o.line, "op at %v: time goes backwards (line %d is at %v)", o.at, p.ops[i-1].line, p.ops[i-1].at)
		}
		if !p.badTimes && o.at >= limit {
			p.errorAt(o.line, "op at %v: past the time limit %v", o.at, limit)
		}
		client, args := o.args[0], o.args[1:]
		if k := slices.Index(rc, client); k >= 0 {
			if len(args) != 2 {
				p.errorAt(o.line, "op: range client %s needs a node and a sequence name: op %v %s n1 %s", client, o.at, client, names[0])
				continue
			}
			node := slices.Index(nodes, args[0])
			if node < 0 {
				p.errorAt(o.line, "op: %s names no node (%s)", args[0], span(nodes))
			}
			if !slices.Contains(names, args[1]) {
				p.errorAt(o.line, "op: %s is not a sequence of the workload (%s)", args[1], strings.Join(names, ", "))
			}
			ops = append(ops, Op{At: o.at, Client: k, Node: node, Name: args[1]})
			continue
		}
		if k := slices.Index(kc, client); k >= 0 {
			if len(args) != 0 {
				p.errorAt(o.line, "op: ID client %s takes no node or name, got %q", client, strings.Join(args, " "))
				continue
			}
			ops = append(ops, Op{At: o.at, Client: len(rc) + k})
			continue
		}
		p.errorAt(o.line, "op: %s names no client (%s)", client, known())
	}
	s.Ops = ops
}

// faultError says what is wrong with a fault's name or targets. An
// unknown name gets a suggestion rather than the whole registry, which
// grows.
func faultError(name string, err error) string {
	for _, part := range strings.Split(name, "+") {
		if _, ok := nemesis.Registry[part]; ok {
			continue
		}
		var near []string
		for _, known := range nemesis.Names() {
			if part != "" && (strings.Contains(known, part) || strings.Contains(part, known)) {
				near = append(near, known)
			}
		}
		if len(near) > 0 {
			return fmt.Sprintf("unknown fault %q (did you mean %s?)", part, strings.Join(near, " or "))
		}
		return fmt.Sprintf("unknown fault %q (nemesis.Registry names the faults)", part)
	}
	return strings.TrimPrefix(err.Error(), "nemesis: ")
}

// span names a list: in full when short, else by its ends.
func span(xs []string) string {
	if len(xs) <= 3 {
		return strings.Join(xs, " ")
	}
	return xs[0] + ".." + xs[len(xs)-1]
}
