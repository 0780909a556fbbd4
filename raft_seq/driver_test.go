package raft_seq

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/seqlab/seqlab/seq"
)

// driver is a small deterministic driver of cores: virtual time in 1ms
// steps, messages delivered after a seeded latency and, among those due at
// once, in the order of a seeded hash; writes durable one step after they
// are made (or lost with a crash). Every choice comes from the seed, so a
// run is a function of it; the trace records every delivery, reply and
// crash.
type driver struct {
	t       testing.TB
	seed    uint64
	rng     *rand.Rand
	now     time.Duration
	cfg     Config // the template of every node's config
	ids     []uint64
	nodes   map[uint64]*dnode
	queue   []dmsg
	sent    uint64
	cut     map[[2]uint64]bool // directed links that drop
	trace   []string
	replies map[uint64]Reply
	nextReq uint64
	starts  uint64
	// onDurable, if set, makes a node's writes durable for real (a WAL)
	// before the core hears they are.
	onDurable func(id uint64, ws []Write)
}

type dnode struct {
	id      uint64
	core    *Core // nil while down
	durable State
	written []Write // written, not yet durable
	wake    time.Duration
}

type dmsg struct {
	at  time.Duration
	key uint64
	m   *raftpb.Message
}

func newDriver(t testing.TB, seed uint64, n int, tweak func(*Config)) *driver {
	d := &driver{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0xd21)), nodes: map[uint64]*dnode{},
		cut: map[[2]uint64]bool{}, replies: map[uint64]Reply{}}
	for i := range n {
		d.ids = append(d.ids, uint64(i+1))
	}
	d.cfg = Config{Peers: d.ids, Seed: seed, SnapshotEvery: 1000}
	if tweak != nil {
		tweak(&d.cfg)
	}
	for _, id := range d.ids {
		d.nodes[id] = &dnode{id: id, durable: Bootstrap(d.ids)}
		d.start(id)
	}
	return d
}

func (d *driver) logf(format string, a ...any) {
	d.trace = append(d.trace, fmt.Sprintf("%v ", d.now)+fmt.Sprintf(format, a...))
}

func (d *driver) start(id uint64) {
	n := d.nodes[id]
	cfg := d.cfg
	cfg.ID = id
	d.starts++
	cfg.Incarnation = d.starts
	c, out, err := NewCore(cfg, cloneState(n.durable), d.now)
	if err != nil {
		d.t.Fatalf("start n%d: %v", id, err)
	}
	n.core, n.written = c, nil
	d.logf("n%d starts", id)
	d.carry(n, out)
}

// crash stops node id; what it had not made durable is lost.
func (d *driver) crash(id uint64) {
	n := d.nodes[id]
	n.core, n.written = nil, nil
	d.logf("n%d crashes", id)
}

// isolate cuts every link to and from id; heal restores every link.
func (d *driver) isolate(id uint64) {
	for _, p := range d.ids {
		if p != id {
			d.cut[[2]uint64{id, p}], d.cut[[2]uint64{p, id}] = true, true
		}
	}
	d.logf("n%d isolated", id)
}

func (d *driver) heal() {
	d.cut = map[[2]uint64]bool{}
	d.logf("healed")
}

func (d *driver) carry(n *dnode, out Output) {
	for _, m := range out.Msgs {
		d.sent++
		var b [16]byte
		binary.LittleEndian.PutUint64(b[:], d.seed)
		binary.LittleEndian.PutUint64(b[8:], d.sent)
		h := fnv.New64a()
		h.Write(b[:])
		lat := time.Millisecond * time.Duration(1+d.rng.IntN(3))
		// Messages cross a wire: the recipient gets a copy, as over gRPC.
		d.queue = append(d.queue, dmsg{at: d.now + lat, key: h.Sum64(), m: proto.Clone(m).(*raftpb.Message)})
	}
	n.written = append(n.written, out.Writes...)
	for _, r := range out.Replies {
		d.replies[r.ID] = r
		if r.Err != nil {
			d.logf("n%d reply %d: %v", n.id, r.ID, r.Err)
		} else {
			d.logf("n%d reply %d: %v", n.id, r.ID, r.Range)
		}
	}
	n.wake = out.Wake
}

// request asks node id for n IDs of name and returns the request's ID.
func (d *driver) request(id uint64, name string, n uint64) uint64 {
	d.nextReq++
	rid := d.nextReq
	node := d.nodes[id]
	if node.core == nil {
		d.replies[rid] = Reply{ID: rid, Err: ErrNoLeader}
		return rid
	}
	d.logf("n%d request %d %q+=%d", id, rid, name, n)
	d.carry(node, node.core.Request(d.now, Request{ID: rid, Name: name, N: n}))
	return rid
}

// step advances one millisecond.
func (d *driver) step() {
	d.now += time.Millisecond
	for _, id := range d.ids {
		n := d.nodes[id]
		if n.core == nil || len(n.written) == 0 {
			continue
		}
		ws := n.written
		n.written = nil
		if d.onDurable != nil {
			d.onDurable(id, ws)
		}
		for _, w := range ws {
			if err := applyWrite(&n.durable, w); err != nil {
				d.t.Fatalf("n%d write %d: %v", id, w.Seq, err)
			}
		}
		d.carry(n, n.core.Durable(d.now, ws[len(ws)-1].Seq))
	}
	var due, later []dmsg
	for _, m := range d.queue {
		if m.at <= d.now {
			due = append(due, m)
		} else {
			later = append(later, m)
		}
	}
	d.queue = later
	slices.SortFunc(due, func(a, b dmsg) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	for _, m := range due {
		n := d.nodes[m.m.GetTo()]
		if n.core == nil || d.cut[[2]uint64{m.m.GetFrom(), m.m.GetTo()}] {
			continue
		}
		d.trace = append(d.trace, fmt.Sprintf("%v deliver %s", d.now, DescribeMessage(m.m)))
		out, err := n.core.Step(d.now, m.m)
		if err != nil {
			d.t.Fatalf("n%d refused %s: %v", n.id, DescribeMessage(m.m), err)
		}
		d.carry(n, out)
	}
	for _, id := range d.ids {
		if n := d.nodes[id]; n.core != nil && n.wake <= d.now {
			d.carry(n, n.core.Tick(d.now))
		}
	}
}

func (d *driver) run(dur time.Duration) {
	for end := d.now + dur; d.now < end; {
		d.step()
	}
}

// runUntil steps until cond holds, at most for dur; it reports whether
// cond held.
func (d *driver) runUntil(dur time.Duration, cond func() bool) bool {
	for end := d.now + dur; d.now < end; {
		if cond() {
			return true
		}
		d.step()
	}
	return cond()
}

// leader returns the leader of the highest term among the live nodes, 0
// if none.
func (d *driver) leader() uint64 {
	var lead, term uint64
	for _, id := range d.ids {
		if c := d.nodes[id].core; c != nil {
			if s := c.Status(); s.State == "leader" && s.Term >= term {
				lead, term = id, s.Term
			}
		}
	}
	return lead
}

// allocate asks node id for a range and waits for the reply.
func (d *driver) allocate(id uint64, name string, n uint64, wait time.Duration) Reply {
	rid := d.request(id, name, n)
	d.runUntil(wait, func() bool { _, ok := d.replies[rid]; return ok })
	r, ok := d.replies[rid]
	if !ok {
		return Reply{ID: rid, Err: fmt.Errorf("no reply within %v", wait)}
	}
	return r
}

func (d *driver) traceString() string { return strings.Join(d.trace, "\n") }

// checkUnique fails the test if two successful replies share an ID.
func checkUnique(t testing.TB, replies map[uint64]Reply) int {
	t.Helper()
	var rs []seq.Range
	for _, r := range replies {
		if r.Err == nil {
			rs = append(rs, r.Range)
		}
	}
	slices.SortFunc(rs, func(a, b seq.Range) int { return int(int64(a.From) - int64(b.From)) })
	for i := 1; i < len(rs); i++ {
		if rs[i].From < rs[i-1].To {
			t.Fatalf("ranges %v and %v overlap", rs[i-1], rs[i])
		}
	}
	return len(rs)
}
