package checker

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/seqlab/seqlab/checker/history"
)

// writeHuntHistory writes a history in the shape of one seed of a hunt of
// Speed/healthy-n5-c10, as the simulator records it: 10 client processes
// doing next-range of 1 to 10 IDs on one sequence, served by 5 nodes, for
// ops operations, a few of which end fail or info while a fault (a
// nemesis start and stop) is on, from 40% to 50% of them. The simulator lives
// above this package, so the history is made here, with the Recorder the
// simulator writes with.
func writeHuntHistory(seed uint64, ops int) []byte {
	rng := rand.New(rand.NewPCG(seed, 2))
	var buf bytes.Buffer
	var clock time.Duration
	rec := history.NewRecorder(&buf, func() time.Duration { return clock })
	const procs, nodes = 10, 5
	type proc struct {
		id      int
		busy    bool
		v       history.RangeValue
		outcome int // 0 ok, 1 fail, 2 info
		due     time.Duration
	}
	ps := make([]proc, procs)
	for i := range ps {
		ps[i].id = i
	}
	next := procs
	var top uint64
	fault := false
	for done := 0; done < ops; {
		clock += time.Duration(200+rng.IntN(800)) * time.Microsecond
		if on := done >= ops*4/10 && done < ops/2; on != fault {
			fault = on
			f := "start-partition"
			if !on {
				f = "stop-partition"
			}
			rec.Nemesis(f, "n1,n2|n3,n4,n5")
		}
		p := &ps[rng.IntN(procs)]
		if !p.busy {
			p.busy = true
			p.v = history.RangeValue{Name: "default", N: uint64(1 + rng.IntN(10))}
			p.due = clock + time.Duration(1+rng.IntN(20))*time.Millisecond
			p.outcome = 0
			switch r := rng.IntN(100); {
			case !fault:
			case r < 10:
				p.outcome = 1
			case r < 15:
				p.outcome = 2
			}
			rec.Invoke(p.id, history.NextRange, p.v)
			continue
		}
		if clock < p.due {
			continue
		}
		node := fmt.Sprintf("n%d", 1+rng.IntN(nodes))
		switch p.outcome {
		case 0:
			p.v.From, p.v.To = top+1, top+1+p.v.N
			top += p.v.N
			rec.Ok(p.id, history.NextRange, p.v, node, "")
			p.busy = false
		case 1:
			rec.Fail(p.id, history.NextRange, p.v, node, "unavailable")
			p.busy = false
		case 2:
			top += p.v.N // it happened, unseen
			rec.Info(p.id, history.NextRange, p.v, node, "deadline exceeded")
			*p = proc{id: next}
			next++
		}
		done++
	}
	if err := rec.Err(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// BenchmarkCheckHunt checks a hunt-sized history (2,800 operations, 5,600
// events, 700 KB) as a hunt checks each seed's: from memory, as it reads it,
// porcupine left out.
func BenchmarkCheckHunt(b *testing.B) {
	h := writeHuntHistory(1, 2800)
	opts := Options{PorcupineLimit: -1, Promises: []string{Unique, Linearizable, GapFree, Live}}
	b.SetBytes(int64(len(h)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := CheckReader(bytes.NewReader(h), opts)
		if err != nil || res.Valid != ValidTrue {
			b.Fatal(err, res.Summary())
		}
	}
}

// TestHuntHistory holds the benchmark's history to the shape it claims,
// and to a verdict: it is valid, its gaps explained by its info ops.
func TestHuntHistory(t *testing.T) {
	h := writeHuntHistory(1, 2800)
	res, err := CheckReader(bytes.NewReader(h), Options{PorcupineLimit: -1, Promises: []string{Unique, Linearizable, GapFree, Live}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Valid != ValidTrue || len(res.Malformed) > 0 {
		t.Fatalf("got %s, want valid:\n%s", res.Valid, res.Summary())
	}
	if got := res.Stats.Ops[history.NextRange]["ok"]; got < 2700 {
		t.Errorf("got %d ok ranges, want about 2,800", got)
	}
	if n := res.Checks[NodeOrder].Details.(NodeOrderDetails).Nodes; len(n) != 5 {
		t.Errorf("got nodes %v, want 5", n)
	}
}
