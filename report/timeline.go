package report

import (
	"fmt"
	"html/template"
	"sort"
	"strings"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/checker/history"
)

// maxTimeline caps the operations the timeline draws.
var maxTimeline = 500

// Timeline geometry, in CSS pixels.
const (
	rowH = 11 // one history event
	colW = 104
)

// timeline is one column per process (the nemesis first), one box per
// operation, from the row of its invoke to the row of its completion:
// rows are history events, so boxes that overlap ran at the same time.
type timeline struct {
	Columns   []string
	Boxes     []box
	Width     int
	Height    int
	Shown     int
	Total     int
	Violating int // violating operations shown
	Note      string
}

type box struct {
	Left, Top, Height int
	Class             string
	Text              string
	Title             string
	Index             int64
	Checks            string // the checks it violates, space separated
}

// shown is the operations the timeline draws, r.ops[lo:hi]: all of
// them, or, past maxTimeline, a window that starts a little before the
// first violation, if any, as that is where a reader looks first.
func (r *run) shown(bad map[int64][]string) (lo, hi int) {
	if len(r.ops) <= maxTimeline {
		return 0, len(r.ops)
	}
	first := -1
	for k, o := range r.ops {
		if len(bad[o.ref()]) > 0 {
			first = k
			break
		}
	}
	if first >= 0 {
		lo = max(0, first-maxTimeline/5)
	}
	hi = min(len(r.ops), lo+maxTimeline)
	return max(0, hi-maxTimeline), hi
}

// timeline draws r.ops[lo:hi], whose completions (or lone invokes) are in
// lines, with the operations of bad marked.
func (r *run) timeline(bad map[int64][]string, lo, hi int, lines map[int64]history.Event) (timeline, error) {
	tl := timeline{Total: len(r.ops)}
	if len(r.ops) == 0 {
		return tl, nil
	}
	ops := r.ops[lo:hi]
	tl.Shown = len(ops)
	// Rows are positions in the history; the boxes are labelled with
	// indexes, which increase with them.
	base, last := ops[0].inv, ops[0].inv
	baseIdx, lastIdx := ops[0].invIdx, ops[0].invIdx
	procs := map[int]bool{}
	for _, o := range ops {
		procs[o.proc] = true
		last, lastIdx = max(last, o.inv, o.end), max(lastIdx, o.invIdx, o.endIdx)
	}
	if len(ops) < len(r.ops) {
		tl.Note = fmt.Sprintf("Capped: the timeline shows operations %d to %d of %d (at most %d), history events %d to %d",
			lo+1, hi, len(r.ops), maxTimeline, baseIdx, lastIdx)
		if lo > 0 {
			tl.Note += ", starting a little before the first violating operation"
		}
		tl.Note += "."
	}
	order := make([]int, 0, len(procs))
	for p := range procs {
		order = append(order, p)
	}
	sort.Ints(order)
	col := map[int]int{}
	tl.Columns = append(tl.Columns, "nemesis")
	for k, p := range order {
		col[p] = k + 1
		tl.Columns = append(tl.Columns, fmt.Sprintf("process %d", p))
	}
	tl.Width = len(tl.Columns) * colW
	tl.Height = (last - base + 2) * rowH
	rows := func(from, to int) (int, int) { // positions to a top and a height
		from, to = max(from, base), min(to, last)
		return (from - base) * rowH, max(2, to-from+1)*rowH - 2
	}
	for _, w := range r.windows {
		from, to := w.startAt, last
		if w.stopAt >= 0 {
			to = w.stopAt
		}
		if to < base || from > last {
			continue
		}
		top, h := rows(from, to)
		tl.Boxes = append(tl.Boxes, box{Left: 0, Top: top, Height: h, Class: "fault", Text: w.name, Title: w.describe(w.name), Index: w.startIdx})
	}
	for _, o := range ops {
		end := o.end
		if end < 0 {
			end = last
		}
		done, ok := lines[o.ref()]
		if !ok {
			return tl, errors.Errorf("%s changed while the report read it: event %d is gone", r.hist, o.ref())
		}
		top, h := rows(o.inv, end)
		b := box{Left: col[o.proc] * colW, Top: top, Height: h, Class: r.names.str(o.typ), Index: o.ref()}
		if o.end < 0 {
			b.Class = "pending"
		}
		b.Text, b.Title = r.describe(o, done)
		if checks := bad[o.ref()]; len(checks) > 0 {
			b.Class += " violating"
			b.Checks = strings.Join(checks, " ")
			b.Title += "\nviolates " + strings.Join(checks, ", ")
			tl.Violating++
		}
		tl.Boxes = append(tl.Boxes, b)
	}
	return tl, nil
}

// BoxesHTML draws the boxes. It is the page's largest part, written
// here rather than by the template, which takes several times as long
// over hundreds of boxes.
func (tl timeline) BoxesHTML() template.HTML {
	var b strings.Builder
	for _, x := range tl.Boxes {
		kind := "op"
		if x.Class == "fault" {
			kind = "fault"
		}
		fmt.Fprintf(&b, `<div class="op %s" id="%s-%d" style="left: %dpx; top: %dpx; height: %dpx"`, x.Class, kind, x.Index, x.Left, x.Top, x.Height)
		if x.Checks != "" {
			fmt.Fprintf(&b, ` data-violates="%s"`, x.Checks)
		}
		fmt.Fprintf(&b, ` title="%s">%s</div>`+"\n", template.HTMLEscapeString(x.Title), template.HTMLEscapeString(x.Text))
	}
	return template.HTML(b.String())
}

// describe is an operation's box text (node, result, history index) and
// its hover text; done is its completion, or its invoke when it never
// completed.
func (r *run) describe(o op, done history.Event) (string, string) {
	f, typ := r.names.str(o.f), r.names.str(o.typ)
	var result, asked string
	switch f {
	case history.NextRange:
		v, _ := done.Range()
		asked = fmt.Sprintf("n=%d", v.N)
		if typ == history.Ok {
			result = fmt.Sprintf("[%d,%d)", v.From, v.To)
		}
		if v.Buffer {
			asked += ", into a buffer"
		}
	case history.NextID:
		v, _ := done.ID()
		if typ == history.Ok {
			result = fmt.Sprintf("%d", v.ID)
		}
	}
	outcome := typ
	if o.end < 0 {
		outcome = "never completed"
	}
	if result == "" {
		result = outcome
	}
	node := done.Node
	text := strings.TrimSpace(fmt.Sprintf("%s %s #%d", node, result, done.Index))
	title := fmt.Sprintf("process %d: %s %s: %s", o.proc, f, asked, outcome)
	if typ == history.Ok {
		title += " " + result
	}
	if node != "" {
		title += " from " + node
	}
	title += fmt.Sprintf("\ninvoked at %.6fs (event %d)", secs(o.invT), o.invIdx)
	if o.end >= 0 {
		title += fmt.Sprintf(", completed at %.6fs (event %d), after %v", secs(o.endT), o.endIdx, time.Duration(o.endT-o.invT))
	}
	if done.Error != "" {
		title += "\nerror: " + done.Error
	}
	return text, title
}
