package report

import "runtime"

// SetCapsForTest sets the scatter's and the timeline's caps until the
// returned function puts them back.
func SetCapsForTest(points, timeline int) func() {
	p, tl := maxPoints, maxTimeline
	maxPoints, maxTimeline = points, timeline
	return func() { maxPoints, maxTimeline = p, tl }
}

// HeldForTest loads the run in dir as Render does and returns the heap
// the loaded run holds, in bytes, and its client operations: what a
// report keeps of a history.
func HeldForTest(dir string) (held uint64, ops int, err error) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, err := load(dir)
	if err != nil {
		return 0, 0, err
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(r)
	if after.HeapAlloc > before.HeapAlloc {
		held = after.HeapAlloc - before.HeapAlloc
	}
	return held, len(r.ops), nil
}
