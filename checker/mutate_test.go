package checker

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/checker/history"
)

// mutation rewrites a one-sequence history at random. It returns the new
// history and a line that says exactly what it did, or ok false when the
// history has nothing it applies to. Results go through setRange and
// lines through moveEvent; the caller renumbers and rereads.
type mutation struct {
	name  string
	apply func(rng *rand.Rand, events []history.Event) (out []history.Event, what string, ok bool)
}

// mutations break linearizability or keep it, depending on where they
// land: the property test needs both outcomes, and each checker must see
// the same one.
var mutations = []mutation{
	{"shift", func(rng *rand.Rand, events []history.Event) ([]history.Event, string, bool) {
		o := pick(rng, rangeOps(events, history.Ok))
		if o == nil {
			return nil, "", false
		}
		span := int64(2*o.n + 3)
		delta := rng.Int64N(2*span+1) - span
		if delta == 0 {
			delta = 1
		}
		from := uint64(max(1, int64(o.from)+delta))
		setRange(events, o.inv, o.end, history.RangeValue{Name: "s", N: o.n, From: from, To: from + o.n, Buffer: o.buffer})
		return events, fmt.Sprintf("shift [%d,%d) at %d to [%d,%d)", o.from, o.to, o.endIdx, from, from+o.n), true
	}},
	{"swap", func(rng *rand.Rand, events []history.Event) ([]history.Event, string, bool) {
		oks := rangeOps(events, history.Ok)
		if len(oks) < 2 {
			return nil, "", false
		}
		// Half the time two operations in flight together, whose results
		// may come back either way round.
		var pairs [][2]*op
		for i, a := range oks {
			for _, b := range oks[i+1:] {
				if a.inv < b.end && b.inv < a.end {
					pairs = append(pairs, [2]*op{a, b})
				}
			}
		}
		i := rng.IntN(len(oks))
		j := (i + 1 + rng.IntN(len(oks)-1)) % len(oks)
		a, b := oks[i], oks[j]
		if len(pairs) > 0 && rng.IntN(2) == 0 {
			p := pairs[rng.IntN(len(pairs))]
			a, b = p[0], p[1]
		}
		setRange(events, a.inv, a.end, history.RangeValue{Name: "s", N: b.n, From: b.from, To: b.to, Buffer: a.buffer})
		setRange(events, b.inv, b.end, history.RangeValue{Name: "s", N: a.n, From: a.from, To: a.to, Buffer: b.buffer})
		return events, fmt.Sprintf("swap [%d,%d) at %d with [%d,%d) at %d", a.from, a.to, a.endIdx, b.from, b.to, b.endIdx), true
	}},
	{"fail-to-ok", func(rng *rand.Rand, events []history.Event) ([]history.Event, string, bool) {
		o := pick(rng, rangeOps(events, history.Fail))
		if o == nil {
			return nil, "", false
		}
		from := plausibleFrom(rng, events)
		events[o.end].Type, events[o.end].Error = history.Ok, ""
		setRange(events, o.inv, o.end, history.RangeValue{Name: "s", N: o.n, From: from, To: from + o.n})
		return events, fmt.Sprintf("fail at %d becomes ok [%d,%d)", o.endIdx, from, from+o.n), true
	}},
	{"info-to-ok", func(rng *rand.Rand, events []history.Event) ([]history.Event, string, bool) {
		// An info's result, seen after all and at some other time: its
		// process never invokes again, so the completion can go anywhere
		// after the invoke.
		o := pick(rng, rangeOps(events, history.Info))
		if o == nil {
			return nil, "", false
		}
		from := plausibleFrom(rng, events)
		events[o.end].Type, events[o.end].Error = history.Ok, ""
		setRange(events, o.inv, o.end, history.RangeValue{Name: "s", N: o.n, From: from, To: from + o.n})
		to := o.inv + 1 + rng.IntN(len(events)-1-o.inv)
		return moveEvent(events, o.end, to), fmt.Sprintf("info at %d becomes ok [%d,%d) at line %d", o.endIdx, from, from+o.n, to+1), true
	}},
	{"move-completion", func(rng *rand.Rand, events []history.Event) ([]history.Event, string, bool) {
		// Earlier adds real-time order, later takes it away.
		o := pick(rng, rangeOps(events, history.Ok))
		if o == nil {
			return nil, "", false
		}
		limit := nextInvoke(events, o.proc, o.end) // in the list without the completion
		to := o.inv + 1 + rng.IntN(limit-o.inv)
		return moveEvent(events, o.end, to), fmt.Sprintf("move the completion of [%d,%d) from line %d to %d", o.from, o.to, o.end+1, to+1), true
	}},
	{"move-invoke", func(rng *rand.Rand, events []history.Event) ([]history.Event, string, bool) {
		o := pick(rng, rangeOps(events, history.Ok))
		if o == nil {
			return nil, "", false
		}
		prev := prevCompletion(events, o.proc, o.inv)
		to := prev + 1 + rng.IntN(o.end-1-prev) // o.end-1: the completion's place without the invoke
		return moveEvent(events, o.inv, to), fmt.Sprintf("move the invoke of [%d,%d) from line %d to %d", o.from, o.to, o.inv+1, to+1), true
	}},
	{"insert", func(rng *rand.Rand, events []history.Event) ([]history.Event, string, bool) {
		// A new client with one ok range.
		proc := 0
		for _, e := range events {
			if !e.Nemesis {
				proc = max(proc, e.Process+1)
			}
		}
		n := uint64(1 + rng.IntN(10))
		from := plausibleFrom(rng, events)
		v := history.RangeValue{Name: "s", N: n, From: from, To: from + n}
		done := history.Event{Process: proc, Type: history.Ok, F: history.NextRange}
		inv := history.Event{Process: proc, Type: history.Invoke, F: history.NextRange}
		b := rng.IntN(len(events) + 1)
		a := rng.IntN(b + 1)
		events = slices.Insert(events, b, done)
		events = slices.Insert(events, a, inv)
		setRange(events, a, b+1, v)
		return events, fmt.Sprintf("insert ok [%d,%d) invoked at line %d, completed at line %d", from, from+n, a+1, b+2), true
	}},
	{"ok-to-info", func(rng *rand.Rand, events []history.Event) ([]history.Event, string, bool) {
		// Only takes constraints away, so on its own it keeps a valid
		// history valid; stacked, it can save a broken one. The process
		// must not invoke again.
		var last []*op
		for _, o := range rangeOps(events, history.Ok) {
			if nextInvoke(events, o.proc, o.end) == len(events)-1 {
				last = append(last, o)
			}
		}
		o := pick(rng, last)
		if o == nil {
			return nil, "", false
		}
		events[o.end].Type, events[o.end].Error = history.Info, "timeout"
		setRange(events, o.inv, o.end, history.RangeValue{Name: "s", N: o.n, Buffer: o.buffer})
		return events, fmt.Sprintf("ok [%d,%d) at %d becomes info", o.from, o.to, o.endIdx), true
	}},
}

// rangeOps are the history's next-range operations that completed typ.
func rangeOps(events []history.Event, typ string) []*op {
	seqs, _ := collect(events)
	var out []*op
	for _, s := range seqs {
		for _, o := range s.ranges {
			if o.typ.String() == typ {
				out = append(out, o)
			}
		}
	}
	return out
}

func pick(rng *rand.Rand, ops []*op) *op {
	if len(ops) == 0 {
		return nil
	}
	return ops[rng.IntN(len(ops))]
}

// plausibleFrom is a start a buggy sequencer might hand out: right after
// a range, inside one, past the top, or anywhere below it.
func plausibleFrom(rng *rand.Rand, events []history.Event) uint64 {
	oks := rangeOps(events, history.Ok)
	top := uint64(1)
	for _, o := range oks {
		top = max(top, o.to)
	}
	o := pick(rng, oks)
	switch r := rng.IntN(4); {
	case r == 0 && o != nil:
		return o.to
	case r == 1 && o != nil:
		return o.from + uint64(rng.IntN(int(o.n)))
	case r == 2:
		return top + uint64(rng.IntN(3))
	}
	return 1 + uint64(rng.IntN(int(top)))
}

// nextInvoke is where process proc invokes next after position pos, in
// the list with the event at pos removed; the list's length then when it
// never does.
func nextInvoke(events []history.Event, proc, pos int) int {
	for i := pos + 1; i < len(events); i++ {
		if e := events[i]; !e.Nemesis && e.Process == proc && e.Type == history.Invoke {
			return i - 1
		}
	}
	return len(events) - 1
}

// prevCompletion is the position of process proc's last completion before
// pos, -1 when there is none.
func prevCompletion(events []history.Event, proc, pos int) int {
	for i := pos - 1; i >= 0; i-- {
		if e := events[i]; !e.Nemesis && e.Process == proc && e.Type != history.Invoke {
			return i
		}
	}
	return -1
}

// moveEvent takes the event at from out and puts it back so that it ends
// up at position to.
func moveEvent(events []history.Event, from, to int) []history.Event {
	e := events[from]
	events = slices.Delete(events, from, from+1)
	return slices.Insert(events, to, e)
}

// renumber makes indices and times follow line order again.
func renumber(events []history.Event) []history.Event {
	for i := range events {
		events[i].Index, events[i].Time = int64(i), int64(i)*1000
	}
	return events
}

// TestLinearizableMutations is the property test of the linearizability
// checkers: on generated valid histories with random mutations stacked on
// them, the direct checker and porcupine give the same verdict, every
// time. Some mutations break the history and some do not; both shares
// must be large, or the test proves nothing. A failure prints the seed,
// the mutations and the history, and -run TestLinearizableMutations/seed=N
// replays it.
func TestLinearizableMutations(t *testing.T) {
	seeds := uint64(200)
	if testing.Short() {
		seeds = 50
	}
	type tally struct{ valid, invalid int }
	byKind := map[string]*tally{}
	for _, m := range mutations {
		byKind[m.name] = &tally{}
	}
	var total tally
	ran := uint64(0)
	for seed := uint64(1); seed <= seeds; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			ran++
			base := genHistory(seed, 8, 40, []string{"s"})
			rng := rand.New(rand.NewPCG(seed, 2))
			for trial := range 4 {
				events := slices.Clone(base)
				var what []string
				kinds := map[string]bool{}
				for range 1 + rng.IntN(3) {
					m := mutations[rng.IntN(len(mutations))]
					out, w, ok := m.apply(rng, events)
					if !ok {
						continue
					}
					events = renumber(out)
					what = append(what, m.name+": "+w)
					kinds[m.name] = true
				}
				if len(what) == 0 {
					continue
				}
				// Each mutation keeps the history well formed: it reads
				// back without a complaint.
				events = reread(t, events)
				d, p := linearizableBoth(t, events)
				if p == "Unknown" || (d == ValidTrue) != (p == "Ok") {
					var buf bytes.Buffer
					require.NoError(t, history.Write(&buf, events))
					t.Fatalf("seed %d trial %d: direct says %s, porcupine says %s\nmutations:\n  %s\nhistory:\n%s"+
						"replay: go test ./checker -run 'TestLinearizableMutations/^seed=%d$' -v",
						seed, trial, d, p, strings.Join(what, "\n  "), buf.String(), seed)
				}
				count := func(tl *tally) {
					if d == ValidFalse {
						tl.invalid++
					} else {
						tl.valid++
					}
				}
				count(&total)
				for k := range kinds {
					count(byKind[k])
				}
			}
		})
	}
	n := total.valid + total.invalid
	t.Logf("%d mutated histories: %d valid, %d invalid", n, total.valid, total.invalid)
	for _, m := range mutations {
		t.Logf("  %-16s valid %4d  invalid %4d", m.name, byKind[m.name].valid, byKind[m.name].invalid)
	}
	if ran < seeds {
		return // -run chose some seeds: the shares are for all of them
	}
	require.GreaterOrEqual(t, n, int(3*seeds), "most trials must mutate something")
	if share := float64(total.invalid) / float64(n); share < 0.25 || share > 0.85 {
		t.Errorf("%.0f%% of mutated histories are invalid, want between 25%% and 85%%", 100*share)
	}
	// Every kind is seen, and each kind that can break a history did: a
	// mutation that never breaks anything tests nothing.
	for _, m := range mutations {
		k := byKind[m.name]
		if k.valid+k.invalid == 0 {
			t.Errorf("mutation %s never applied", m.name)
		}
		if m.name != "ok-to-info" && k.invalid == 0 {
			t.Errorf("mutation %s never broke a history", m.name)
		}
	}
}
