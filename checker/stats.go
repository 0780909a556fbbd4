package checker

import (
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"strings"
	"time"
)

// Stats describe what the clients saw.
type Stats struct {
	// Ops counts completions by operation and outcome; "pending" are
	// operations that never completed.
	Ops map[string]map[string]int `json:"ops"`
	// Latency of ok operations, by operation.
	Latency map[string]Latency `json:"latency"`
	// Windows split the run at every fault event: availability in each.
	Windows []Window `json:"windows"`
	// Faults counts nemesis events.
	Faults int `json:"faults"`
}

// Latency percentiles, in nanoseconds of the history's clock.
type Latency struct {
	P50 time.Duration `json:"p50_ns"`
	P95 time.Duration `json:"p95_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

// Window is the stretch of the run between two fault events.
type Window struct {
	// After is the fault event that opened the window ("" for the start)
	// and Index its index.
	After string `json:"after"`
	Index int64  `json:"index"`
	Start int64  `json:"start_ns"`
	Ok    int    `json:"ok"`
	Total int    `json:"total"`
	// Availability is Ok/Total; -1 when nothing completed.
	Availability float64 `json:"availability"`
}

// stats counts the stream's ops; the windows it counted as it went.
//
// It counts into arrays, not maps, and picks the latency quantiles
// without sorting: it runs on every seed a hunt checks.
func (st *stream) stats() Stats {
	s := Stats{Ops: map[string]map[string]int{}, Latency: map[string]Latency{}}
	var count [fnCount][outcomeCount]int
	st.each(func(o *op) { count[o.f][o.typ]++ })
	var lat [fnCount][]time.Duration
	for f := range lat {
		if n := count[f][okOutcome]; n > 0 {
			lat[f] = make([]time.Duration, 0, n)
		}
	}
	st.each(func(o *op) {
		if o.ok() {
			lat[o.f] = append(lat[o.f], time.Duration(o.endTime-o.invTime))
		}
	})
	for f := range count {
		var m map[string]int
		for typ, n := range count[f] {
			if n == 0 {
				continue
			}
			if m == nil {
				m = map[string]int{}
				s.Ops[fn(f).String()] = m
			}
			name := outcome(typ).String()
			if name == "" {
				name = "pending"
			}
			m[name] = n
		}
		if ls := lat[f]; len(ls) > 0 {
			s.Latency[fn(f).String()] = quantiles(ls)
		}
	}
	s.Faults = st.faults
	s.Windows = append(slices.Clip(st.windows), st.window.done())
	return s
}

// quantiles are the latency figures of ls, as its sorted form would give
// them: the element at p*len for each percentile p, and the largest. It
// reorders ls.
func quantiles(ls []time.Duration) Latency {
	q := func(p float64) int { return min(len(ls)-1, int(p*float64(len(ls)))) }
	i50, i95, i99 := q(0.50), q(0.95), q(0.99)
	// Each selection leaves the elements below its index no greater than
	// the element there, so the next, lower index is selected among them.
	var l Latency
	l.Max = slices.Max(ls)
	l.P99 = nth(ls, i99)
	l.P95 = nth(ls[:i99+1], i95)
	l.P50 = nth(ls[:i95+1], i50)
	return l
}

// nth reorders xs so that xs[k] is the element sorted order puts there,
// with none greater before it and none smaller after it, and returns it:
// quickselect, with a sort to finish a range that partitions badly.
func nth(xs []time.Duration, k int) time.Duration {
	lo, hi := 0, len(xs) // k is in xs[lo:hi]
	for budget := 2 * bits.Len(uint(len(xs))); hi-lo > 16; budget-- {
		if budget == 0 {
			slices.Sort(xs[lo:hi])
			return xs[k]
		}
		// Median of three as the pivot, then a three-way partition:
		// [lo, lt) < pivot, [lt, gt) == pivot, [gt, hi) > pivot.
		a, b, c := xs[lo], xs[lo+(hi-lo)/2], xs[hi-1]
		pivot := max(min(a, b), min(max(a, b), c))
		lt, i, gt := lo, lo, hi
		for i < gt {
			switch x := xs[i]; {
			case x < pivot:
				xs[lt], xs[i] = x, xs[lt]
				lt++
				i++
			case x > pivot:
				gt--
				xs[gt], xs[i] = x, xs[gt]
			default:
				i++
			}
		}
		switch {
		case k < lt:
			hi = lt
		case k >= gt:
			lo = gt
		default:
			return pivot
		}
	}
	slices.Sort(xs[lo:hi])
	return xs[k]
}

func (w Window) done() Window {
	w.Availability = -1
	if w.Total > 0 {
		w.Availability = float64(w.Ok) / float64(w.Total)
	}
	return w
}

// line is the one-line summary of the stats.
func (s Stats) line() string {
	var parts []string
	fs := make([]string, 0, len(s.Ops))
	for f := range s.Ops {
		fs = append(fs, f)
	}
	sort.Strings(fs)
	for _, f := range fs {
		m := s.Ops[f]
		p := fmt.Sprintf("%s ok=%d fail=%d info=%d", f, m["ok"], m["fail"], m["info"])
		if m["pending"] > 0 {
			p += fmt.Sprintf(" pending=%d", m["pending"])
		}
		if l, ok := s.Latency[f]; ok {
			p += fmt.Sprintf(" p50=%v p99=%v max=%v", l.P50, l.P99, l.Max)
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		parts = append(parts, "no client operations")
	}
	if s.Faults > 0 {
		lo := 2.0
		for _, w := range s.Windows {
			if w.Availability >= 0 && w.Availability < lo {
				lo = w.Availability
			}
		}
		if lo <= 1 {
			parts = append(parts, fmt.Sprintf("%d fault events, worst window availability %.0f%%", s.Faults, 100*lo))
		}
	}
	return strings.Join(parts, "; ")
}
