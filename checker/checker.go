package checker

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/checker/history"
)

// Valid is a check's verdict: true, false, or unknown when the check could
// not decide (a timeout, unreadable input). Unknown is never valid.
type Valid string

// The verdicts.
const (
	ValidTrue    Valid = "true"
	ValidFalse   Valid = "false"
	ValidUnknown Valid = "unknown"
)

// MarshalJSON writes true and false as booleans, unknown as a string.
func (v Valid) MarshalJSON() ([]byte, error) {
	switch v {
	case ValidTrue:
		return []byte("true"), nil
	case ValidFalse:
		return []byte("false"), nil
	}
	return []byte(`"unknown"`), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (v *Valid) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true":
		*v = ValidTrue
	case "false":
		*v = ValidFalse
	case `"unknown"`:
		*v = ValidUnknown
	default:
		return errors.Errorf("valid: %s is not true, false or \"unknown\"", b)
	}
	return nil
}

// worse returns the worse of two verdicts: false, then unknown, then true.
func worse(a, b Valid) Valid {
	rank := map[Valid]int{ValidTrue: 0, ValidUnknown: 1, ValidFalse: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// Result is one check's finding.
type Result struct {
	Valid  Valid
	Reason string
	// Ops are the indices of the offending events (completions), sorted.
	Ops []int64
	// Details are the check's own figures; their fields are written beside
	// valid, reason and ops in JSON.
	Details any
}

// MaxOps caps the offending operations a result lists.
const MaxOps = 200

// MarshalJSON flattens Details into the object.
func (r Result) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	if r.Details != nil {
		b, err := json.Marshal(r.Details)
		if err != nil {
			return nil, err
		}
		var dm map[string]json.RawMessage
		if json.Unmarshal(b, &dm) == nil {
			for k, v := range dm {
				m[k] = v
			}
		} else {
			m["details"] = json.RawMessage(b)
		}
	}
	m["valid"], m["reason"] = r.Valid, r.Reason
	ops := r.Ops
	if ops == nil {
		ops = []int64{}
	}
	m["ops"] = ops
	return json.Marshal(m)
}

// Property names a caller can promise; each is also the name of the
// check that decides it, in Results.Checks, results.json and every block.
const (
	Unique       = "unique"
	Linearizable = "linearizable"
	Monotonic    = "monotonic"
	GapFree      = "gap-free"
	// Live: once the last fault has healed, the cluster serves again
	// within Options.LiveWithin.
	Live = "live"
)

// DefaultPromises hold a bare history to uniqueness, linearizability and
// monotonicity; gaps are reported but do not fail it.
var DefaultPromises = []string{Unique, Linearizable, Monotonic}

// Options tune Check.
type Options struct {
	// Promises are the properties the system promises; nil means
	// DefaultPromises. Only promised properties decide the verdict.
	Promises []string
	// Timeout bounds the checks; a check that runs out says unknown.
	// Default one minute.
	Timeout time.Duration
	// PorcupineLimit is the most next-range operations (per sequence)
	// handed to porcupine; beyond it only the direct checker runs. Default
	// 20,000; negative: never run porcupine.
	PorcupineLimit int
	// PorcupineTimeout bounds porcupine on one sequence, within Timeout.
	// Porcupine only confirms the direct checker, which decides alone when
	// porcupine runs out, and its search grows exponentially with the
	// operations in flight at once: on 1,000 operations it takes 20 ms
	// with 10 in flight, 0.25 s with 16, 19 s with 24, and more than 20 s
	// with 32. Default 10 s.
	PorcupineTimeout time.Duration
	// VisualizeDir, when set, receives porcupine's HTML visualization of a
	// non-linearizable sequence, VisualizePrefix+"linearizable-NAME.html",
	// with the fault windows drawn on it.
	VisualizeDir string
	// VisualizePrefix starts the visualization's file name. CheckDir sets
	// it to "STEM." for a bare history file STEM.jsonl, so that histories
	// sharing a folder keep their own.
	VisualizePrefix string
	// LiveWithin is the time the live check gives the cluster, after the
	// last fault event, to serve every operation again; default
	// DefaultLiveWithin.
	LiveWithin time.Duration
}

// WithDefaults fills unset fields.
func (o Options) WithDefaults() Options {
	if o.Promises == nil {
		o.Promises = DefaultPromises
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Minute
	}
	if o.PorcupineLimit == 0 {
		o.PorcupineLimit = 20000
	}
	if o.PorcupineTimeout <= 0 {
		o.PorcupineTimeout = 10 * time.Second
	}
	if o.LiveWithin <= 0 {
		o.LiveWithin = DefaultLiveWithin
	}
	return o
}

// Validate rejects unknown properties.
func (o Options) Validate() error {
	for _, p := range o.Promises {
		if !contains(Properties, p) {
			return errors.Errorf("unknown property %q (known: %s)", p, strings.Join(Properties, ", "))
		}
	}
	return nil
}

// Results is the verdict on a history.
type Results struct {
	// Valid composes the promised checks: false if one is false, unknown
	// if one is unknown, the history had malformed lines or it had no
	// client operation to check, else true.
	Valid Valid `json:"valid"`
	// Reason says why the verdict is unknown when no check is: it is
	// NothingToCheck for a history without a client operation.
	Reason   string            `json:"reason,omitempty"`
	Promises []string          `json:"promises"`
	Checks   map[string]Result `json:"checks"`
	// Stats are also under Checks[StatsCheck].
	Stats Stats `json:"-"`
	// Names are the sequences checked.
	Names []string `json:"names"`
	// Visualizations are porcupine's HTML views of the sequences that are
	// not linearizable, when Options.VisualizeDir asked for them.
	Visualizations []string `json:"visualizations,omitempty"`
	// Malformed are the lines that could not be used.
	Malformed []history.LineError `json:"malformed,omitempty"`
	Events    int                 `json:"events"`
	Duration  time.Duration       `json:"check_ns"`
}

// NothingToCheck is the reason of the unknown verdict on a history with
// no client operation: empty, or only the nemesis's events.
const NothingToCheck = "no client operations: nothing to check"

// op is one client operation: an invoke and its completion, if any.
type op struct {
	proc     int
	f        string
	name     string
	n        uint64
	inv, end int   // positions in the history; end -1 when it never completed
	invIdx   int64 // event indices
	endIdx   int64
	typ      string // ok, fail, info; "" when it never completed (as info)
	from, to uint64
	id       uint64
	buffer   bool
	latency  int64
}

// ref is the index to report for an op: its completion, else its invoke.
func (o *op) ref() int64 {
	if o.end >= 0 {
		return o.endIdx
	}
	return o.invIdx
}

// unknown reports whether the op may or may not have happened.
func (o *op) unknown() bool { return o.typ == history.Info || o.typ == "" }

// seqOps are one sequence's operations.
type seqOps struct {
	name   string
	ranges []*op // next-range, invoke order
	ids    []*op // next-id, invoke order
}

// collect pairs invokes with completions and splits them by sequence.
func collect(events []history.Event) (map[string]*seqOps, []*op) {
	seqs := map[string]*seqOps{}
	inflight := map[int]*op{}
	var all []*op
	for pos, e := range events {
		if e.Nemesis {
			continue
		}
		if e.Type == history.Invoke {
			o := &op{proc: e.Process, f: e.F, inv: pos, invIdx: e.Index, end: -1}
			switch e.F {
			case history.NextRange:
				v, err := e.Range()
				if err != nil {
					continue
				}
				o.name, o.n, o.buffer = v.Name, v.N, v.Buffer
			case history.NextID:
				v, err := e.ID()
				if err != nil {
					continue
				}
				o.name = v.Name
			default:
				continue
			}
			inflight[e.Process] = o
			s := seqs[o.name]
			if s == nil {
				s = &seqOps{name: o.name}
				seqs[o.name] = s
			}
			if o.f == history.NextRange {
				s.ranges = append(s.ranges, o)
			} else {
				s.ids = append(s.ids, o)
			}
			all = append(all, o)
			continue
		}
		o := inflight[e.Process]
		if o == nil || o.f != e.F {
			continue
		}
		delete(inflight, e.Process)
		o.end, o.endIdx, o.typ = pos, e.Index, e.Type
		o.latency = e.Time - events[o.inv].Time
		if e.Type != history.Ok {
			continue
		}
		switch e.F {
		case history.NextRange:
			if v, err := e.Range(); err == nil {
				o.from, o.to = v.From, v.To
				o.buffer = o.buffer || v.Buffer
			}
		case history.NextID:
			if v, err := e.ID(); err == nil {
				o.id = v.ID
			}
		}
	}
	return seqs, all
}

// Check runs every check on a parsed history.
func Check(events []history.Event, opts Options) Results {
	start := time.Now()
	opts = opts.WithDefaults()
	deadline := start.Add(opts.Timeout)
	seqs, all := collect(events)
	names := make([]string, 0, len(seqs))
	for n := range seqs {
		names = append(names, n)
	}
	sort.Strings(names)

	perName := map[string][]namedResult{}
	add := func(check, name string, r Result) {
		perName[check] = append(perName[check], namedResult{name, r})
	}
	var faults []porcupine.Annotation
	if opts.VisualizeDir != "" {
		faults = faultAnnotations(events)
	}
	var views []string
	for _, name := range names {
		s := seqs[name]
		add(Unique, name, checkUnique(s))
		lin := checkLinearizable(s, faults, opts, deadline)
		if d, ok := lin.Details.(LinearizableDetails); ok && d.Visualization != "" {
			views = append(views, d.Visualization)
		}
		add(Linearizable, name, lin)
		add(Monotonic, name, checkMonotonic(s))
		add(GapFree, name, checkGaps(s, opts))
	}
	res := Results{
		Promises: opts.Promises, Checks: map[string]Result{}, Names: names, Events: len(events),
		Visualizations: views,
	}
	for _, check := range Properties {
		if check != Live {
			res.Checks[check] = merge(check, perName[check])
		}
	}
	res.Checks[Live] = checkLive(events, all, opts.LiveWithin)
	res.Stats = stats(events, all)
	res.Checks[StatsCheck] = Result{Valid: ValidTrue, Reason: res.Stats.line(), Details: res.Stats}
	res.Valid = ValidTrue
	for _, p := range opts.Promises {
		r, ok := res.Checks[p]
		if !ok {
			r.Valid = ValidUnknown
		}
		res.Valid = worse(res.Valid, r.Valid)
	}
	if len(all) == 0 {
		// Each check holds of nothing, vacuously; a verdict of valid
		// would vouch for a run that tested nothing.
		res.Valid, res.Reason = ValidUnknown, NothingToCheck
	}
	res.Duration = time.Since(start)
	return res
}

// withMalformed folds unusable lines into the verdict: the checks saw only
// part of the history, so they can refute it but not vouch for it. A
// truncated last line alone does not count: a run that died mid-write
// leaves one, and the rest is whole.
func (r *Results) withMalformed(problems []history.LineError) {
	r.Malformed = problems
	for _, p := range problems {
		if strings.HasPrefix(p.Msg, history.Truncated) {
			continue
		}
		r.Valid = worse(r.Valid, ValidUnknown)
	}
}

type namedResult struct {
	name string
	r    Result
}

// merge composes one check over every sequence.
func merge(check string, rs []namedResult) Result {
	out := Result{Valid: ValidTrue}
	if len(rs) == 0 {
		out.Reason = "no operations"
		if check == GapFree {
			out.Details = GapDetails{}
		}
		return out
	}
	if len(rs) == 1 {
		return rs[0].r
	}
	var reasons []string
	var gd GapDetails
	for _, nr := range rs {
		out.Valid = worse(out.Valid, nr.r.Valid)
		out.Ops = append(out.Ops, nr.r.Ops...)
		if nr.r.Valid != ValidTrue || check == GapFree {
			reasons = append(reasons, nr.name+": "+nr.r.Reason)
		}
		if g, ok := nr.r.Details.(GapDetails); ok {
			gd.add(g)
		}
	}
	sort.Slice(out.Ops, func(i, j int) bool { return out.Ops[i] < out.Ops[j] })
	if len(out.Ops) > MaxOps {
		out.Ops = out.Ops[:MaxOps]
	}
	if len(reasons) == 0 {
		out.Reason = fmt.Sprintf("holds for all %d sequences", len(rs))
	} else {
		out.Reason = strings.Join(reasons, "; ")
	}
	if check == GapFree {
		out.Details = gd
	} else {
		details := map[string]any{}
		for _, nr := range rs {
			if nr.r.Details != nil {
				details[nr.name] = nr.r.Details
			}
		}
		if len(details) > 0 {
			out.Details = map[string]any{"by_sequence": details}
		}
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// capOps sorts, dedups and caps indices.
func capOps(ops []int64) []int64 {
	sort.Slice(ops, func(i, j int) bool { return ops[i] < ops[j] })
	out := ops[:0]
	for i, o := range ops {
		if i == 0 || o != ops[i-1] {
			out = append(out, o)
		}
	}
	if len(out) > MaxOps {
		out = out[:MaxOps]
	}
	return out
}
