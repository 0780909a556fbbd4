package simnet_test

import (
	"context"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/test/bufconn"

	"github.com/seqlab/seqlab/simnet"
)

// transport is a listener and a dialer: simnet's or bufconn's.
type transport struct {
	lis  net.Listener
	dial func(ctx context.Context, addr string) (net.Conn, error)
}

func transports(b *testing.B) map[string]func() transport {
	return map[string]func() transport{
		"simnet": func() transport {
			n := simnet.New(simnet.Config{Seed: 1})
			b.Cleanup(func() { n.Close() })
			lis, err := n.Listen("s")
			require.NoError(b, err)
			return transport{lis, n.Dialer("c")}
		},
		"bufconn": func() transport {
			lis := bufconn.Listen(1 << 20)
			b.Cleanup(func() { lis.Close() })
			return transport{lis, func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }}
		},
	}
}

// BenchmarkRoundTrip: gRPC unary calls per wall second, zero latency.
func BenchmarkRoundTrip(b *testing.B) {
	for _, name := range []string{"bufconn", "simnet"} {
		b.Run(name, func(b *testing.B) {
			tr := transports(b)[name]()
			s := grpc.NewServer()
			healthpb.RegisterHealthServer(s, health.NewServer())
			go s.Serve(tr.lis)
			defer s.Stop()
			cc, err := grpc.NewClient("passthrough:///s",
				grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithContextDialer(tr.dial))
			require.NoError(b, err)
			defer cc.Close()
			c := healthpb.NewHealthClient(cc)
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rt/s")
		})
	}
}

// BenchmarkBytes: bytes per wall second through one raw connection, in
// 32 KiB writes.
func BenchmarkBytes(b *testing.B) {
	for _, name := range []string{"bufconn", "simnet"} {
		b.Run(name, func(b *testing.B) {
			tr := transports(b)[name]()
			done := make(chan int64)
			go func() {
				c, err := tr.lis.Accept()
				if err != nil {
					done <- 0
					return
				}
				n, _ := io.Copy(io.Discard, c)
				c.Close()
				done <- n
			}()
			c, err := tr.dial(context.Background(), "s")
			require.NoError(b, err)
			buf := make([]byte, 32<<10)
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			c.Close()
			require.Equal(b, int64(b.N*len(buf)), <-done)
		})
	}
}
