package checker

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/checker/history"
)

// flakePromises are what a Flake sequencer promises: unique IDs, and
// order per node, not a global order.
var flakePromises = []string{Unique, NodeOrder}

// TestNodeOrder: a Flake history whose nodes' clocks disagree breaks the
// global order but keeps each node's, and passes; a node whose clock
// steps back and hands out lower IDs is caught, with the offending pair.
func TestNodeOrder(t *testing.T) {
	opts := Options{Promises: flakePromises, Sparse: true}
	events, problems, err := history.ReadFile("testdata/node-order-ok.jsonl")
	require.NoError(t, err)
	require.Empty(t, problems)
	res := Check(events, opts)
	assert.Equal(t, ValidTrue, res.Valid, res.Summary())
	no := res.Checks[NodeOrder]
	assert.Equal(t, "5 ranges from 2 nodes, each node's in real-time order", no.Reason)
	assert.Equal(t, NodeOrderDetails{Judged: 5, Nodes: []string{"n1", "n2"}}, no.Details)
	assert.Equal(t, Held, res.Word(NodeOrder))
	assert.Equal(t, ValidFalse, res.Checks[Linearizable].Valid, "n2's clock is behind: no global order")
	assert.Equal(t, NotPromised, res.Word(Linearizable))
	assert.Equal(t, NA, res.Word(GapFree), "IDs are sparse by design")

	events, problems, err = history.ReadFile("testdata/node-order-bad.jsonl")
	require.NoError(t, err)
	require.Empty(t, problems)
	res = Check(events, opts)
	assert.Equal(t, ValidFalse, res.Valid)
	assert.Equal(t, ValidTrue, res.Checks[Unique].Valid, "no ID twice: only the order broke")
	no = res.Checks[NodeOrder]
	assert.Equal(t, Violated, res.Word(NodeOrder))
	assert.Equal(t, []int64{1, 6}, no.Ops)
	assert.Equal(t, "1 ranges not above one their node completed before they were invoked, first: node n1 completed [1000,1005) at 1 before the op invoked at 5, which got [900,905) from it", no.Reason)
	d := no.Details.(NodeOrderDetails)
	assert.Equal(t, [][2]int64{{1, 6}}, d.ExamplePairsOp)
	assert.Equal(t, 1, d.Violations)
	assert.Contains(t, res.Summary(), "node-order    violated      1 ranges not above")
}

// TestNodeOrderVacuous: ranges that name no node leave the check nothing
// to read: n/a, whatever is promised.
func TestNodeOrderVacuous(t *testing.T) {
	h := `{"index":0,"time":0,"process":0,"type":"invoke","f":"next-range","value":{"name":"a","n":1}}
{"index":1,"time":1,"process":0,"type":"ok","f":"next-range","value":{"name":"a","n":1,"from":5,"to":6}}
{"index":2,"time":2,"process":0,"type":"invoke","f":"next-range","value":{"name":"a","n":1}}
{"index":3,"time":3,"process":0,"type":"ok","f":"next-range","value":{"name":"a","n":1,"from":1,"to":2}}
`
	events, _, err := history.Read(strings.NewReader(h))
	require.NoError(t, err)
	res := Check(events, Options{Promises: flakePromises})
	assert.Equal(t, ValidTrue, res.Checks[NodeOrder].Valid)
	assert.Equal(t, "no ranges name the node that issued them", res.Checks[NodeOrder].Reason)
	assert.Equal(t, NA, res.Word(NodeOrder))
	assert.Equal(t, NA, Check(nil, Options{}).Word(NodeOrder))
}

// flakeHistory is a Flake sequencer under concurrent clients: nodes
// nodes, each handing out its own increasing IDs from its own base (a
// node's base is far from the others', as a node ID in the middle of an
// ID keeps them apart), each allocation taking effect at a random point
// between its invoke and its completion. Some ops name no node; some end
// fail or info.
func flakeHistory(t *testing.T, seed uint64, procs, nodes, ops int) []history.Event {
	rng := rand.New(rand.NewPCG(seed, 2))
	var buf bytes.Buffer
	var clock time.Duration
	rec := history.NewRecorder(&buf, func() time.Duration { return clock })
	type proc struct {
		id, node      int
		busy, applied bool
		outcome       int
		from, to, n   uint64
	}
	next := make([]uint64, nodes)
	for i := range next {
		next[i] = uint64(i+1)*1_000_000 + uint64(rng.IntN(1000))
	}
	ps := make([]*proc, procs)
	for i := range ps {
		ps[i] = &proc{id: i}
	}
	nextID := procs
	for done := 0; done < ops; {
		clock += time.Microsecond
		p := ps[rng.IntN(len(ps))]
		if !p.busy {
			p.busy, p.applied, p.node, p.n = true, false, rng.IntN(nodes), uint64(1+rng.IntN(4))
			p.outcome = 0
			if r := rng.IntN(20); r == 0 {
				p.outcome = 1
			} else if r == 1 {
				p.outcome = 2
			}
			rec.Invoke(p.id, history.NextRange, history.RangeValue{Name: "s", N: p.n})
			continue
		}
		if !p.applied && p.outcome != 1 && rng.IntN(2) == 0 {
			p.applied = true
			// A clock that jumps ahead leaves a gap: Flake IDs are sparse.
			next[p.node] += uint64(rng.IntN(3))
			p.from, p.to = next[p.node], next[p.node]+p.n
			next[p.node] = p.to
			continue
		}
		if p.outcome == 0 && !p.applied {
			continue
		}
		node := fmt.Sprintf("n%d", p.node+1)
		if rng.IntN(10) == 0 {
			node = "" // a client that did not say
		}
		v := history.RangeValue{Name: "s", N: p.n}
		switch p.outcome {
		case 0:
			v.From, v.To = p.from, p.to
			rec.Ok(p.id, history.NextRange, v, node, "")
			p.busy = false
		case 1:
			rec.Fail(p.id, history.NextRange, v, node, "refused")
			p.busy = false
		case 2:
			rec.Info(p.id, history.NextRange, v, node, "timeout")
			p.id, p.busy = nextID, false
			nextID++
		}
		done++
	}
	events, problems, err := history.Read(&buf)
	require.NoError(t, err)
	require.Empty(t, problems)
	return events
}

// naiveNodeOrder is the node-order check by its definition, over every
// pair: the ranges (by completion index) that hold an ID at or below one
// of a range their node completed before they were invoked.
func naiveNodeOrder(events []history.Event) map[int64]bool {
	seqs, st := collect(events)
	bad := map[int64]bool{}
	for _, s := range seqs {
		for _, a := range s.ranges {
			for _, b := range s.ranges {
				if a.ok() && b.ok() && a.node >= 0 && a.node == b.node && a.end < b.inv && b.from < a.to {
					bad[b.ref()] = true
				}
			}
		}
	}
	_ = st
	return bad
}

// TestNodeOrderAgreesWithNaive: on random Flake histories, valid and
// with their results swapped at random, the sweep finds exactly the
// ranges the definition does.
func TestNodeOrderAgreesWithNaive(t *testing.T) {
	broken := 0
	for seed := uint64(1); seed <= 60; seed++ {
		events := flakeHistory(t, seed, 6, 3, 120)
		res := Check(events, Options{Promises: flakePromises, Sparse: true})
		require.Equal(t, ValidTrue, res.Valid, "seed %d: %s", seed, res.Summary())
		require.Empty(t, naiveNodeOrder(events), "seed %d", seed)

		// Swap the results of two ok ranges: it breaks a node's order
		// when one came after the other there, and may not otherwise.
		rng := rand.New(rand.NewPCG(seed, 3))
		oks := rangeOps(events, history.Ok)
		for range 1 + rng.IntN(3) {
			a, b := oks[rng.IntN(len(oks))], oks[rng.IntN(len(oks))]
			setRange(events, a.inv, a.end, history.RangeValue{Name: "s", N: b.n, From: b.from, To: b.to})
			setRange(events, b.inv, b.end, history.RangeValue{Name: "s", N: a.n, From: a.from, To: a.to})
			oks = rangeOps(events, history.Ok)
		}
		events = reread(t, events)
		want := naiveNodeOrder(events)
		no := Check(events, Options{Promises: flakePromises, Sparse: true}).Checks[NodeOrder]
		d := no.Details.(NodeOrderDetails)
		assert.Equal(t, len(want), d.Violations, "seed %d: %s", seed, no.Reason)
		for _, p := range d.ExamplePairsOp {
			assert.True(t, want[p[1]], "seed %d: %d is no violation", seed, p[1])
		}
		if len(want) > 0 {
			broken++
			assert.Equal(t, ValidFalse, no.Valid, "seed %d", seed)
		} else {
			assert.Equal(t, ValidTrue, no.Valid, "seed %d: %s", seed, no.Reason)
		}
	}
	assert.Greater(t, broken, 15, "the swaps must break some histories")
	assert.Less(t, broken, 60, "and leave some whole")
}

// TestSparse: a system whose IDs are sparse by design gets gap-free as
// n/a, with its reason, and no ID counted lost; it cannot promise it.
func TestSparse(t *testing.T) {
	events, _, err := history.ReadFile("testdata/gaps-unexplained.jsonl")
	require.NoError(t, err)
	res := Check(events, Options{Sparse: true})
	g := res.Checks[GapFree]
	assert.Equal(t, ValidTrue, g.Valid)
	assert.Equal(t, SparseReason, g.Reason)
	assert.Equal(t, GapDetails{Sparse: true}, g.Details)
	assert.Equal(t, NA, res.Word(GapFree))
	assert.Contains(t, res.Summary(), "gap-free      n/a           IDs are sparse by design")
	assert.ErrorContains(t, Options{Promises: []string{Unique, GapFree}, Sparse: true}.Validate(), "gap-free cannot be promised: IDs are sparse by design")

	// Without it, the same history loses IDs.
	assert.Equal(t, ValidFalse, Check(events, Options{}).Checks[GapFree].Valid)

	// A run.json can say so.
	dir := t.TempDir()
	b, err := os.ReadFile("testdata/gaps-unexplained.jsonl")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, HistoryFile), b, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, RunFile), []byte(`{"promises":["unique","node-order"],"sparse":true}`), 0o644))
	res, err = CheckDir(dir, Options{})
	require.NoError(t, err)
	assert.Equal(t, SparseReason, res.Checks[GapFree].Reason)
	assert.Equal(t, []string{Unique, NodeOrder}, res.Promises)
}

// TestCheckReaderSameAsCheck: checking a history as it is read gives the
// results of checking it whole, malformed lines and all.
func TestCheckReaderSameAsCheck(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		var buf bytes.Buffer
		h := genHistory(seed, 12, 2000, []string{"a", "b"})
		if seed%2 == 0 {
			h = flakeHistory(t, seed, 6, 3, 1000)
		}
		require.NoError(t, history.Write(&buf, h))
		b := buf.Bytes()
		// A corrupt line in the middle, and a last line cut short.
		mid := bytes.IndexByte(b[len(b)/2:], '\n') + len(b)/2 + 1
		b = append(append(append([]byte(nil), b[:mid]...), "{junk\n"...), b[mid:len(b)-20]...)

		events, problems, err := history.Read(bytes.NewReader(b))
		require.NoError(t, err)
		require.NotEmpty(t, problems)
		opts := Options{Promises: []string{Unique, Linearizable, NodeOrder}, VisualizeDir: t.TempDir()}
		want := Check(events, opts)
		want.withMalformed(problems)
		got, err := CheckReader(bytes.NewReader(b), opts)
		require.NoError(t, err)
		want.Duration, got.Duration = 0, 0
		require.Equal(t, want, got, "seed %d", seed)
	}
}
