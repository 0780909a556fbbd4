package checker

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
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
	// NodeOrder: each node that issues IDs issues them in real-time
	// order: a range that completed at a node before another was invoked
	// there holds only IDs below the other's. Flake IDs promise it, and
	// not a global order.
	NodeOrder = "node-order"
)

// SparseReason is the reason of the gap-free check when Options.Sparse
// says the system's IDs are sparse by design.
const SparseReason = "IDs are sparse by design"

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
	// Sparse says that the system's IDs are sparse by design, as Flake
	// IDs (a timestamp, a node and a counter) are: the gap-free check
	// does not look for gaps, counts no ID lost, and is n/a with
	// SparseReason. Such a system cannot promise gap-free.
	Sparse bool
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
		if p == GapFree && o.Sparse {
			return errors.Errorf("%s cannot be promised: %s", GapFree, SparseReason)
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
	// Duration is the time the check took: from the first event read
	// when it streamed the history (CheckDir, CheckReader).
	Duration time.Duration `json:"check_ns"`
}

// NothingToCheck is the reason of the unknown verdict on a history with
// no client operation: empty, or only the nemesis's events.
const NothingToCheck = "no client operations: nothing to check"

// op is one client operation: an invoke and its completion, if any. It
// is all a check keeps of two events, and a history holds millions, so
// it is small: no strings, no JSON.
type op struct {
	from, to uint64 // next-range on ok: [from, to)
	id       uint64 // next-id on ok
	n        uint64 // next-range's size
	inv, end int    // positions in the history; end -1 when it never completed
	invIdx   int64  // event indices
	endIdx   int64
	invTime  int64 // ns, the history's clock
	endTime  int64
	proc     int
	node     int32 // the completion's node, in stream.nodes; -1 for none
	f        fn
	typ      outcome
	buffer   bool
}

// fn is a client operation: next-range or next-id.
type fn uint8

const (
	fnRange fn = iota
	fnID
	fnCount // the number of fns
)

func (f fn) String() string {
	if f == fnID {
		return history.NextID
	}
	return history.NextRange
}

// outcome is how an op completed.
type outcome uint8

const (
	pending outcome = iota // never completed (counts as info)
	okOutcome
	failOutcome
	infoOutcome
	outcomeCount // the number of outcomes
)

// String is the history's type, "" for pending.
func (t outcome) String() string {
	switch t {
	case okOutcome:
		return history.Ok
	case failOutcome:
		return history.Fail
	case infoOutcome:
		return history.Info
	}
	return ""
}

// ref is the index to report for an op: its completion, else its invoke.
func (o *op) ref() int64 {
	if o.end >= 0 {
		return o.endIdx
	}
	return o.invIdx
}

// ok reports whether the op happened, with its result.
func (o *op) ok() bool { return o.typ == okOutcome }

// unknown reports whether the op may or may not have happened.
func (o *op) unknown() bool { return o.typ == infoOutcome || o.typ == pending }

// seqOps are one sequence's operations.
type seqOps struct {
	name   string
	ranges []*op // next-range, invoke order
	ids    []*op // next-id, invoke order
	// okDone are the ok ranges in completion order, as the sweeps in
	// line order take them: kept as they complete, they need no sort.
	okDone []*op
	sorted []*op // the ok ranges by from, once okRanges has sorted them
	// sortedIDs are the ok IDs by ID, once okIDs has sorted them.
	sortedIDs []*op
}

// opsChunk is the most ops allocated at once: one allocation per op
// would cost the garbage collector more than the ops themselves. The
// first chunks are smaller, for the many short histories of a sweep.
const opsChunk = 4096

// stream is the checks' state over a history read one event at a time:
// the operations, in compact form, and what the stats, the live check and
// porcupine's view need of the other events. Nothing of an event outlives
// add but what it keeps here, so a history need not be held whole.
type stream struct {
	opts     Options
	start    time.Time
	seqs     map[string]*seqOps
	inflight map[int]flight // processes from lowProcesses on
	low      []flight       // processes below lowProcesses, by process
	// last is the sequence the last invoke named: a history names one, or
	// a few, so it saves most lookups.
	last    *seqOps
	chunks  [][]op // every op, in invoke order
	hint    int    // the operations expected, 0 when unknown
	nodes   []string
	nodeIDs map[string]int32
	events  int // events added, the next one's position

	heal    int64 // the time of the last fault event
	faults  int
	windows []Window
	window  Window
	// timeline is the fault windows for porcupine's view, when
	// Options.VisualizeDir asks for one.
	timeline *faultTimeline
}

// smallHistory is the most operations a history may be expected to
// hold for its sequence's slices to be made their expected size up
// front, as a hunt's seeds are: a bigger one grows them as it goes, as
// it always did, so as to hold no more than it needs.
const smallHistory = 1 << 16

// bytesPerOp is a little less than an operation takes in a history: its
// invoke and its completion, as the Recorder writes them.
const bytesPerOp = 240

// newStream returns a stream for a history expected to hold about hint
// operations (0: unknown).
func newStream(opts Options, hint int) *stream {
	opts = opts.WithDefaults()
	st := &stream{opts: opts, hint: hint, start: time.Now(), seqs: map[string]*seqOps{}, inflight: map[int]flight{},
		nodeIDs: map[string]int32{}, window: Window{Availability: -1}}
	if opts.VisualizeDir != "" {
		st.timeline = &faultTimeline{open: map[string]int{}}
	}
	return st
}

// flight is an op in flight, and its sequence.
type flight struct {
	o *op
	s *seqOps
}

// lowProcesses bounds the processes whose flights are kept in a slice,
// where a lookup is cheaper than a map's; a long history with many infos
// numbers many more.
const lowProcesses = 1024

// flight is process p's op in flight; the zero flight for none.
func (st *stream) flight(p int) flight {
	if uint(p) < uint(len(st.low)) {
		return st.low[p]
	}
	if uint(p) < lowProcesses {
		return flight{}
	}
	return st.inflight[p]
}

// fly sets process p's op in flight; the zero flight for none.
func (st *stream) fly(p int, fl flight) {
	if uint(p) >= lowProcesses {
		if fl.o == nil {
			delete(st.inflight, p)
		} else {
			st.inflight[p] = fl
		}
		return
	}
	if p >= len(st.low) {
		st.low = append(st.low, make([]flight, p+1-len(st.low))...)
	}
	st.low[p] = fl
}

// newOp returns a new op, in invoke order.
func (st *stream) newOp() *op {
	n := len(st.chunks)
	if n == 0 || len(st.chunks[n-1]) == cap(st.chunks[n-1]) {
		size := 16
		switch {
		case n > 0:
			size = min(2*cap(st.chunks[n-1]), opsChunk)
		case st.hint > 0:
			size = min(max(st.hint, size), opsChunk)
		}
		st.chunks = append(st.chunks, make([]op, 0, size))
		n++
	}
	c := &st.chunks[n-1]
	*c = append(*c, op{})
	return &(*c)[len(*c)-1]
}

// each calls f on every op, in invoke order.
func (st *stream) each(f func(*op)) {
	for _, c := range st.chunks {
		for i := range c {
			f(&c[i])
		}
	}
}

// node is a node's number, its place in st.nodes; -1 for no node.
func (st *stream) node(name string) int32 {
	if name == "" {
		return -1
	}
	if len(st.nodes) <= 16 {
		// A cluster has a handful of nodes: comparing is cheaper than
		// hashing.
		for i, n := range st.nodes {
			if n == name {
				return int32(i)
			}
		}
	}
	id, ok := st.nodeIDs[name]
	if !ok {
		id = int32(len(st.nodes))
		st.nodes = append(st.nodes, name)
		st.nodeIDs[name] = id
	}
	return id
}

// add takes the next event: it pairs invokes with completions, splits
// them by sequence, and counts what the stats need.
func (st *stream) add(e *history.Event) {
	pos := st.events
	st.events++
	if e.Nemesis {
		st.heal = max(st.heal, e.Time)
		st.faults++
		st.windows = append(st.windows, st.window.done())
		st.window = Window{After: e.F, Index: e.Index, Start: e.Time}
		if st.timeline != nil {
			st.timeline.add(pos, e)
		}
		return
	}
	if e.Type == history.Invoke {
		var name string
		var f fn
		var n uint64
		var buffer bool
		switch e.F {
		case history.NextRange:
			v, err := e.Range()
			if err != nil {
				return
			}
			name, n, buffer, f = v.Name, v.N, v.Buffer, fnRange
		case history.NextID:
			v, err := e.ID()
			if err != nil {
				return
			}
			name, f = v.Name, fnID
		default:
			return
		}
		o := st.newOp()
		*o = op{proc: e.Process, f: f, n: n, buffer: buffer, inv: pos, invIdx: e.Index, invTime: e.Time, end: -1, node: -1}
		s := st.last
		if s == nil || s.name != name {
			s = st.seqs[name]
			if s == nil {
				s = &seqOps{name: name}
				if len(st.seqs) == 0 && st.hint > 0 && st.hint <= smallHistory {
					// Most histories have one sequence, and most of its
					// ops are ranges.
					s.ranges = make([]*op, 0, st.hint)
					s.okDone = make([]*op, 0, st.hint)
				}
				st.seqs[name] = s
			}
			st.last = s
		}
		st.fly(e.Process, flight{o, s})
		if f == fnRange {
			s.ranges = append(s.ranges, o)
		} else {
			s.ids = append(s.ids, o)
		}
		return
	}
	st.window.Total++
	if e.Type == history.Ok {
		st.window.Ok++
	}
	fl := st.flight(e.Process)
	o := fl.o
	if o == nil || o.f.String() != e.F {
		return
	}
	st.fly(e.Process, flight{})
	var typ outcome
	switch e.Type {
	case history.Ok:
		typ = okOutcome
	case history.Info:
		typ = infoOutcome
	case "":
		typ = pending // no type: as if it never completed
	default:
		// Fail, or a type a read history cannot have (Read refuses it):
		// the op did not happen.
		typ = failOutcome
	}
	o.end, o.endIdx, o.endTime, o.typ = pos, e.Index, e.Time, typ
	o.node = st.node(e.Node)
	if typ != okOutcome {
		return
	}
	switch o.f {
	case fnRange:
		if v, err := e.Range(); err == nil {
			o.from, o.to = v.From, v.To
			o.buffer = o.buffer || v.Buffer
		}
		fl.s.okDone = append(fl.s.okDone, o)
	case fnID:
		if v, err := e.ID(); err == nil {
			o.id = v.ID
		}
	}
}

// collect pairs invokes with completions and splits them by sequence.
func collect(events []history.Event) (map[string]*seqOps, *stream) {
	st := newStream(Options{}, len(events)/2)
	for i := range events {
		st.add(&events[i])
	}
	return st.seqs, st
}

// Check runs every check on a parsed history.
func Check(events []history.Event, opts Options) Results {
	st := newStream(opts, len(events)/2)
	for i := range events {
		st.add(&events[i])
	}
	return st.results()
}

// CheckReader checks a history as it reads it, holding only the
// operations, in compact form, never the events: the way to check a
// history too big to hold. Malformed lines do not stop the check; they
// are in Results.Malformed, and the error is for I/O, or for an input
// with no usable line at all.
func CheckReader(r io.Reader, opts Options) (Results, error) {
	hint := 0
	if l, ok := r.(interface{ Len() int }); ok { // bytes.Reader, strings.Reader
		hint = l.Len()/bytesPerOp + 1
	}
	st := newStream(opts, hint)
	sc := history.NewScanner(r)
	for sc.Scan() {
		e := sc.Event()
		st.add(&e)
	}
	if err := sc.Err(); err != nil {
		return Results{}, err
	}
	problems := sc.Problems()
	if st.events == 0 && len(problems) > 0 {
		return Results{}, errors.Errorf("no usable line; first problem: %s", problems[0])
	}
	res := st.results()
	res.withMalformed(problems)
	return res, nil
}

// Stream checks a history handed to it an event at a time, as
// CheckReader checks one it reads: a simulator checks a run as it makes
// it, with no history written or parsed (history.NewEventRecorder hands
// the events over). A Stream is not safe for concurrent use.
type Stream struct{ st *stream }

// NewStream returns a Stream for a history of about ops operations (0
// when unknown), which sizes its first allocations.
func NewStream(opts Options, ops int) *Stream { return &Stream{newStream(opts, ops)} }

// Add takes the next event, one that holds to the history's rules (a
// Scanner's or an event Recorder's); it keeps nothing of e.
func (s *Stream) Add(e *history.Event) { s.st.add(e) }

// Results runs the checks on the events added so far.
func (s *Stream) Results() Results { return s.st.results() }

// results runs the checks on what the stream has taken.
func (st *stream) results() Results {
	opts := st.opts
	deadline := time.Now().Add(opts.Timeout)
	names := make([]string, 0, len(st.seqs))
	for n := range st.seqs {
		names = append(names, n)
	}
	sort.Strings(names)

	perName := map[string][]namedResult{}
	add := func(check, name string, r Result) {
		perName[check] = append(perName[check], namedResult{name, r})
	}
	var faults []porcupine.Annotation
	if st.timeline != nil {
		faults = st.timeline.done(st.events)
	}
	var views []string
	for _, name := range names {
		s := st.seqs[name]
		add(Unique, name, checkUnique(s))
		lin := checkLinearizable(s, faults, opts, deadline)
		if d, ok := lin.Details.(LinearizableDetails); ok && d.Visualization != "" {
			views = append(views, d.Visualization)
		}
		add(Linearizable, name, lin)
		add(Monotonic, name, checkMonotonic(s))
		if !opts.Sparse {
			add(GapFree, name, checkGaps(s, opts))
		}
		add(NodeOrder, name, checkNodeOrder(s, st.nodes))
		// The sequence's checks are done: let its sorted ops go.
		s.sorted, s.sortedIDs, s.okDone = nil, nil, nil
	}
	res := Results{
		Promises: opts.Promises, Checks: map[string]Result{}, Names: names, Events: st.events,
		Visualizations: views,
	}
	for _, check := range Properties {
		if check != Live {
			res.Checks[check] = merge(check, perName[check])
		}
	}
	if opts.Sparse {
		res.Checks[GapFree] = Result{Valid: ValidTrue, Reason: SparseReason, Details: GapDetails{Sparse: true}}
	}
	res.Checks[Live] = checkLive(st, opts.LiveWithin)
	res.Stats = st.stats()
	res.Checks[StatsCheck] = Result{Valid: ValidTrue, Reason: res.Stats.line(), Details: res.Stats}
	res.Valid = ValidTrue
	for _, p := range opts.Promises {
		r, ok := res.Checks[p]
		if !ok {
			r.Valid = ValidUnknown
		}
		res.Valid = worse(res.Valid, r.Valid)
	}
	if len(st.chunks) == 0 {
		// Each check holds of nothing, vacuously; a verdict of valid
		// would vouch for a run that tested nothing.
		res.Valid, res.Reason = ValidUnknown, NothingToCheck
	}
	res.Duration = time.Since(st.start)
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
		switch check {
		case GapFree:
			out.Details = GapDetails{}
		case NodeOrder:
			out.Details = NodeOrderDetails{Nodes: []string{}}
		}
		return out
	}
	if len(rs) == 1 {
		return rs[0].r
	}
	var reasons []string
	var gd GapDetails
	nd := NodeOrderDetails{Nodes: []string{}}
	for _, nr := range rs {
		out.Valid = worse(out.Valid, nr.r.Valid)
		out.Ops = append(out.Ops, nr.r.Ops...)
		if nr.r.Valid != ValidTrue || check == GapFree {
			reasons = append(reasons, nr.name+": "+nr.r.Reason)
		}
		switch d := nr.r.Details.(type) {
		case GapDetails:
			gd.add(d)
		case NodeOrderDetails:
			nd.add(d)
		}
	}
	slices.Sort(out.Ops)
	if len(out.Ops) > MaxOps {
		out.Ops = out.Ops[:MaxOps]
	}
	if len(reasons) == 0 {
		out.Reason = fmt.Sprintf("holds for all %d sequences", len(rs))
	} else {
		out.Reason = strings.Join(reasons, "; ")
	}
	switch check {
	case GapFree:
		out.Details = gd
	case NodeOrder:
		out.Details = nd
	default:
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
	slices.Sort(ops)
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
