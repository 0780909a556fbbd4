package rr_seq

import "testing"

// BenchmarkCoordinator is the coordinator alone, with no network: each
// iteration is one request (four for coalesced-4) taken from Start to its
// Done, every message answered at once by an in-memory replica. Its
// allocs/op are the coordinator's own, the figure the simulator's hunt
// speed depends on.
func BenchmarkCoordinator(b *testing.B) {
	for _, bc := range []struct {
		name   string
		n      int
		fanout Fanout
		limits Limits
		batch  int // requests started before any message is answered (0: one, answered at once)
		coords int // coordinators taking turns on one name, each losing rounds to the others
	}{
		{name: "write-only-n3", n: 3},
		{name: "write-only-n5", n: 5},
		{name: "fanout-all-n5", n: 5, fanout: FanoutAll},
		{name: "read-first-n5", n: 5, limits: Limits{ReadFirst: true}},
		{name: "coalesced-4-n5", n: 5, batch: 4},
		{name: "contended-2-n5", n: 5, coords: 2},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := newCoreCluster(bc.n)
			coords := make([]*Coordinator, max(bc.coords, 1))
			for i := range coords {
				coords[i] = c.coord(i, bc.fanout)
				coords[i].SetLimits(bc.limits)
			}
			c.queue = bc.batch > 0
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				co := coords[i%len(coords)]
				i++
				for range max(bc.batch, 1) {
					c.start(b, co, "s", 1)
				}
				c.deliverQueued(co)
				if len(c.done) == 0 {
					b.Fatal("no request finished")
				}
				c.done = c.done[:0]
			}
		})
	}
}
