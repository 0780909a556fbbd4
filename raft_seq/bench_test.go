package raft_seq

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	rrpb "github.com/seqlab/seqlab/rr_seq/pb"
)

// BenchmarkNodeCluster measures a 3-node loopback cluster of gRPC nodes,
// in memory and with WALs on the real disk (fsync included): 16 clients
// spread over the nodes, each asking for one ID at a time. It reports
// allocations per second and fsyncs (WAL syncs of all nodes) per
// allocation.
func BenchmarkNodeCluster(b *testing.B) {
	for _, mode := range []struct {
		name    string
		durable bool
	}{{"memory", false}, {"disk", true}} {
		b.Run(mode.name, func(b *testing.B) {
			c := newLCluster(b, 3, mode.durable, nil)
			c.waitLeader()
			clients := make([]rrpb.SequencerClient, 3)
			for i := range 3 {
				cl, done := c.client(i)
				defer done()
				clients[i] = cl
			}
			syncs := func() (s int64) {
				for _, n := range c.nodes {
					s += n.Stats().WAL.Syncs
				}
				return s
			}
			before := syncs()
			var next, failed atomic.Int64
			b.SetParallelism(8) // 16 goroutines on 2 cores
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				cl := clients[next.Add(1)%3]
				for pb.Next() {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					_, err := cl.NextRange(ctx, &rrpb.NextRangeRequest{Name: "bench", N: 1})
					cancel()
					if err != nil {
						failed.Add(1)
					}
				}
			})
			b.StopTimer()
			el := time.Since(start)
			ok := int64(b.N) - failed.Load()
			b.ReportMetric(float64(ok)/el.Seconds(), "allocs/s")
			if mode.durable && ok > 0 {
				b.ReportMetric(float64(syncs()-before)/float64(ok), "fsyncs/alloc")
			}
			if failed.Load() > 0 {
				b.Errorf("%d of %d allocations failed", failed.Load(), b.N)
			}
		})
	}
}
