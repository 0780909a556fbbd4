package checker

import (
	"bytes"
	"io"
	"math/rand/v2"
	"time"

	"github.com/seqlab/seqlab/checker/history"
)

// genHistory simulates a correct sequencer under concurrent clients and
// records what they saw: procs processes, ops operations, on one or more
// sequences. Each allocation takes effect at a random point between its
// invoke and its completion; some end fail (nothing happened) or info
// (it happened or not; the process is then replaced). A share of the
// processes are client libraries doing next-id from buffered ranges.
func genHistory(seed uint64, procs, ops int, names []string) []history.Event {
	var buf bytes.Buffer
	if err := writeHistory(&buf, seed, procs, ops, names); err != nil {
		panic(err)
	}
	events, problems, err := history.Read(&buf)
	if err != nil || len(problems) > 0 {
		panic("generated history does not read back")
	}
	return events
}

// writeHistory is genHistory's history as JSON Lines, written to w as it
// is made: a history of ten million events need not fit in memory.
func writeHistory(w io.Writer, seed uint64, procs, ops int, names []string) error {
	rng := rand.New(rand.NewPCG(seed, 1))
	var clock time.Duration
	rec := history.NewRecorder(w, func() time.Duration { return clock })
	type proc struct {
		id       int
		name     string
		busy     bool
		size     uint64
		applied  bool
		outcome  int // 0 ok, 1 fail, 2 info
		from, to uint64
		idClient bool
		fetchPid int
		buf      []uint64
		fetching bool
	}
	top := map[string]uint64{}
	next := 0
	newProc := func(p *proc) {
		p.id = next
		next++
		p.busy, p.applied = false, false
	}
	ps := make([]*proc, procs)
	for i := range ps {
		ps[i] = &proc{name: names[i%len(names)], idClient: i%8 == 7}
		newProc(ps[i])
	}
	alloc := func(name string, n uint64) (uint64, uint64) {
		// A correct sequencer may skip IDs (a lost write) now and then.
		if rng.IntN(50) == 0 {
			top[name] += uint64(rng.IntN(3))
		}
		from := top[name] + 1
		top[name] += n
		return from, from + n
	}
	done := 0
	for done < ops {
		clock += time.Duration(rng.IntN(1000)) * time.Microsecond
		p := ps[rng.IntN(len(ps))]
		if p.idClient && !p.busy {
			// Hand out from the buffer, fetching when empty.
			if len(p.buf) == 0 {
				fp := next
				next++
				v := history.RangeValue{Name: p.name, N: 8, Buffer: true}
				rec.Invoke(fp, history.NextRange, v)
				v.From, v.To = alloc(p.name, 8)
				clock += time.Microsecond
				rec.Ok(fp, history.NextRange, v, "n1", "")
				for id := v.From; id < v.To; id++ {
					p.buf = append(p.buf, id)
				}
				done++
			}
			rec.Invoke(p.id, history.NextID, history.IDValue{Name: p.name})
			rec.Ok(p.id, history.NextID, history.IDValue{Name: p.name, ID: p.buf[0]}, "", "")
			p.buf = p.buf[1:]
			done++
			continue
		}
		if !p.busy {
			p.busy = true
			p.size = uint64(1 + rng.IntN(10))
			p.outcome = 0
			switch r := rng.IntN(100); {
			case r < 2:
				p.outcome = 1
			case r < 5:
				p.outcome = 2
			}
			rec.Invoke(p.id, history.NextRange, history.RangeValue{Name: p.name, N: p.size})
			continue
		}
		if !p.applied && p.outcome != 1 && rng.IntN(2) == 0 {
			p.applied = true
			if p.outcome == 2 && rng.IntN(2) == 0 {
				continue // an info that never happened
			}
			p.from, p.to = alloc(p.name, p.size)
			continue
		}
		if p.outcome == 0 && !p.applied {
			continue // must take effect before completing
		}
		v := history.RangeValue{Name: p.name, N: p.size}
		switch p.outcome {
		case 0:
			v.From, v.To = p.from, p.to
			rec.Ok(p.id, history.NextRange, v, "n1", "")
			p.busy, p.applied = false, false
		case 1:
			rec.Fail(p.id, history.NextRange, v, "n1", "refused")
			p.busy = false
		case 2:
			rec.Info(p.id, history.NextRange, v, "n1", "timeout")
			newProc(p)
		}
		done++
	}
	return rec.Err()
}

// bytesBuffer is a buffer that can be read many times.
type bytesBuffer struct{ bytes.Buffer }

func (b *bytesBuffer) reader() *bytes.Reader { return bytes.NewReader(b.Bytes()) }
