package sim

import "time"

// Deadlines are timers set for a fixed time that are nearly always
// cancelled before they fire: a peer's reply cancels its request's
// timeout, an answer its call's. A healthy run sets one for every message
// and fires almost none, so they do not go in the queue's heap when set.
//
// A lane holds the deadlines of one delay, in the order they were set,
// which is the order they fall due in. Each keeps its slot in the
// simulator's slab like any event, and a cancelled one is freed there and
// just left in its lane, dead. A lane has a wake-up in the heap, due just
// before its first deadline: when it comes, the deadlines due next that
// still live go into the heap with the keys they would have had from the
// start, so every event leaves the queue in the same order as if they had
// been there all along, and the wake-up is set for the next one.
//
// A wake-up runs no work of the run's: it is not an event of the trace,
// and not counted.

// maxLanes bounds the lanes: a system's deadlines have a handful of
// delays. A deadline of any other delay, while all lanes hold some, goes
// in the heap.
const maxLanes = 8

// minLaneDelay is the shortest deadline a lane takes: a lane's wake-up is
// due a nanosecond before its first deadline, after the time it was set.
const minLaneDelay = time.Millisecond

// inLane is the queue position of an event that waits in a lane.
const inLane = -2

// lane is the deadlines of delay d, from head on, and its wake-up, which
// is in the heap while armed.
type lane struct {
	s     *sim
	d     time.Duration
	waits []laneWait
	head  int
	wake  int32 // the wake-up's slot
	armed bool
}

// laneWait is a deadline in a lane: its slot, and its seq there, which
// tells it from a later event that reused the slot once it was cancelled.
type laneWait struct {
	slot int32
	seq  uint64
}

// handle is never called: run runs a lane's wake-up (woken) apart from
// the events. The lane is its wake-up's handler only to be known by it.
func (l *lane) handle(uint8, uint64, uint64) { panic("sim: a lane's wake-up ran as an event") }

// deadline schedules e, a timer that is likely to be cancelled, in its
// delay's lane, or in the heap if none takes it.
func (s *sim) deadline(e *event) timer {
	d := e.at - s.now
	if d < minLaneDelay {
		return s.schedule(e)
	}
	l := s.lane(d)
	if l == nil {
		return s.schedule(e)
	}
	slot, seq := s.take(e)
	s.evs[slot].pos = inLane
	l.waits = append(l.waits, laneWait{slot, seq})
	if !l.armed {
		l.arm(e.at)
	}
	return timer{slot, seq}
}

// lane is the lane of delay d: its own, a new one, or one that holds
// nothing; nil if all are taken.
func (s *sim) lane(d time.Duration) *lane {
	for _, l := range s.lanes {
		if l.d == d {
			return l
		}
	}
	if len(s.lanes) < maxLanes {
		l := &lane{s: s, d: d}
		l.wake, _ = s.take(&event{h: l})
		s.evs[l.wake].pos = -1
		s.lanes = append(s.lanes, l)
		return l
	}
	for _, l := range s.lanes {
		if !l.armed && l.head == len(l.waits) {
			l.d = d
			return l
		}
	}
	return nil
}

// arm puts the wake-up in the heap, due just before at.
func (l *lane) arm(at time.Duration) {
	l.armed = true
	l.s.q.push(key{at: at - 1, slot: l.wake})
}

// live reports whether w is still waiting.
func (l *lane) live(w laneWait) bool { return l.s.evs[w.slot].seq == w.seq }

// first drops the dead deadlines at the head, and returns the first live
// one's time; false if there is none.
func (l *lane) first() (time.Duration, bool) {
	for l.head < len(l.waits) {
		if w := l.waits[l.head]; l.live(w) {
			return l.s.evs[w.slot].at, true
		}
		l.head++
	}
	l.waits, l.head = l.waits[:0], 0
	return 0, false
}

// woken, by the wake-up due at now, moves the deadlines due next into
// the heap and sets the wake-up for the ones after; if the first it was
// set for was cancelled, it sets it again for the one now first.
func (l *lane) woken(now time.Duration) {
	l.armed = false
	s := l.s
	at, ok := l.first()
	if !ok {
		return
	}
	if at-1 > now {
		l.arm(at)
		return
	}
	// Every live deadline due at that time, in the order set: the heap
	// orders them among themselves and among the rest by their keys.
	for ; l.head < len(l.waits); l.head++ {
		w := l.waits[l.head]
		if !l.live(w) {
			continue
		}
		e := &s.evs[w.slot]
		if e.at != at {
			break
		}
		s.q.push(key{at: e.at, tie: s.tie(e.at, &e.l), seq: w.seq, slot: w.slot})
	}
	if l.head > 1024 && l.head > len(l.waits)/2 {
		n := copy(l.waits, l.waits[l.head:])
		l.waits, l.head = l.waits[:n], 0
	}
	if at, ok := l.first(); ok {
		l.arm(at)
	}
}
