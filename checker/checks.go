package checker

import (
	"fmt"
	"sort"
	"time"

	"github.com/seqlab/seqlab/checker/history"
)

// okRanges returns the sequence's ok next-range operations sorted by from.
func okRanges(s *seqOps) []*op {
	var rs []*op
	for _, o := range s.ranges {
		if o.typ == history.Ok {
			rs = append(rs, o)
		}
	}
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].from != rs[j].from {
			return rs[i].from < rs[j].from
		}
		return rs[i].end < rs[j].end
	})
	return rs
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
	pairs, dup := overlaps(okRanges(s))
	d.DuplicateIDs, d.OverlapPairs = dup, len(pairs)
	for _, p := range pairs {
		ops = append(ops, p[0].ref(), p[1].ref())
		if len(d.Examples) < 5 {
			d.Examples = append(d.Examples, fmt.Sprintf("[%d,%d) at %d overlaps [%d,%d) at %d",
				p[0].from, p[0].to, p[0].ref(), p[1].from, p[1].to, p[1].ref()))
			d.ExamplePairsOp = append(d.ExamplePairsOp, [2]int64{p[0].ref(), p[1].ref()})
		}
	}
	var ids []*op
	for _, o := range s.ids {
		if o.typ == history.Ok {
			ids = append(ids, o)
		}
	}
	sort.Slice(ids, func(i, j int) bool {
		if ids[i].id != ids[j].id {
			return ids[i].id < ids[j].id
		}
		return ids[i].end < ids[j].end
	})
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
		return Result{Valid: ValidTrue, Reason: fmt.Sprintf("%d ranges and %d IDs, none handed out twice", len(s.ranges), len(s.ids)), Details: d}
	}
	return Result{Valid: ValidFalse, Ops: capOps(ops), Details: d,
		Reason: fmt.Sprintf("%d IDs handed out more than once (%d clashes), first: %s", d.DuplicateIDs, d.OverlapPairs, d.Examples[0])}
}

// LinearizableDetails say which methods decided.
type LinearizableDetails struct {
	Direct    Valid  `json:"direct"`
	Porcupine string `json:"porcupine"` // Ok, Illegal, Unknown (timed out), or skipped: why
	Ranges    int    `json:"ranges"`
	// Visualization is porcupine's HTML file, when it wrote one.
	Visualization string `json:"visualization,omitempty"`
}

// directLinearizable decides linearizability of next-range in O(n log n).
// A fail did nothing and an info may have happened at any point after its
// invoke; an allocation nobody saw only raises the floor for later ones,
// so it never helps explain a history and can be left out. The ok ranges
// are then linearizable exactly when they are pairwise disjoint and every
// range that completed before another was invoked ends at or below the
// other's start: ordering by start is then a linearization, and any
// linearization must order by start.
func directLinearizable(s *seqOps) (Valid, string, []int64) {
	sorted := okRanges(s)
	if pairs, dup := overlaps(sorted); len(pairs) > 0 {
		var ops []int64
		for _, p := range pairs {
			ops = append(ops, p[0].ref(), p[1].ref())
		}
		p := pairs[0]
		return ValidFalse, fmt.Sprintf("%d IDs in overlapping ranges: [%d,%d) at %d and [%d,%d) at %d cannot both follow the other",
			dup, p[0].from, p[0].to, p[0].ref(), p[1].from, p[1].to, p[1].ref()), capOps(ops)
	}
	// Sweep in line order: at each ok op's invoke, every ok op completed
	// so far must end at or below its start.
	type mark struct {
		pos int
		o   *op
		inv bool
	}
	var marks []mark
	for _, o := range s.ranges {
		if o.typ == history.Ok {
			marks = append(marks, mark{o.inv, o, true}, mark{o.end, o, false})
		}
	}
	sort.Slice(marks, func(i, j int) bool { return marks[i].pos < marks[j].pos })
	var top *op // completed op with the highest end
	var ops []int64
	var first string
	for _, m := range marks {
		if !m.inv {
			if top == nil || m.o.to > top.to {
				top = m.o
			}
			continue
		}
		if top != nil && m.o.from < top.to {
			ops = append(ops, top.ref(), m.o.ref())
			if first == "" {
				first = fmt.Sprintf("[%d,%d) completed at %d before the op invoked at %d, which got [%d,%d): a later allocation went back",
					top.from, top.to, top.ref(), m.o.invIdx, m.o.from, m.o.to)
			}
		}
	}
	if len(ops) > 0 {
		return ValidFalse, fmt.Sprintf("%d real-time violations, first: %s", len(ops)/2, first), capOps(ops)
	}
	return ValidTrue, fmt.Sprintf("%d ranges in one order consistent with real time", len(sorted)), nil
}

// checkLinearizable runs the direct checker and, on histories small
// enough, porcupine; a disagreement between them is reported as a failure
// of the lab itself.
func checkLinearizable(s *seqOps, events []history.Event, opts Options, deadline time.Time) Result {
	v, reason, ops := directLinearizable(s)
	d := LinearizableDetails{Direct: v, Ranges: len(s.ranges)}
	res := Result{Valid: v, Reason: reason, Ops: ops}
	switch {
	case opts.PorcupineLimit < 0:
		d.Porcupine = "skipped: disabled"
	case len(s.ranges) > opts.PorcupineLimit:
		d.Porcupine = fmt.Sprintf("skipped: %d operations > limit %d", len(s.ranges), opts.PorcupineLimit)
	default:
		left := time.Until(deadline)
		if left <= 0 {
			d.Porcupine = "Unknown"
			break
		}
		pv, html := porcupineCheck(s, left, opts.VisualizeDir)
		d.Porcupine, d.Visualization = pv, html
		switch {
		case pv == "Unknown":
			res.Reason += " (porcupine timed out)"
		case (pv == "Ok") != (v == ValidTrue):
			res.Valid = ValidUnknown
			res.Reason = fmt.Sprintf("the direct checker says %s but porcupine says %s: a bug in the checker", v, pv)
		}
	}
	res.Details = d
	return res
}

// checkMonotonic: each process's IDs strictly increase.
func checkMonotonic(s *seqOps) Result {
	last := map[int]*op{}
	var ops []int64
	var first string
	n := 0
	for _, o := range s.ids {
		if o.typ != history.Ok {
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
	return Result{Valid: ValidTrue, Reason: fmt.Sprintf("%d IDs over %d processes, each strictly increasing", n, len(last))}
}
