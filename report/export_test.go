package report

// SetCapsForTest sets the scatter's and the timeline's caps until the
// returned function puts them back.
func SetCapsForTest(points, timeline int) func() {
	p, tl := maxPoints, maxTimeline
	maxPoints, maxTimeline = points, timeline
	return func() { maxPoints, maxTimeline = p, tl }
}
