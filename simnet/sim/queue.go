package sim

import "time"

// label names an event for the trace without formatting anything: a
// kind, up to two hosts and two numbers.
type label struct {
	kind     string
	from, to string
	a, b     uint64
}

// event is one entry of the queue.
type event struct {
	at  time.Duration
	tie uint64 // a seeded hash of the event: orders events due at the same time
	seq uint64 // unique; also tells a live timer from a reused event
	idx int    // position in the queue, -1 when not queued
	l   label
	// What runs: fn, or h.handle(op) (a handler saves allocating a
	// closure per message).
	fn func()
	h  handler
	op uint8
	// owner, when set, is the node process the event belongs to: it is
	// dropped if that process died since (another epoch) and held while
	// the node is paused.
	owner *Host
	epoch int
	// wire marks a message in flight from l.from to l.to: it is lost if
	// the link is cut when it arrives.
	wire bool
}

// handler runs events without a closure.
type handler interface{ handle(op uint8) }

// before orders events by time, then by the seeded tie, then by seq.
func (e *event) before(o *event) bool {
	if e.at != o.at {
		return e.at < o.at
	}
	if e.tie != o.tie {
		return e.tie < o.tie
	}
	return e.seq < o.seq
}

// queue is a binary min-heap of events that knows each event's position,
// so that a cancelled timer leaves the queue at once instead of being
// popped and skipped later.
type queue []*event

func (q *queue) push(e *event) {
	e.idx = len(*q)
	*q = append(*q, e)
	q.up(e.idx)
}

func (q *queue) pop() *event {
	return q.remove(0)
}

func (q *queue) remove(i int) *event {
	h := *q
	e := h[i]
	last := len(h) - 1
	if i != last {
		h[i] = h[last]
		h[i].idx = i
	}
	h[last] = nil
	*q = h[:last]
	if i != last {
		if !q.down(i) {
			q.up(i)
		}
	}
	e.idx = -1
	return e
}

func (q queue) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !q[i].before(q[p]) {
			return
		}
		q[i], q[p] = q[p], q[i]
		q[i].idx, q[p].idx = i, p
		i = p
	}
}

// down sinks q[i]; it reports whether it moved.
func (q queue) down(i int) bool {
	start, n := i, len(q)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && q[r].before(q[l]) {
			m = r
		}
		if !q[m].before(q[i]) {
			break
		}
		q[i], q[m] = q[m], q[i]
		q[i].idx, q[m].idx = i, m
		i = m
	}
	return i > start
}

// timer is a handle on a scheduled event, to cancel it.
type timer struct {
	e   *event
	seq uint64
}

// at schedules fn after d and returns a handle that can cancel it.
func (s *sim) at(d time.Duration, l label, fn func()) timer {
	return s.schedule(event{at: s.now + d, l: l, fn: fn})
}

// schedule queues e. Its tie is a seeded hash of its time and label, not a
// draw from the run's source: events then keep their order whatever other
// events come and go, so spelling out a run's workload or dropping an
// operation disturbs no draw but the ones that operation made itself.
func (s *sim) schedule(e event) timer {
	s.seq++
	var p *event
	if k := len(s.free); k > 0 {
		p, s.free = s.free[k-1], s.free[:k-1]
	} else {
		p = new(event)
	}
	e.tie, e.seq = s.tie(e.at, e.l), s.seq
	*p = e
	s.q.push(p)
	return timer{p, s.seq}
}

// fire runs a popped event: it notes it in the trace, drops a message
// whose link is cut, drops the work of a dead process and holds that of a
// paused one.
func (s *sim) fire(e *event) {
	s.events++
	s.note(e.l)
	if e.wire && s.net.cut[[2]string{e.l.from, e.l.to}] {
		s.note(label{kind: "drop-in-flight", from: e.l.from, to: e.l.to, a: e.l.a, b: e.l.b})
		return
	}
	if n := e.owner; n != nil {
		if n.epoch != e.epoch || !n.up {
			return
		}
		if n.paused {
			if e.h != nil {
				h, op := e.h, e.op
				n.held = append(n.held, func() { h.handle(op) })
			} else {
				n.held = append(n.held, e.fn)
			}
			return
		}
	}
	if e.h != nil {
		e.h.handle(e.op)
	} else {
		e.fn()
	}
}

// cancel removes a scheduled event that has not run yet; it does nothing
// to one that ran or was cancelled already.
func (s *sim) cancel(t timer) {
	if t.e == nil || t.e.seq != t.seq || t.e.idx < 0 {
		return
	}
	e := s.q.remove(t.e.idx)
	*e = event{idx: -1}
	s.free = append(s.free, e)
}

// tie hashes an event's time and label with the seed, with a finalizer so
// that the order looks random.
func (s *sim) tie(at time.Duration, l label) uint64 {
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
func hashLabel(h, at uint64, l label) uint64 {
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
	for len(x) > 0 {
		var w uint64
		k := min(len(x), 8)
		for i := 0; i < k; i++ {
			w |= uint64(x[i]) << (8 * i)
		}
		h = fold(h, w)
		x = x[k:]
	}
	return h
}
