package rr_seq

import (
	"context"
	"fmt"
	"net"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/seqlab/seqlab/seq"
)

// The benchmarks compare, in one run, so that the README can give ratios
// that the machine's noise does not skew:
//   - rr_seq's clients against a 5-node cluster on loopback (in memory, as
//     the original project's figures), with today's protocol ("new") and
//     the protocol before write-only rounds and coalescing ("old":
//     Config.ReadFirst and ClientConfig.RoundRobin);
//   - the local sequencers with the same buffer size;
//   - the floor: one trivial unary gRPC round trip on the same 5-server
//     loopback shape.

var protocols = []struct {
	name  string
	old   bool
	apply func(i int, c *Config)
}{
	{"new", false, nil},
	{"old", true, func(i int, c *Config) { c.ReadFirst = true }},
}

// nodeGOGC is the GOGC that rrseq-node sets unless the environment
// does; keep it in step with cmd/rrseq-node.
const nodeGOGC = 400

// BenchmarkNext measures ns per ID, single caller and 4 concurrent ones.
func BenchmarkNext(b *testing.B) {
	for _, p := range protocols {
		tc := startCluster(b, 5, false, p.apply)
		for _, size := range []uint64{1, 2, 1024} {
			for _, mode := range []string{"single", "concurrent"} {
				b.Run(fmt.Sprintf("rr_seq/%s/buf=%d/%s", p.name, size, mode), func(b *testing.B) {
					c, err := NewClient(ClientConfig{Nodes: tc.addrs, RangeSize: size, RoundRobin: p.old})
					if err != nil {
						b.Fatal(err)
					}
					defer c.Close()
					benchSequencer(b, c, mode)
				})
			}
		}
		tc.stop()
	}
	// The node binary's GC setting (rrseq-node --help), measured here.
	func() {
		defer debug.SetGCPercent(debug.SetGCPercent(nodeGOGC))
		tc := startCluster(b, 5, false, nil)
		defer tc.stop()
		for _, size := range []uint64{1, 1024} {
			b.Run(fmt.Sprintf("rr_seq/new-gogc%d/buf=%d/single", nodeGOGC, size), func(b *testing.B) {
				c := tc.client(b, size, 0)
				benchSequencer(b, c, "single")
			})
		}
		// Adaptive range size from 1024 up to 8192, at GOGC=400 too.
		for _, mode := range []string{"single", "concurrent"} {
			b.Run("rr_seq/new-gogc400-adaptive8192/buf=1024/"+mode, func(b *testing.B) {
				c, err := NewClient(ClientConfig{Nodes: tc.addrs, RangeSize: 1024, AdaptiveMax: 8192})
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				benchSequencer(b, c, mode)
			})
		}
	}()
	// Two fetches of 1024 in flight at once (Lookahead 2): what a client
	// that holds twice the IDs gains when fetches are slower than its
	// callers.
	func() {
		tc := startCluster(b, 5, false, nil)
		defer tc.stop()
		for _, mode := range []string{"single", "concurrent"} {
			b.Run("rr_seq/new-lookahead2/buf=1024/"+mode, func(b *testing.B) {
				c, err := NewClient(ClientConfig{Nodes: tc.addrs, RangeSize: 1024, Lookahead: 2})
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				benchSequencer(b, c, mode)
			})
		}
	}()
	// Each trim of the node's profile turned off on its own.
	for _, t := range []struct {
		name string
		set  func(on bool)
	}{
		{"goroutine-per-msg", func(on bool) { untrim.goroutinePerMsg = on }},
		{"deadline-header", func(on bool) { untrim.deadlineHeader = on }},
	} {
		func() {
			t.set(true)
			defer t.set(false)
			tc := startCluster(b, 5, false, nil)
			defer tc.stop()
			for _, size := range []uint64{1, 1024} {
				b.Run(fmt.Sprintf("rr_seq/new-untrim-%s/buf=%d/single", t.name, size), func(b *testing.B) {
					benchSequencer(b, tc.client(b, size, 0), "single")
				})
			}
		}()
	}
	for _, size := range []uint64{1, 2, 1024} {
		for _, mode := range []string{"single", "concurrent"} {
			b.Run(fmt.Sprintf("buffered/buf=%d/%s", size, mode), func(b *testing.B) {
				s := seq.NewBuffered(int(size))
				defer s.Close()
				benchSequencer(b, s, mode)
			})
		}
	}
	for _, mode := range []string{"single", "concurrent"} {
		b.Run("atomic/"+mode, func(b *testing.B) { benchSequencer(b, seq.NewAtomic(), mode) })
	}
	b.Run("floor/unary-rtt/single", func(b *testing.B) { benchFloor(b, "single") })
	b.Run("floor/unary-rtt/concurrent", func(b *testing.B) { benchFloor(b, "concurrent") })
}

// benchSequencer reports, beside ns/op, the process's CPU time per op
// (cpu-ns/op, user and system): on a loaded machine it moves less than the
// wall time, and it shows what a change costs the machine.
func benchSequencer(b *testing.B, s seq.Sequencer, mode string) {
	ctx := context.Background()
	cpu0 := cpuTime()
	defer func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		}
	}()
	if mode == "single" {
		for b.Loop() {
			if _, err := s.Next(ctx); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Next(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchFloor is one trivial unary round trip per op (a health check) to
// one of 5 servers on loopback, over the dial options rr_seq uses.
func benchFloor(b *testing.B, mode string) {
	var clients []healthpb.HealthClient
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := grpc.NewServer()
		healthpb.RegisterHealthServer(srv, health.NewServer())
		go srv.Serve(l)
		defer srv.Stop()
		cc, err := grpc.NewClient("passthrough:///"+l.Addr().String(), append(dialOptions(),
			grpc.WithTransportCredentials(insecure.NewCredentials()))...)
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Close()
		clients = append(clients, healthpb.NewHealthClient(cc))
	}
	cpu0 := cpuTime()
	defer func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		}
	}()
	var next atomic.Uint64
	call := func() {
		c := clients[next.Add(1)%uint64(len(clients))]
		if _, err := c.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			b.Error(err)
		}
	}
	if mode == "single" {
		for b.Loop() {
			call()
		}
		return
	}
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			call()
		}
	})
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// countingFS counts fsyncs of the real filesystem.
type countingFS struct {
	OSFS
	syncs *atomic.Int64
}

type countingFile struct {
	File
	syncs *atomic.Int64
}

func (f countingFS) OpenAppend(name string) (File, error) {
	fl, err := f.OSFS.OpenAppend(name)
	if err != nil {
		return nil, err
	}
	return countingFile{fl, f.syncs}, nil
}

func (f countingFile) Sync() error {
	f.syncs.Add(1)
	return f.File.Sync()
}

// BenchmarkContended is many unbuffered callers at once on a 3-node
// cluster: each caller its own rr_seq.Client of range size 1, started on
// node caller%3, all on one name or each on its own. It reports
// throughput, the 99th percentile latency and, with durable nodes (real
// files, fsync), fsyncs per request on each replica.
func BenchmarkContended(b *testing.B) {
	for _, durable := range []bool{false, true} {
		for _, p := range protocols {
			var syncs atomic.Int64
			tc := startCluster(b, 3, durable, func(i int, c *Config) {
				if p.apply != nil {
					p.apply(i, c)
				}
				if durable {
					c.FS = countingFS{syncs: &syncs}
				}
			})
			for _, callers := range []int{10, 50} {
				for _, names := range []string{"one-name", "name-per-caller"} {
					store := "memory"
					if durable {
						store = "durable"
					}
					b.Run(fmt.Sprintf("%s/%s/callers=%d/%s", store, p.name, callers, names), func(b *testing.B) {
						clients := make([]*Client, callers)
						for i := range clients {
							name := "one"
							if names != "one-name" {
								name = fmt.Sprintf("c%d-%s", i, b.Name())
							}
							c, err := NewClient(ClientConfig{Nodes: tc.addrs, RangeSize: 1, Name: name, StartNode: i % 3, RoundRobin: p.old})
							if err != nil {
								b.Fatal(err)
							}
							defer c.Close()
							if _, err := c.Next(context.Background()); err != nil { // connect, learn the name
								b.Fatal(err)
							}
							clients[i] = c
						}
						syncs.Store(0)
						var left atomic.Int64
						left.Store(int64(b.N))
						lat := make([][]time.Duration, callers)
						var wg sync.WaitGroup
						b.ResetTimer()
						start := time.Now()
						for i, c := range clients {
							wg.Add(1)
							go func() {
								defer wg.Done()
								for left.Add(-1) >= 0 {
									t0 := time.Now()
									if _, err := c.Next(context.Background()); err != nil {
										b.Error(err)
										return
									}
									lat[i] = append(lat[i], time.Since(t0))
								}
							}()
						}
						wg.Wait()
						elapsed := time.Since(start)
						b.StopTimer()
						all := slices.Concat(lat...)
						slices.Sort(all)
						if len(all) > 0 {
							b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
						}
						b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
						if durable {
							b.ReportMetric(float64(syncs.Load())/float64(b.N)/3, "fsyncs/op/replica")
						}
					})
				}
			}
			tc.stop()
		}
	}
}
