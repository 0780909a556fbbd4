package checker

import (
	"fmt"
	"hash/crc32"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/seqlab/seqlab/checker/history"
)

// rangeModel is next-range as porcupine sees it: the state is the end of
// the highest range allocated so far, and an allocation is legal when it
// starts at or above it. An operation whose outcome is unknown (info)
// returns nothing and leaves the state alone: had it allocated, it would
// only have raised the floor.
var rangeModel = porcupine.Model{
	Init: func() any { return uint64(0) },
	Step: func(state, input, output any) (bool, any) {
		top := state.(uint64)
		if output == nil {
			return true, top
		}
		r := output.([2]uint64)
		if r[0] < top {
			return false, top
		}
		return true, r[1]
	},
	Hash: func(state any) uint64 { return state.(uint64) },
	DescribeOperation: func(input, output any) string {
		if output == nil {
			return fmt.Sprintf("next-range(%d) -> ?", input)
		}
		r := output.([2]uint64)
		return fmt.Sprintf("next-range(%d) -> [%d,%d)", input, r[0], r[1])
	},
	DescribeState: func(state any) string { return fmt.Sprintf("top=%d", state) },
}

// porcupineCheck checks one sequence's ok next-range operations with
// porcupine. Positions in the history are its clock: line order is
// real-time order. A fail did nothing, so it is left out. An info is left
// out too: porcupine would have to place it somewhere after its invoke
// with no output, a step the model always allows and that changes
// nothing, so the verdict is the same without it, and leaving it out
// spares porcupine a search over every place it could go. It returns
// porcupine's verdict and, when the history is illegal and path is set,
// path, where it wrote the visualization with notes (the fault windows)
// as annotations.
func porcupineCheck(oks []*op, timeout time.Duration, path string, notes []porcupine.Annotation) (string, string) {
	var ops []porcupine.Operation
	rows := map[int]int{} // process -> row: porcupine draws a row per client id, from 0
	for _, o := range oks {
		row, ok := rows[o.proc]
		if !ok {
			row = len(rows)
			rows[o.proc] = row
		}
		ops = append(ops, porcupine.Operation{ClientId: row, Input: o.n, Call: int64(o.inv),
			Output: [2]uint64{o.from, o.to}, Return: int64(o.end),
			Metadata: fmt.Sprintf("process %d, events %d-%d", o.proc, o.invIdx, o.endIdx)})
	}
	res, info := porcupine.CheckOperationsVerbose(rangeModel, ops, timeout)
	if res != porcupine.Illegal || path == "" {
		return string(res), ""
	}
	info.AddAnnotations(notes)
	if err := porcupine.VisualizePath(rangeModel, info, path); err != nil {
		return string(res), ""
	}
	return string(res), path
}

// faultAnnotations put the nemesis's events on porcupine's timeline: a
// start-F and the next stop-F make one window, F, from one to the other
// (to the end of the history when it never stops); any other fault event
// is a point. Times are positions in the history, porcupine's clock here.
func faultAnnotations(events []history.Event) []porcupine.Annotation {
	t := faultTimeline{open: map[string]int{}}
	for pos := range events {
		if events[pos].Nemesis {
			t.add(pos, &events[pos])
		}
	}
	return t.done(len(events))
}

// faultTimeline builds faultAnnotations a fault event at a time.
type faultTimeline struct {
	out  []porcupine.Annotation
	open map[string]int // fault -> its window in out
}

// toEnd marks a window that runs to the end of the history, until done
// knows where that is.
const toEnd = -1

func (t *faultTimeline) add(pos int, e *history.Event) {
	a := porcupine.Annotation{Tag: "nemesis", Start: int64(pos), End: int64(pos),
		Description: e.F, Details: describeFault(*e), BackgroundColor: "#fde2c4"}
	if name, ok := strings.CutPrefix(e.F, "start-"); ok {
		a.Description, a.End = name, toEnd
		t.open[name] = len(t.out)
		t.out = append(t.out, a)
		return
	}
	if name, ok := strings.CutPrefix(e.F, "stop-"); ok {
		if i, ok := t.open[name]; ok {
			delete(t.open, name)
			t.out[i].End = int64(pos)
			t.out[i].Details += "; " + describeFault(*e)
			return
		}
	}
	t.out = append(t.out, a)
}

// done returns the annotations of a history of n events.
func (t *faultTimeline) done(n int) []porcupine.Annotation {
	for i := range t.out {
		if t.out[i].End == toEnd {
			t.out[i].End = int64(n)
		}
	}
	return t.out
}

func describeFault(e history.Event) string {
	if len(e.Value) == 0 {
		return fmt.Sprintf("%s at event %d", e.F, e.Index)
	}
	return fmt.Sprintf("%s at event %d: %s", e.F, e.Index, e.Value)
}

// visualizationFile names the HTML view of a sequence: prefix, then
// linearizable-NAME.html, with NAME made safe for a file name. A name
// that had to change gets a hash of the original, so two sequences never
// share a file.
func visualizationFile(prefix, name string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, name)
	if safe != name || safe == "" {
		safe += fmt.Sprintf("-%08x", crc32.ChecksumIEEE([]byte(name)))
	}
	return prefix + "linearizable-" + safe + ".html"
}
