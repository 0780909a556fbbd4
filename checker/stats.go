package checker

import (
	"fmt"
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
func (st *stream) stats() Stats {
	s := Stats{Ops: map[string]map[string]int{}, Latency: map[string]Latency{}}
	lat := map[string][]time.Duration{}
	st.each(func(o *op) {
		f := o.f.String()
		m := s.Ops[f]
		if m == nil {
			m = map[string]int{}
			s.Ops[f] = m
		}
		typ := o.typ.String()
		if typ == "" {
			typ = "pending"
		}
		m[typ]++
		if o.ok() {
			lat[f] = append(lat[f], time.Duration(o.endTime-o.invTime))
		}
	})
	for f, ls := range lat {
		slices.Sort(ls)
		q := func(p float64) time.Duration { return ls[min(len(ls)-1, int(p*float64(len(ls))))] }
		s.Latency[f] = Latency{P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: ls[len(ls)-1]}
	}
	s.Faults = st.faults
	s.Windows = append(slices.Clip(st.windows), st.window.done())
	return s
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
