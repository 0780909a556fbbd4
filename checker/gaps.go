package checker

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
)

// GapDetails are the figures of the gaps check.
type GapDetails struct {
	// HighestID is the highest ID handed out.
	HighestID uint64 `json:"highest_id"`
	// GapCount runs of IDs below HighestID that nobody received, LostIDs
	// their size.
	GapCount int    `json:"gap_count"`
	LostIDs  uint64 `json:"lost_ids"`
	// ExplainedIDs = BufferedIDs (fetched into a client library's buffer
	// and never handed out) + MaybeAllocatedIDs (covered by next-range
	// operations of unknown outcome).
	ExplainedIDs      uint64 `json:"explained_ids"`
	BufferedIDs       uint64 `json:"buffered_ids"`
	MaybeAllocatedIDs uint64 `json:"maybe_allocated_ids"`
	UnexplainedIDs    uint64 `json:"unexplained_ids"`
	// Gaps lists the first gaps.
	Gaps []Gap `json:"gaps,omitempty"`
	// Sparse says the check did not look, as Options.Sparse asked: the
	// IDs are sparse by design, and every figure above is zero.
	Sparse bool `json:"sparse,omitempty"`
}

// Gap is one run of IDs nobody received: [From, To).
type Gap struct {
	From        uint64 `json:"from"`
	To          uint64 `json:"to"`
	Unexplained uint64 `json:"unexplained"`
	// By are the info operations (completion or invoke indices) that may
	// have allocated it.
	By []int64 `json:"by,omitempty"`
}

// MaxGaps caps the gaps listed.
const MaxGaps = 20

func (g *GapDetails) add(o GapDetails) {
	g.HighestID = max(g.HighestID, o.HighestID)
	g.GapCount += o.GapCount
	g.LostIDs += o.LostIDs
	g.ExplainedIDs += o.ExplainedIDs
	g.BufferedIDs += o.BufferedIDs
	g.MaybeAllocatedIDs += o.MaybeAllocatedIDs
	g.UnexplainedIDs += o.UnexplainedIDs
	for _, x := range o.Gaps {
		if len(g.Gaps) < MaxGaps {
			g.Gaps = append(g.Gaps, x)
		}
	}
}

type span struct{ from, to uint64 } // [from, to)

// spans are sorted disjoint spans, made by adding spans in order of
// their start: touching spans merge.
type spans []span

func (ss *spans) add(from, to uint64) {
	if n := len(*ss); n > 0 && from <= (*ss)[n-1].to {
		(*ss)[n-1].to = max((*ss)[n-1].to, to)
		return
	}
	*ss = append(*ss, span{from, to})
}

// minus returns the parts of [from, to) outside the sorted disjoint
// spans.
func minus(from, to uint64, spans []span) []span {
	var out []span
	i := sort.Search(len(spans), func(i int) bool { return spans[i].to > from })
	for ; i < len(spans) && from < to; i++ {
		s := spans[i]
		if s.from >= to {
			break
		}
		if s.from > from {
			out = append(out, span{from, s.from})
		}
		from = max(from, s.to)
	}
	if from < to {
		out = append(out, span{from, to})
	}
	return out
}

// checkGaps finds the IDs between 1 and the highest handed out that
// nobody received, and explains what it can: IDs fetched into a client's
// buffer and never handed out, and IDs that operations of unknown outcome
// may have allocated. An info op explains a gap when it was invoked
// before the first range above the gap completed (the first to complete,
// not the lowest: an op invoked after any range above the gap completed
// allocates above it); each op explains at most its size, once.
func checkGaps(s *seqOps, opts Options) Result {
	// The ranges and IDs come sorted by start, so their unions are made
	// as they come, with no copy to sort.
	var handed, allocated spans
	oks, ids := okRanges(s), okIDs(s)
	j := 0
	for _, o := range oks {
		allocated.add(o.from, o.to)
		if o.buffer {
			continue
		}
		for ; j < len(ids) && ids[j].id < o.from; j++ {
			handed.add(ids[j].id, ids[j].id+1)
		}
		handed.add(o.from, o.to)
	}
	for ; j < len(ids); j++ {
		handed.add(ids[j].id, ids[j].id+1)
	}
	var d GapDetails
	if len(handed) == 0 {
		return Result{Valid: ValidTrue, Reason: "nothing handed out", Details: d}
	}
	d.HighestID = handed[len(handed)-1].to - 1
	missing := minus(1, d.HighestID, handed)

	// Ranges sorted by start, and firstDone[i] the earliest completion of
	// oks[i:]: once any range above a gap has completed, an op invoked
	// after it allocates above that range, not in the gap.
	firstDone := make([]int, len(oks)+1)
	firstDone[len(oks)] = int(^uint(0) >> 1)
	for i := len(oks) - 1; i >= 0; i-- {
		firstDone[i] = min(firstDone[i+1], oks[i].end)
	}
	// Info ops by invoke position: the pool that explains gaps.
	var infos []*op
	for _, o := range s.ranges {
		if o.unknown() {
			infos = append(infos, o)
		}
	}
	slices.SortFunc(infos, func(a, b *op) int { return cmp.Compare(a.inv, b.inv) })

	type hole struct {
		span
		gap   int // index into d.Gaps-to-be
		until int // position of the first completion of a range above
	}
	var holes []hole
	var gaps []Gap
	for _, m := range missing {
		d.GapCount++
		d.LostIDs += m.to - m.from
		g := Gap{From: m.from, To: m.to}
		unseen := minus(m.from, m.to, allocated)
		var unseenN uint64
		for _, u := range unseen {
			unseenN += u.to - u.from
			i := sort.Search(len(oks), func(i int) bool { return oks[i].from >= u.to })
			holes = append(holes, hole{u, len(gaps), firstDone[i]})
		}
		d.BufferedIDs += (m.to - m.from) - unseenN
		gaps = append(gaps, g)
	}
	// Explain holes in the order their deadline passes, drawing on info
	// ops invoked before it, earliest first.
	sort.SliceStable(holes, func(i, j int) bool { return holes[i].until < holes[j].until })
	next := 0
	var pool []*op
	left := map[*op]uint64{}
	for _, h := range holes {
		for next < len(infos) && infos[next].inv < h.until {
			pool = append(pool, infos[next])
			left[infos[next]] = infos[next].n
			next++
		}
		need := h.to - h.from
		for need > 0 && len(pool) > 0 {
			o := pool[0]
			take := min(need, left[o])
			need -= take
			left[o] -= take
			d.MaybeAllocatedIDs += take
			if g := &gaps[h.gap]; len(g.By) < 10 {
				g.By = append(g.By, o.ref())
			}
			if left[o] == 0 {
				pool = pool[1:]
			}
		}
		gaps[h.gap].Unexplained += need
		d.UnexplainedIDs += need
	}
	d.ExplainedIDs = d.BufferedIDs + d.MaybeAllocatedIDs
	var ops []int64
	for _, g := range gaps {
		if g.Unexplained > 0 && len(ops) < MaxOps {
			// The op that handed out the first ID above the gap.
			i := sort.Search(len(oks), func(i int) bool { return oks[i].from >= g.To })
			if i < len(oks) {
				ops = append(ops, oks[i].ref())
			}
		}
	}
	if len(gaps) > MaxGaps {
		gaps = gaps[:MaxGaps]
	}
	d.Gaps = gaps
	reason := fmt.Sprintf("%d gaps, %d of %d IDs lost: %d explained (%d buffered, %d maybe allocated), %d unexplained",
		d.GapCount, d.LostIDs, d.HighestID, d.ExplainedIDs, d.BufferedIDs, d.MaybeAllocatedIDs, d.UnexplainedIDs)
	if d.UnexplainedIDs > 0 {
		return Result{Valid: ValidFalse, Reason: reason, Ops: capOps(ops), Details: d}
	}
	return Result{Valid: ValidTrue, Reason: reason, Details: d}
}
