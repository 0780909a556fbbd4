package checker

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
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

// porcupineCheck checks one sequence's next-range operations with
// porcupine. Positions in the history are its clock: line order is
// real-time order. A fail did nothing, so it is left out. An info is left
// out too: porcupine would have to place it somewhere after its invoke
// with no output, a step the model always allows and that changes
// nothing, so the verdict is the same without it, and leaving it out
// spares porcupine a search over every place it could go. It returns porcupine's verdict and, when the history
// is illegal and dir is set, the visualization's path.
func porcupineCheck(s *seqOps, timeout time.Duration, dir string) (string, string) {
	var ops []porcupine.Operation
	for _, o := range s.ranges {
		switch {
		case o.typ != "ok":
			continue
		default:
			ops = append(ops, porcupine.Operation{ClientId: o.proc, Input: o.n, Call: int64(o.inv),
				Output: [2]uint64{o.from, o.to}, Return: int64(o.end)})
		}
	}
	res, info := porcupine.CheckOperationsVerbose(rangeModel, ops, timeout)
	if res != porcupine.Illegal || dir == "" {
		return string(res), ""
	}
	path := filepath.Join(dir, "linearizable-"+safeName(s.name)+".html")
	if err := porcupine.VisualizePath(rangeModel, info, path); err != nil {
		return string(res), ""
	}
	return string(res), path
}

// safeName keeps a sequence name usable in a file name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}
