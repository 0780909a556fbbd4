package script

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Script is one scenario as a script says it. A zero field is one the
// script leaves out, and means what the catalogue's default means: the
// package does not fill defaults in, so that a script prints back as it
// was written.
type Script struct {
	Name        string // "Group/what"
	Description string
	// Systems are the systems under test it applies to; empty: all.
	Systems  []string
	Cluster  Cluster
	Workload Workload
	// TimeLimit is the run's length (0: 30s), Recovery its final part,
	// with every fault healed (0: a fifth of the time limit).
	// NoRecovery, "recovery 0s", lets faults last to the end: a shrunk
	// run's, cut short where its violation was.
	TimeLimit  time.Duration
	Recovery   time.Duration
	NoRecovery bool
	// Seed, when not nil, is the run's seed when none is given (a shrunk
	// run's); nil: one fixed by the name.
	Seed     *int64
	Promises []string // empty: the catalogue's default promises
	Expect   Expect
	Modes    []string // empty: every mode that can run it
	// Steps is the timeline, in time order.
	Steps []Step
	// Ops, when not empty, is the workload spelt out: exactly these
	// client operations, in time order (sim.Config.Ops).
	Ops []Op
}

// Cluster is the system under test.
type Cluster struct {
	Nodes                int  // 0: 3
	R, W                 int  // 0: a majority
	Unsafe               bool // allow R and W that do not overlap
	WriteRule            string
	Persist              string
	Planted              []string // planted bugs, by name (Bugs)
	ReadFirst            bool
	NoBootstrapOnRestart bool
	Latency, Jitter      time.Duration // Latency 0: 1ms
}

// Workload is the clients.
type Workload struct {
	RangeClients int // range and ID clients both 0: 5 range clients
	Sizes        []uint64
	IDClients    int
	IDRangeSize  uint64
	Rate         float64 // per client per second; 0: 10
	OpTimeout    time.Duration
	Names        []string // empty: "default"
}

// Expect is the verdict the run must reach.
type Expect struct {
	Violates    []string // properties a planted bug must break
	LostBuffers bool
	Rare        bool
}

// The verbs of a Step.
const (
	Start   = "start"    // start Fault on Targets (none: drawn)
	Stop    = "stop"     // stop Fault (the one on Targets, if given)
	HealAll = "heal-all" // stop every fault a start left on
	Random  = "random"   // a seeded random schedule from At to Until
)

// Step is one line of the timeline.
type Step struct {
	At   time.Duration
	Verb string
	// Fault is the registered fault a start or stop names.
	Fault   string
	Targets []string
	// For, on a start, stops the fault that much later (0: at its stop,
	// a heal-all, or the end of the faults); on a random schedule it is
	// how long each fault stays on (0: 3s).
	For time.Duration
	// Seed, on a start without targets, fixes its draw; nil: the run's
	// seed draws them.
	Seed *uint64
	// A random schedule draws from Faults, in turn with InTurn, a fault
	// after every quiet Interval (0: 3s) from At, starting none at or
	// after Until.
	Until    time.Duration
	Faults   []string
	Interval time.Duration
	InTurn   bool
}

// Op is one client operation of a spelt-out workload, as sim.OpSpec:
// Client numbers the clients, range clients first (c1 is 0), then ID
// clients (k1 is the number of range clients); Node (n1 is 0) and Name
// say where a range client sends its NextRange.
type Op struct {
	At     time.Duration
	Client int
	Node   int
	Name   string
}

// Defaults the package needs to check a script: the catalogue's.
const (
	DefaultNodes        = 3
	DefaultRangeClients = 5
	DefaultTimeLimit    = 30 * time.Second
	DefaultName         = "default"
)

// Times returns the time limit and the recovery, defaults filled in:
// the faults end at limit-recovery.
func (s *Script) Times() (limit, recovery time.Duration) {
	limit, recovery = s.TimeLimit, s.Recovery
	if limit == 0 {
		limit = DefaultTimeLimit
	}
	if s.NoRecovery {
		return limit, 0
	}
	if recovery == 0 {
		recovery = limit / 5
	}
	return limit, recovery
}

// nodes returns the node names n1..nN.
func (s *Script) nodes() []string {
	n := s.Cluster.Nodes
	if n == 0 {
		n = DefaultNodes
	}
	return numbered("n", n)
}

// clients returns the range clients' and the ID clients' names.
func (s *Script) clients() (rangeClients, idClients []string) {
	r, k := s.Workload.RangeClients, s.Workload.IDClients
	if r == 0 && k == 0 {
		r = DefaultRangeClients
	}
	return numbered("c", r), numbered("k", k)
}

func (s *Script) names() []string {
	if len(s.Workload.Names) == 0 {
		return []string{DefaultName}
	}
	return s.Workload.Names
}

func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i+1)
	}
	return out
}

// Window is one fault of the explicit timeline: a start, and its stop
// For later.
type Window struct {
	At, For time.Duration
	Fault   string
	Targets []string
	Seed    *uint64
}

// Windows pairs every start of the timeline with what stops it: its For,
// a stop, a heal-all, or else the end of the faults. They come in the
// order of their starts. Random schedules are not among them.
func (s *Script) Windows() []Window {
	limit, recovery := s.Times()
	ws, _ := pair(s.Steps, limit-recovery, func(int) string { return "" })
	return ws
}

// pair matches starts with stops. It returns the windows and, for each
// step it cannot make sense of, what is wrong; where(i) says where step i
// is.
func pair(steps []Step, end time.Duration, where func(i int) string) ([]Window, map[int]string) {
	var ws []Window
	bad := map[int]string{}
	var on []int          // indices into ws of the faults on, in start order
	from := map[int]int{} // index into ws: index into steps
	key := func(fault string, targets []string) string { return fault + " " + strings.Join(targets, " ") }
	stop := func(k int, at time.Duration) {
		ws[on[k]].For = at - ws[on[k]].At
		on = append(on[:k], on[k+1:]...)
	}
	for i, st := range steps {
		// A start with a For is off from its At+For on.
		for k := 0; k < len(on); {
			if w := ws[on[k]]; w.For > 0 && w.At+w.For <= st.At {
				on = append(on[:k], on[k+1:]...)
				continue
			}
			k++
		}
		switch st.Verb {
		case Start:
			if k := slices.IndexFunc(on, func(j int) bool { return key(ws[j].Fault, ws[j].Targets) == key(st.Fault, st.Targets) }); k >= 0 {
				bad[i] = fmt.Sprintf("start %s, which is already on (since %s)", describe(st.Fault, st.Targets), where(from[on[k]]))
				continue
			}
			from[len(ws)] = i
			ws = append(ws, Window{At: st.At, For: st.For, Fault: st.Fault, Targets: st.Targets, Seed: st.Seed})
			on = append(on, len(ws)-1)
		case Stop:
			var match []int
			for k, j := range on {
				if ws[j].Fault == st.Fault && (len(st.Targets) == 0 || key(ws[j].Fault, ws[j].Targets) == key(st.Fault, st.Targets)) {
					match = append(match, k)
				}
			}
			switch {
			case len(match) == 0:
				bad[i] = fmt.Sprintf("stop %s, which is not on", describe(st.Fault, st.Targets))
			case len(match) > 1:
				var which []string
				for _, k := range match {
					which = append(which, describe(ws[on[k]].Fault, ws[on[k]].Targets)+" (since "+where(from[on[k]])+")")
				}
				bad[i] = fmt.Sprintf("stop %s: which one? %s are on; name its targets", st.Fault, strings.Join(which, " and "))
			case ws[on[match[0]]].For > 0:
				bad[i] = fmt.Sprintf("stop %s, which stops by itself (for=%v, since %s)", describe(st.Fault, st.Targets),
					ws[on[match[0]]].For, where(from[on[match[0]]]))
			default:
				stop(match[0], st.At)
			}
		case HealAll:
			for len(on) > 0 {
				stop(0, st.At)
			}
		}
	}
	for k := 0; k < len(on); {
		if ws[on[k]].For > 0 {
			k++
			continue
		}
		stop(k, end)
	}
	return ws, bad
}

func describe(fault string, targets []string) string {
	if len(targets) == 0 {
		return fault
	}
	return fault + " " + strings.Join(targets, " ")
}

// Format prints the script in the form Parse reads: one command per
// line, in a fixed order, leaving out what is zero.
func (s *Script) Format() []byte {
	var b bytes.Buffer
	line := func(words ...string) {
		var out []string
		for _, w := range words {
			if w != "" {
				out = append(out, w)
			}
		}
		if len(out) > 1 {
			b.WriteString(strings.Join(out, " "))
			b.WriteByte('\n')
		}
	}
	line("name", s.Name)
	line("description", s.Description)
	line("systems", strings.Join(s.Systems, " "))

	c := s.Cluster
	line("cluster", kv("nodes", c.Nodes), kv("r", c.R), kv("w", c.W), onFlag("unsafe", c.Unsafe),
		str("write", c.WriteRule), str("persist", c.Persist), onFlag("read-first", c.ReadFirst),
		onFlag("no-bootstrap-on-restart", c.NoBootstrapOnRestart), dur("latency", c.Latency), dur("jitter", c.Jitter))
	line("plant", strings.Join(c.Planted, " "))

	w := s.Workload
	var sizes []string
	for _, n := range w.Sizes {
		sizes = append(sizes, strconv.FormatUint(n, 10))
	}
	rate := ""
	if w.Rate != 0 {
		rate = "rate=" + strconv.FormatFloat(w.Rate, 'g', -1, 64)
	}
	idRange := ""
	if w.IDRangeSize != 0 {
		idRange = "id-range-size=" + strconv.FormatUint(w.IDRangeSize, 10)
	}
	line("workload", kv("range-clients", w.RangeClients), str("sizes", strings.Join(sizes, ",")),
		kv("id-clients", w.IDClients), idRange, rate, dur("op-timeout", w.OpTimeout), str("names", strings.Join(w.Names, ",")))

	line("time-limit", durWord(s.TimeLimit))
	if s.NoRecovery {
		line("recovery", "0s")
	} else {
		line("recovery", durWord(s.Recovery))
	}
	line("promises", strings.Join(s.Promises, " "))
	e := s.Expect
	line("expect", str("violates", strings.Join(e.Violates, ",")), onFlag("lost-buffers", e.LostBuffers), onFlag("rare", e.Rare))
	line("modes", strings.Join(s.Modes, " "))
	if s.Seed != nil {
		line("seed", strconv.FormatInt(*s.Seed, 10))
	}

	if len(s.Steps) > 0 {
		b.WriteByte('\n')
	}
	for _, st := range s.Steps {
		switch st.Verb {
		case Random:
			line(st.Verb, fmtDur(st.At)+".."+fmtDur(st.Until), str("faults", strings.Join(st.Faults, ",")),
				dur("interval", st.Interval), dur("for", st.For), onFlag("in-turn", st.InTurn))
		default:
			seed := ""
			if st.Seed != nil {
				seed = "seed=" + strconv.FormatUint(*st.Seed, 10)
			}
			line("at", fmtDur(st.At), st.Verb, st.Fault, strings.Join(st.Targets, " "), dur("for", st.For), seed)
		}
	}

	if len(s.Ops) > 0 {
		b.WriteByte('\n')
	}
	rc, _ := s.clients()
	for _, o := range s.Ops {
		if o.Client < len(rc) {
			line("op", fmtDur(o.At), "c"+strconv.Itoa(o.Client+1), "n"+strconv.Itoa(o.Node+1), o.Name)
		} else {
			line("op", fmtDur(o.At), "k"+strconv.Itoa(o.Client-len(rc)+1))
		}
	}
	return b.Bytes()
}

// String is the script as Format prints it.
func (s *Script) String() string { return string(s.Format()) }

func kv(k string, v int) string {
	if v == 0 {
		return ""
	}
	return k + "=" + strconv.Itoa(v)
}

func str(k, v string) string {
	if v == "" {
		return ""
	}
	return k + "=" + v
}

func dur(k string, d time.Duration) string {
	if d == 0 {
		return ""
	}
	return k + "=" + fmtDur(d)
}

func durWord(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return fmtDur(d)
}

// fmtDur is d as time.ParseDuration reads it, without the zero minutes
// and seconds of whole hours and minutes: 1m, not 1m0s.
func fmtDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func onFlag(k string, on bool) string {
	if on {
		return k
	}
	return ""
}
