package checker

import (
	"fmt"
	"time"
)

// DefaultLiveWithin is the default of Options.LiveWithin.
const DefaultLiveWithin = 3 * time.Second

// LiveDetails are what the live check found.
type LiveDetails struct {
	// Heal is when the last fault event happened (0 for none), Bound
	// the time the cluster has from then to serve again.
	Heal  time.Duration `json:"heal_ns"`
	Bound time.Duration `json:"bound_ns"`
	// Judged counts the operations invoked from Heal+Bound on, Failed
	// those of them that did not succeed.
	Judged int `json:"judged"`
	Failed int `json:"failed"`
	// Processes are the client processes whose operations failed then.
	Processes []int `json:"processes,omitempty"`
	// Unavailable is how long after Heal the cluster stayed
	// unavailable: until the last failed operation ended, or until the
	// first success if none failed. -1 if no operation succeeded after
	// Heal.
	Unavailable time.Duration `json:"unavailable_ns"`
}

// checkLive decides liveness: once the last fault has healed, the
// cluster must serve again within the bound, so every client operation
// invoked from Heal+bound on must succeed. An operation still pending
// when the history ends is not judged: the run cut it off.
func checkLive(st *stream, bound time.Duration) Result {
	heal := st.heal
	from := heal + int64(bound)
	d := LiveDetails{Heal: time.Duration(heal), Bound: bound, Unavailable: -1}
	var bad []int64
	seen := map[int]bool{}
	var firstOk, lastBad int64 = -1, -1
	st.each(func(o *op) {
		if o.end < 0 {
			return
		}
		inv, end := o.invTime, o.endTime
		if o.ok() && inv >= heal && (firstOk < 0 || end < firstOk) {
			firstOk = end
		}
		if inv < from {
			return
		}
		d.Judged++
		if o.ok() {
			return
		}
		d.Failed++
		lastBad = max(lastBad, end)
		bad = append(bad, o.ref())
		if !seen[o.proc] {
			seen[o.proc] = true
			d.Processes = append(d.Processes, o.proc)
		}
	})
	switch {
	case lastBad >= 0:
		d.Unavailable = time.Duration(lastBad - heal)
	case firstOk >= 0:
		d.Unavailable = time.Duration(max(firstOk-heal, 0))
	}
	if d.Judged == 0 {
		return Result{Valid: ValidTrue, Details: d,
			Reason: fmt.Sprintf("no operation invoked %v or more after the last fault (at %v): nothing to judge", bound, d.Heal)}
	}
	if d.Failed > 0 {
		return Result{Valid: ValidFalse, Ops: capOps(bad), Details: d,
			Reason: fmt.Sprintf("%d of %d operations invoked %v or more after the last fault (at %v) did not succeed, from %d processes; the cluster stayed unavailable %v after it",
				d.Failed, d.Judged, bound, d.Heal, len(d.Processes), d.Unavailable)}
	}
	return Result{Valid: ValidTrue, Details: d,
		Reason: fmt.Sprintf("all %d operations invoked %v or more after the last fault (at %v) succeeded; first success %v after it",
			d.Judged, bound, d.Heal, d.Unavailable)}
}
