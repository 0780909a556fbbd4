package sim

import "time"

// label names an event for the trace without formatting anything: a
// kind, up to two hosts and two numbers.
type label struct {
	kind     string
	from, to string
	a, b     uint64
}

// event is one scheduled piece of work. Events live in the simulator's
// slab (sim.evs) and are named by their index there, so the queue moves
// small keys without pointers (no write barriers while the GC runs) and
// a finished event's slot is reused without allocating.
type event struct {
	at  time.Duration
	seq uint64 // unique; also tells a live timer from a reused slot
	l   label
	// What runs: fn, or h.handle(op) (a handler saves allocating a
	// closure per message).
	fn func()
	h  handler
	// owner, when set, is the node process the event belongs to: it is
	// dropped if that process died since (another epoch) and held while
	// the node is paused.
	owner *Host
	epoch int
	pos   int32 // position in the heap, inLane, or -1 when not queued
	op    uint8
	// wire marks a message in flight from l.from to l.to: it is lost if
	// the link is cut when it arrives.
	wire bool
	// (The small fields last: the struct packs into 128 bytes.)
}

// handler runs events without a closure.
type handler interface{ handle(op uint8, a, b uint64) }

// key is an event's place in the queue: its time, a seeded hash of the
// event that orders events due at the same time, its seq, and its slot.
type key struct {
	at   time.Duration
	tie  uint64
	seq  uint64
	slot int32
}

// before orders events by time, then by the seeded tie, then by seq.
func (k *key) before(o *key) bool {
	if k.at != o.at {
		return k.at < o.at
	}
	if k.tie != o.tie {
		return k.tie < o.tie
	}
	return k.seq < o.seq
}

// queue is a 4-ary min-heap of keys that keeps each event's position in
// its slot, so that a cancelled timer leaves the queue at once instead of
// being popped and skipped later. Four children a node make the heap half
// as deep as a binary one, for a few more comparisons a level, and keys
// are unique (seq), so the order events leave in is the same either way.
// Beside the heap, wires hold the messages of fixed delays, already in
// order; the next event is the first of the heap's and the wires'.
// (Deadlines wait in lanes outside the queue: see deadline.)
type queue struct {
	h   []key
	evs *[]event
	// wires are the messages in flight of the run's fixed delays, each
	// in its order: with no jitter, every message of a delay arrives in
	// the order it was sent, so it needs no heap (see pushWire).
	wires []wire
	// noWires puts every message in the heap, for the tests to compare.
	noWires bool
}

// maxWires bounds the delays with a wire of their own: a run without
// jitter has one or two (its latency, a slowed host's).
const maxWires = 2

// inWire is the queue position of a message in a wire.
const inWire = -3

// wire is the keys of messages of delay d, in key order, from head.
type wire struct {
	d    time.Duration
	keys []key
	head int
}

// pushWire queues the key of a message sent with delay d: in d's wire if
// it has one, else in the heap. Messages sent at the same time tie: one
// goes among the last keys of its time in key order.
func (q *queue) pushWire(k key, d time.Duration) {
	if q.noWires {
		q.push(k)
		return
	}
	var w *wire
	for i := range q.wires {
		if q.wires[i].d == d {
			w = &q.wires[i]
			break
		}
	}
	if w == nil {
		if len(q.wires) < maxWires {
			q.wires = append(q.wires, wire{d: d})
			w = &q.wires[len(q.wires)-1]
		} else {
			for i := range q.wires {
				if q.wires[i].head == len(q.wires[i].keys) {
					w = &q.wires[i]
					w.d = d
					break
				}
			}
		}
	}
	if w == nil {
		q.push(k)
		return
	}
	(*q.evs)[k.slot].pos = inWire
	if w.head == len(w.keys) {
		w.keys, w.head = w.keys[:0], 0
	} else if w.head > 256 && w.head > len(w.keys)/2 {
		n := copy(w.keys, w.keys[w.head:])
		w.keys, w.head = w.keys[:n], 0
	}
	w.keys = append(w.keys, k)
	i := len(w.keys) - 1
	for i > w.head && w.keys[i-1].at == k.at && k.before(&w.keys[i-1]) {
		w.keys[i] = w.keys[i-1]
		i--
	}
	w.keys[i] = k
}

// next takes the first key due by limit, from the heap or a wire; false
// if none is.
func (q *queue) next(limit time.Duration) (key, bool) {
	var first *key
	from := -1 // the heap, or a wire
	if len(q.h) > 0 {
		first = &q.h[0]
	}
	for i := range q.wires {
		w := &q.wires[i]
		if w.head < len(w.keys) && (first == nil || w.keys[w.head].before(first)) {
			first, from = &w.keys[w.head], i
		}
	}
	if first == nil || first.at > limit {
		return key{}, false
	}
	if from < 0 {
		return q.pop(), true
	}
	k := *first
	q.wires[from].head++
	(*q.evs)[k.slot].pos = -1
	return k, true
}

func (q *queue) push(k key) {
	i := len(q.h)
	q.h = append(q.h, k)
	(*q.evs)[k.slot].pos = int32(i)
	q.up(i)
}

func (q *queue) pop() key { return q.remove(0) }

func (q *queue) remove(i int) key {
	h := q.h
	k := h[i]
	last := len(h) - 1
	if i != last {
		h[i] = h[last]
		(*q.evs)[h[i].slot].pos = int32(i)
	}
	q.h = h[:last]
	if i != last {
		if !q.down(i) {
			q.up(i)
		}
	}
	(*q.evs)[k.slot].pos = -1
	return k
}

func (q *queue) up(i int) {
	h, evs := q.h, *q.evs
	k := h[i]
	for i > 0 {
		p := (i - 1) / 4
		if !k.before(&h[p]) {
			break
		}
		h[i] = h[p]
		evs[h[i].slot].pos = int32(i)
		i = p
	}
	h[i] = k
	evs[k.slot].pos = int32(i)
}

// down sinks h[i]; it reports whether it moved.
func (q *queue) down(i int) bool {
	h, evs := q.h, *q.evs
	start, n := i, len(h)
	k := h[i]
	for {
		l := 4*i + 1
		if l >= n {
			break
		}
		m := l
		for c := l + 1; c < min(l+4, n); c++ {
			if h[c].before(&h[m]) {
				m = c
			}
		}
		if !h[m].before(&k) {
			break
		}
		h[i] = h[m]
		evs[h[i].slot].pos = int32(i)
		i = m
	}
	h[i] = k
	evs[k.slot].pos = int32(i)
	return i > start
}

// timer is a handle on a scheduled event, to cancel it.
type timer struct {
	slot int32
	seq  uint64
}

// at schedules fn after d and returns a handle that can cancel it.
func (s *sim) at(d time.Duration, l label, fn func()) timer {
	return s.schedule(&event{at: s.now + d, l: l, fn: fn})
}

// deadlineH is atH for a timer that is likely to be cancelled (see
// deadline).
func (s *sim) deadlineH(d time.Duration, l label, h handler, op uint8) timer {
	return s.deadline(&event{at: s.now + d, l: l, h: h, op: op})
}

// atH is at with a handler instead of a closure.
func (s *sim) atH(d time.Duration, l label, h handler, op uint8) timer {
	return s.schedule(&event{at: s.now + d, l: l, h: h, op: op})
}

// schedule queues e. Its tie is a seeded hash of its time and label, not a
// draw from the run's source: events then keep their order whatever other
// events come and go, so spelling out a run's workload or dropping an
// operation disturbs no draw but the ones that operation made itself.
func (s *sim) schedule(e *event) timer {
	slot, seq := s.take(e)
	k := key{at: e.at, tie: s.tie(e.at, &e.l), seq: seq, slot: slot}
	if e.wire {
		s.q.pushWire(k, e.at-s.now)
	} else {
		s.q.push(k)
	}
	return timer{slot, seq}
}

// take puts e in a slot of its own, with the next seq.
func (s *sim) take(e *event) (int32, uint64) {
	s.seq++
	var slot int32
	if k := len(s.free); k > 0 {
		slot, s.free = s.free[k-1], s.free[:k-1]
	} else {
		slot = int32(len(s.evs))
		s.evs = append(s.evs, event{})
	}
	if r, ok := e.h.(*Request); ok {
		r.pending++
	}
	s.evs[slot] = *e
	s.evs[slot].seq = s.seq
	return slot, s.seq
}

// fire runs a popped event: it notes it in the trace, drops a message
// whose link is cut, drops the work of a dead process and holds that of a
// paused one.
func (s *sim) fire(e *event) {
	s.events++
	s.note(&e.l)
	if e.wire && s.net.isCut(e.l.from, e.l.to) {
		s.note(&label{kind: "drop-in-flight", from: e.l.from, to: e.l.to, a: e.l.a, b: e.l.b})
		return
	}
	if n := e.owner; n != nil {
		if n.epoch != e.epoch || !n.up {
			return
		}
		if n.paused {
			if e.h != nil {
				h, op, a, b := e.h, e.op, e.l.a, e.l.b
				r, _ := h.(*Request)
				if r != nil {
					r.pending++ // the held work names it
				}
				n.held = append(n.held, func() {
					h.handle(op, a, b)
					if r != nil {
						r.pending--
						s.reclaim(r)
					}
				})
			} else {
				n.held = append(n.held, e.fn)
			}
			return
		}
	}
	if e.h != nil {
		e.h.handle(e.op, e.l.a, e.l.b)
	} else {
		e.fn()
	}
}

// cancel removes a scheduled event that has not run yet; it does nothing
// to one that ran or was cancelled already.
func (s *sim) cancel(t timer) {
	if t.seq == 0 || int(t.slot) >= len(s.evs) {
		return
	}
	e := &s.evs[t.slot]
	if e.seq != t.seq || e.pos == -1 {
		return
	}
	r, _ := e.h.(*Request)
	switch {
	case e.pos >= 0:
		s.q.remove(int(e.pos))
	case e.pos == inWire:
		panic("sim: a message in flight cancelled")
	} // else it waits in a lane, dead once its slot is freed
	s.release(t.slot)
	if r != nil {
		r.pending--
		s.reclaim(r)
	}
}

// release frees a slot for reuse, dropping what it held so that the GC
// can take it.
func (s *sim) release(slot int32) {
	s.evs[slot] = event{pos: -1}
	s.free = append(s.free, slot)
}

// tie hashes an event's time and label with the seed, with a finalizer so
// that the order looks random.
func (s *sim) tie(at time.Duration, l *label) uint64 {
	h := hashLabel(s.tieSeed, uint64(at), l)
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// hashLabel folds a time and a label into the hash h, eight bytes at a
// time, formatting nothing.
func hashLabel(h, at uint64, l *label) uint64 {
	h = fold(h, at)
	h = foldString(h, l.kind)
	h = foldString(h, l.from)
	h = foldString(h, l.to)
	h = fold(h, l.a)
	return fold(h, l.b)
}

// fold mixes one word into h.
func fold(h, x uint64) uint64 {
	h = (h ^ x) * 0x9e3779b97f4a7c15
	return h ^ h>>29
}

// foldString mixes a string into h, its length included so that fields
// cannot run into each other.
func foldString(h uint64, x string) uint64 {
	h = fold(h, uint64(len(x)))
	for len(x) >= 8 {
		// The compiler makes one load of these eight.
		h = fold(h, uint64(x[0])|uint64(x[1])<<8|uint64(x[2])<<16|uint64(x[3])<<24|
			uint64(x[4])<<32|uint64(x[5])<<40|uint64(x[6])<<48|uint64(x[7])<<56)
		x = x[8:]
	}
	if len(x) > 0 {
		h = fold(h, tail(x))
	}
	return h
}

// tail is the word of the last 1 to 7 bytes of a string, little-endian:
// x[i] << (8 * i) summed, from two overlapping loads rather than a loop.
func tail(x string) uint64 {
	n := len(x)
	switch {
	case n >= 4:
		lo := uint64(x[0]) | uint64(x[1])<<8 | uint64(x[2])<<16 | uint64(x[3])<<24
		y := x[n-4:]
		hi := uint64(y[0]) | uint64(y[1])<<8 | uint64(y[2])<<16 | uint64(y[3])<<24
		return lo | hi>>(8*(8-n))<<32
	case n >= 2:
		lo := uint64(x[0]) | uint64(x[1])<<8
		hi := uint64(x[n-2]) | uint64(x[n-1])<<8
		return lo | hi>>(8*(4-n))<<16
	}
	return uint64(x[0])
}
