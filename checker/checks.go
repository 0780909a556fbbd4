package checker

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/seqlab/seqlab/checker/history"
)

// Properties are the checks a system can promise, in the order the lab
// reports them. Each check is named after the property it decides.
var Properties = []string{Unique, Linearizable, Monotonic, NodeOrder, GapFree, Live}

// StatsCheck is the check that only counts: outcomes, latencies and
// availability. It is never promised and never fails.
const StatsCheck = "stats"

// Word is how the lab reports a check or a verdict. The same few words
// are used wherever a person reads one: blocks, summaries, tables, hunts.
// results.json keeps valid as true, false or "unknown".
type Word string

// The words.
const (
	// Held: a promised property that the history keeps.
	Held Word = "held"
	// Violated: a promised property that the history breaks.
	Violated Word = "violated"
	// NotPromised: a property the system does not promise. The check is
	// still reported, with its reason, but it decides nothing.
	NotPromised Word = "not promised"
	// NA: the history has nothing the check reads (no IDs handed out one
	// by one, say), so the check holds of nothing.
	NA Word = "n/a"
	// Caught: the violation a planted bug is expected to cause, found.
	Caught Word = "caught"
	// Unknown: the check could not decide: it timed out, lines were
	// unreadable, or there was nothing to check.
	Unknown Word = "unknown"
)

// Word is the verdict's word: held, violated or unknown.
func (v Valid) Word() Word {
	switch v {
	case ValidTrue:
		return Held
	case ValidFalse:
		return Violated
	}
	return Unknown
}

// Vacuous reports whether the history has nothing that check reads: no
// ok operation for unique, no ok range for linearizable, no ok next-id
// for monotonic, no ok range from a named node for node-order, no ID
// handed out, or IDs sparse by design (Options.Sparse), for gap-free.
func (r Results) Vacuous(check string) bool {
	ok := func(f string) int { return r.Stats.Ops[f][history.Ok] }
	switch check {
	case Unique:
		return ok(history.NextRange)+ok(history.NextID) == 0
	case Linearizable:
		return ok(history.NextRange) == 0
	case Monotonic:
		return ok(history.NextID) == 0
	case NodeOrder:
		n, _ := r.Checks[NodeOrder].Details.(NodeOrderDetails)
		return n.Judged == 0
	case GapFree:
		g, _ := r.Checks[GapFree].Details.(GapDetails)
		return g.HighestID == 0 || g.Sparse
	case Live:
		l, _ := r.Checks[Live].Details.(LiveDetails)
		return l.Judged == 0
	}
	return false
}

// Word is check's word in r: n/a when the history has nothing the check
// reads, not promised when r's promises leave it out, else held, violated
// or unknown.
func (r Results) Word(check string) Word {
	switch {
	case r.Vacuous(check):
		return NA
	case !contains(r.Promises, check):
		return NotPromised
	}
	return r.Checks[check].Valid.Word()
}

// okRanges returns the sequence's ok next-range operations sorted by from,
// sorted once and shared by the checks, which must not change it.
func okRanges(s *seqOps) []*op {
	if s.sorted != nil {
		return s.sorted
	}
	// okDone holds the same ops, in completion order, which is close to
	// the order by from: the sort has little to do, and often nothing.
	// No two ops end at one position, so the order is the same whatever
	// the sort starts from.
	rs := append(make([]*op, 0, len(s.okDone)), s.okDone...)
	byFrom := func(a, b *op) int {
		if c := cmp.Compare(a.from, b.from); c != 0 {
			return c
		}
		return cmp.Compare(a.end, b.end)
	}
	if !slices.IsSortedFunc(rs, byFrom) {
		slices.SortFunc(rs, byFrom)
	}
	s.sorted = rs
	return rs
}

// okIDs returns the sequence's ok next-id operations sorted by ID, sorted
// once and shared by the checks, which must not change it.
func okIDs(s *seqOps) []*op {
	if s.sortedIDs != nil {
		return s.sortedIDs
	}
	ids := []*op{}
	for _, o := range s.ids {
		if o.ok() {
			ids = append(ids, o)
		}
	}
	slices.SortFunc(ids, func(a, b *op) int {
		if c := cmp.Compare(a.id, b.id); c != 0 {
			return c
		}
		return cmp.Compare(a.end, b.end)
	})
	s.sortedIDs = ids
	return ids
}

// overlaps finds ok ranges that share IDs: sorted by from, a range that
// starts below the highest end seen so far overlaps the range holding it.
// It returns the pairs and how many IDs were handed out more than once.
func overlaps(sorted []*op) (pairs [][2]*op, dupIDs uint64) {
	var top *op
	for _, o := range sorted {
		if top != nil && o.from < top.to {
			pairs = append(pairs, [2]*op{top, o})
			dupIDs += min(o.to, top.to) - o.from
		}
		if top == nil || o.to > top.to {
			top = o
		}
	}
	return pairs, dupIDs
}

// cover finds which of some ranges holds an ID.
type cover struct {
	rs []*op // sorted by from
	// reach[i] is the range of rs[:i+1] that ends highest.
	reach []*op
}

// newCover takes the ranges of sorted (by from) that keep says.
func newCover(sorted []*op, keep func(*op) bool) cover {
	var c cover
	for _, o := range sorted {
		if !keep(o) {
			continue
		}
		r := o
		if n := len(c.reach); n > 0 && c.reach[n-1].to > o.to {
			r = c.reach[n-1]
		}
		c.rs, c.reach = append(c.rs, o), append(c.reach, r)
	}
	return c
}

// find returns a range that holds id, nil when none does.
func (c cover) find(id uint64) *op {
	i := sort.Search(len(c.rs), func(i int) bool { return c.rs[i].from > id }) - 1
	if i >= 0 && c.reach[i].to > id {
		return c.reach[i]
	}
	return nil
}

// UniqueDetails are the figures of the unique check.
type UniqueDetails struct {
	DuplicateIDs   uint64     `json:"duplicate_ids"`
	OverlapPairs   int        `json:"overlap_pairs"`
	Examples       []string   `json:"examples,omitempty"`
	ExamplePairsOp [][2]int64 `json:"example_pairs,omitempty"`
}

// checkUnique: no ID is handed out twice, by ranges or by next-id.
func checkUnique(s *seqOps) Result {
	var d UniqueDetails
	var ops []int64
	sorted := okRanges(s)
	pairs, dup := overlaps(sorted)
	d.DuplicateIDs, d.OverlapPairs = dup, len(pairs)
	for _, p := range pairs {
		ops = append(ops, p[0].ref(), p[1].ref())
		if len(d.Examples) < 5 {
			d.Examples = append(d.Examples, fmt.Sprintf("[%d,%d) at %d overlaps [%d,%d) at %d",
				p[0].from, p[0].to, p[0].ref(), p[1].from, p[1].to, p[1].ref()))
			d.ExamplePairsOp = append(d.ExamplePairsOp, [2]int64{p[0].ref(), p[1].ref()})
		}
	}
	// A client library hands out IDs from the ranges it fetched (marked
	// buffer), so an ID that is in a range handed out whole went to two
	// clients. One that is also in a fetched range is counted above, as
	// the overlap of the two ranges.
	ids := okIDs(s)
	var whole, fetched cover
	if len(ids) > 0 {
		whole = newCover(sorted, func(o *op) bool { return !o.buffer })
		fetched = newCover(sorted, func(o *op) bool { return o.buffer })
	}
	for _, o := range s.ids {
		if !o.ok() {
			continue
		}
		r := whole.find(o.id)
		if r == nil || fetched.find(o.id) != nil {
			continue
		}
		d.DuplicateIDs++
		d.OverlapPairs++
		ops = append(ops, r.ref(), o.ref())
		if len(d.Examples) < 5 {
			d.Examples = append(d.Examples, fmt.Sprintf("id %d at %d is in [%d,%d) handed out at %d", o.id, o.ref(), r.from, r.to, r.ref()))
			d.ExamplePairsOp = append(d.ExamplePairsOp, [2]int64{r.ref(), o.ref()})
		}
	}
	for i := 1; i < len(ids); i++ {
		if ids[i].id == ids[i-1].id {
			d.DuplicateIDs++
			d.OverlapPairs++
			ops = append(ops, ids[i-1].ref(), ids[i].ref())
			if len(d.Examples) < 5 {
				d.Examples = append(d.Examples, fmt.Sprintf("id %d at %d and again at %d", ids[i].id, ids[i-1].ref(), ids[i].ref()))
				d.ExamplePairsOp = append(d.ExamplePairsOp, [2]int64{ids[i-1].ref(), ids[i].ref()})
			}
		}
	}
	if d.DuplicateIDs == 0 {
		reason := fmt.Sprintf("%d ranges and %d IDs, none handed out twice", len(sorted), len(ids))
		if len(sorted)+len(ids) == 0 {
			reason = "nothing handed out"
		}
		return Result{Valid: ValidTrue, Reason: reason, Details: d}
	}
	return Result{Valid: ValidFalse, Ops: capOps(ops), Details: d,
		Reason: fmt.Sprintf("%d IDs handed out more than once (%d clashes), first: %s", d.DuplicateIDs, d.OverlapPairs, d.Examples[0])}
}

// LinearizableDetails say which methods decided.
type LinearizableDetails struct {
	Direct    Valid  `json:"direct"`
	Porcupine string `json:"porcupine"` // Ok, Illegal, Unknown (timed out), or skipped: why
	Ranges    int    `json:"ranges"`
	// Visualization is porcupine's HTML file, when it wrote one, and
	// VisualizationOf what it shows: the whole sequence, or, when
	// porcupine could not take all of it, the first violation and the
	// operations nearest it.
	Visualization   string `json:"visualization,omitempty"`
	VisualizationOf string `json:"visualization_of,omitempty"`
}

// directLinearizable decides linearizability of next-range in O(n log n).
// A fail did nothing and an info may have happened at any point after its
// invoke; an allocation nobody saw only raises the floor for later ones,
// so it never helps explain a history and can be left out. The ok ranges
// are then linearizable exactly when they are pairwise disjoint and every
// range that completed before another was invoked ends at or below the
// other's start: ordering by start is then a linearization, and any
// linearization must order by start.
//
// It also returns the first offending pair: any history that holds both
// is not linearizable.
func directLinearizable(s *seqOps) (Valid, string, []int64, [2]*op) {
	sorted := okRanges(s)
	if pairs, dup := overlaps(sorted); len(pairs) > 0 {
		var ops []int64
		for _, p := range pairs {
			ops = append(ops, p[0].ref(), p[1].ref())
		}
		p := pairs[0]
		return ValidFalse, fmt.Sprintf("%d IDs in overlapping ranges: [%d,%d) at %d and [%d,%d) at %d cannot both follow the other",
			dup, p[0].from, p[0].to, p[0].ref(), p[1].from, p[1].to, p[1].ref()), capOps(ops), p
	}
	// Sweep in line order: at each ok op's invoke, every ok op completed
	// so far must end at or below its start. The invokes and the
	// completions each come in line order already.
	ends := s.okDone
	var top *op // completed op with the highest end
	var ops []int64
	var first string
	var pair [2]*op
	next := 0 // into ends
	for _, o := range s.ranges {
		if !o.ok() {
			continue
		}
		for ; next < len(ends) && ends[next].end < o.inv; next++ {
			if top == nil || ends[next].to > top.to {
				top = ends[next]
			}
		}
		if top != nil && o.from < top.to {
			ops = append(ops, top.ref(), o.ref())
			if first == "" {
				first = fmt.Sprintf("[%d,%d) completed at %d before the op invoked at %d, which got [%d,%d): a later allocation went back",
					top.from, top.to, top.ref(), o.invIdx, o.from, o.to)
				pair = [2]*op{top, o}
			}
		}
	}
	if len(ops) > 0 {
		return ValidFalse, fmt.Sprintf("%d real-time violations, first: %s", len(ops)/2, first), capOps(ops), pair
	}
	if len(sorted) == 0 {
		return ValidTrue, "no ranges handed out", nil, pair
	}
	return ValidTrue, fmt.Sprintf("%d ranges in one order consistent with real time", len(sorted)), nil, pair
}

// checkLinearizable runs the direct checker and, on histories small
// enough, porcupine; a disagreement between them is reported as a failure
// of the lab itself.
func checkLinearizable(s *seqOps, faults []porcupine.Annotation, opts Options, deadline time.Time) Result {
	v, reason, ops, pair := directLinearizable(s)
	d := LinearizableDetails{Direct: v, Ranges: len(s.ranges)}
	res := Result{Valid: v, Reason: reason, Ops: ops}
	if opts.PorcupineLimit < 0 {
		d.Porcupine = "skipped: disabled"
		res.Details = d
		return res
	}
	oks := okRanges(s)
	budget := func() time.Duration { return min(time.Until(deadline), opts.PorcupineTimeout) }
	path := ""
	if opts.VisualizeDir != "" {
		path = filepath.Join(opts.VisualizeDir, visualizationFile(opts.VisualizePrefix, s.name))
	}
	disagree := func(pv string) {
		res.Valid = ValidUnknown
		res.Reason = fmt.Sprintf("the direct checker says %s but porcupine says %s: a bug in the checker", v, pv)
	}
	switch {
	case len(s.ranges) > opts.PorcupineLimit:
		d.Porcupine = fmt.Sprintf("skipped: %d operations > limit %d", len(s.ranges), opts.PorcupineLimit)
	case budget() <= 0:
		d.Porcupine = "Unknown"
		res.Reason += " (no time left for porcupine)"
	default:
		pv, html := porcupineCheck(oks, budget(), path, faults)
		d.Porcupine, d.Visualization = pv, html
		if html != "" {
			d.VisualizationOf = fmt.Sprintf("all %d ok ranges", len(oks))
		}
		switch {
		case pv == "Unknown":
			res.Reason += fmt.Sprintf(" (porcupine timed out after %v)", opts.PorcupineTimeout)
		case (pv == "Ok") != (v == ValidTrue):
			disagree(pv)
		}
	}
	// Porcupine could not take the whole sequence: show it the first
	// violation and what was in flight nearest it, a history that is not
	// linearizable on its own.
	if v == ValidFalse && res.Valid == ValidFalse && d.Visualization == "" && path != "" && budget() > 0 {
		sub := around(oks, pair, 14)
		pv, html := porcupineCheck(sub, budget(), path, append(slices.Clip(faults), porcupine.Annotation{
			Tag: "checker", Start: int64(min(pair[0].inv, pair[1].inv)), End: int64(max(pair[0].end, pair[1].end)),
			Description: fmt.Sprintf("%d of %d ranges", len(sub), len(oks)),
			Details: fmt.Sprintf("porcupine could not take the whole sequence; this is the violation between events %d and %d and the %d ranges nearest it",
				pair[0].ref(), pair[1].ref(), len(sub)-2),
		}))
		if pv == "Ok" {
			disagree(pv + " on the operations around the first violation")
		}
		if html != "" {
			d.Visualization = html
			d.VisualizationOf = fmt.Sprintf("the violation between events %d and %d and the %d ranges nearest it", pair[0].ref(), pair[1].ref(), len(sub)-2)
		}
	}
	res.Details = d
	return res
}

// around is the offending pair and up to n other ranges, those nearest
// the pair in the history, in no order. A history that holds the pair is
// not linearizable, however few others it holds.
func around(oks []*op, pair [2]*op, n int) []*op {
	dist := func(o, p *op) int {
		switch {
		case o.end < p.inv:
			return p.inv - o.end
		case p.end < o.inv:
			return o.inv - p.end
		}
		return 0
	}
	var others []*op
	for _, o := range oks {
		if o != pair[0] && o != pair[1] {
			others = append(others, o)
		}
	}
	sort.SliceStable(others, func(i, j int) bool {
		return min(dist(others[i], pair[0]), dist(others[i], pair[1])) < min(dist(others[j], pair[0]), dist(others[j], pair[1]))
	})
	return append([]*op{pair[0], pair[1]}, others[:min(n, len(others))]...)
}

// checkMonotonic: each process's IDs strictly increase.
func checkMonotonic(s *seqOps) Result {
	last := map[int]*op{}
	var ops []int64
	var first string
	n := 0
	for _, o := range s.ids {
		if !o.ok() {
			continue
		}
		n++
		if p := last[o.proc]; p != nil && o.id <= p.id {
			ops = append(ops, p.ref(), o.ref())
			if first == "" {
				first = fmt.Sprintf("process %d got %d at %d, then %d at %d", o.proc, p.id, p.ref(), o.id, o.ref())
			}
		}
		last[o.proc] = o
	}
	if len(ops) > 0 {
		return Result{Valid: ValidFalse, Ops: capOps(ops),
			Reason: fmt.Sprintf("%d IDs not above the process's previous one, first: %s", len(ops)/2, first)}
	}
	if n == 0 {
		return Result{Valid: ValidTrue, Reason: "no IDs handed out one by one"}
	}
	return Result{Valid: ValidTrue, Reason: fmt.Sprintf("%d IDs over %d processes, each strictly increasing", n, len(last))}
}
