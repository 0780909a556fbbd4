package simnet_test

import (
	"context"
	"io"
	"math"
	"net"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pkg/errors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/seqlab/seqlab/simnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lab is a network with gRPC health servers on some hosts.
type lab struct {
	t       *testing.T
	net     *simnet.Network
	servers map[string]*grpc.Server
}

func newLab(t *testing.T, cfg simnet.Config, hosts ...string) *lab {
	l := &lab{t: t, net: simnet.New(cfg), servers: map[string]*grpc.Server{}}
	for _, h := range hosts {
		l.serve(h)
	}
	t.Cleanup(func() {
		for _, s := range l.servers {
			s.Stop()
		}
		require.NoError(t, l.net.Close())
	})
	return l
}

// serve starts a health server on host (again, after a crash).
func (l *lab) serve(host string) {
	lis, err := l.net.Listen(host)
	require.NoError(l.t, err)
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(lis)
	l.servers[host] = s
}

// client dials from host to target; the connection is made lazily.
func (l *lab) client(from, to string) healthpb.HealthClient {
	cc, err := grpc.NewClient("passthrough:///"+to,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(l.net.Dialer(from)))
	require.NoError(l.t, err)
	l.t.Cleanup(func() { cc.Close() })
	return healthpb.NewHealthClient(cc)
}

// call makes one health check with a timeout and returns its code and how
// long it took in (virtual) time.
func call(c healthpb.HealthClient, timeout time.Duration) (codes.Code, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	_, err := c.Check(ctx, &healthpb.HealthCheckRequest{})
	return status.Code(err), time.Since(start)
}

// TestRoundTrips: 1,000 sequential calls over 1ms links take 2s of virtual
// time, each exactly one round trip, and far less wall time.
func TestRoundTrips(t *testing.T) {
	wallStart := time.Now()
	var virtual time.Duration
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t, simnet.Config{Seed: 1, Default: simnet.LinkConfig{Latency: time.Millisecond}}, "n1")
		c := l.client("c1", "n1")
		code, _ := call(c, time.Second) // connect first
		require.Equal(t, codes.OK, code)
		start := time.Now()
		for range 1000 {
			code, _ := call(c, time.Second)
			require.Equal(t, codes.OK, code)
		}
		virtual = time.Since(start)
	})
	wall := time.Since(wallStart)
	t.Logf("1000 round trips: %v virtual, %v wall, %.0fx", virtual, wall, float64(virtual)/float64(wall))
	assert.InDelta(t, float64(2*time.Second), float64(virtual), float64(100*time.Millisecond))
	assert.Less(t, wall, virtual, "virtual time must run faster than the wall clock")
}

// TestFaults drives every fault with gRPC calls from c1 to n1 (n2 and n3
// stand by) and checks what the caller sees, in virtual time.
func TestFaults(t *testing.T) {
	const rtt = 2 * time.Millisecond
	cases := []struct {
		name string
		run  func(t *testing.T, l *lab, c healthpb.HealthClient)
	}{
		{"partition blocks until the deadline, heal lets the next call through", func(t *testing.T, l *lab, c healthpb.HealthClient) {
			l.net.Partition([]string{"c1", "n2"}, []string{"n1", "n3"})
			code, took := call(c, time.Second)
			assert.Equal(t, codes.DeadlineExceeded, code)
			assert.Equal(t, time.Second, took)
			l.net.Heal()
			code, took = call(c, time.Second)
			assert.Equal(t, codes.OK, code)
			assert.Equal(t, rtt, took)
		}},
		{"bytes held by a cut flow on heal", func(t *testing.T, l *lab, c healthpb.HealthClient) {
			l.net.Partition([]string{"c1"}, []string{"n1"})
			done := make(chan codes.Code)
			go func() { code, _ := call(c, time.Minute); done <- code }()
			time.Sleep(10 * time.Second)
			synctest.Wait()
			select {
			case <-done:
				t.Fatal("a call crossed a partition")
			default:
			}
			l.net.Heal()
			assert.Equal(t, codes.OK, <-done)
		}},
		{"one-way cut of requests", func(t *testing.T, l *lab, c healthpb.HealthClient) {
			l.net.Cut("c1", "n1")
			code, _ := call(c, 500*time.Millisecond)
			assert.Equal(t, codes.DeadlineExceeded, code)
			l.net.HealLink("c1", "n1")
			code, _ = call(c, time.Second)
			assert.Equal(t, codes.OK, code)
		}},
		{"one-way cut of replies", func(t *testing.T, l *lab, c healthpb.HealthClient) {
			l.net.Cut("n1", "c1")
			code, _ := call(c, 500*time.Millisecond)
			assert.Equal(t, codes.DeadlineExceeded, code)
			l.net.Heal()
			code, _ = call(c, time.Second)
			assert.Equal(t, codes.OK, code)
		}},
		{"reset fails a stream at once", func(t *testing.T, l *lab, c healthpb.HealthClient) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w, err := c.Watch(ctx, &healthpb.HealthCheckRequest{})
			require.NoError(t, err)
			_, err = w.Recv()
			require.NoError(t, err)
			l.net.Reset("c1", "n1")
			start := time.Now()
			_, err = w.Recv()
			assert.Equal(t, codes.Unavailable, status.Code(err))
			assert.Zero(t, time.Since(start))
		}},
		{"crash closes streams and refuses calls; restart serves again", func(t *testing.T, l *lab, c healthpb.HealthClient) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w, err := c.Watch(ctx, &healthpb.HealthCheckRequest{})
			require.NoError(t, err)
			_, err = w.Recv()
			require.NoError(t, err)
			l.net.Crash("n1")
			_, err = w.Recv()
			assert.Equal(t, codes.Unavailable, status.Code(err))
			code, took := call(c, time.Second)
			assert.Equal(t, codes.Unavailable, code)
			assert.Less(t, took, 10*time.Millisecond, "a refused dial fails fast")
			_, err = l.net.Listen("n1")
			assert.Error(t, err, "a crashed host cannot listen before Restart")
			l.servers["n1"].Stop()
			l.net.Restart("n1")
			l.serve("n1")
			assert.Eventually(t, func() bool { code, _ := call(c, time.Second); return code == codes.OK },
				time.Minute, 100*time.Millisecond)
		}},
		{"power off is silence; restart resets what the machine forgot", func(t *testing.T, l *lab, c healthpb.HealthClient) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w, err := c.Watch(ctx, &healthpb.HealthCheckRequest{})
			require.NoError(t, err)
			_, err = w.Recv()
			require.NoError(t, err)
			l.net.PowerOff("n1")
			l.servers["n1"].Stop() // the dead process: its closes send nothing
			recv := make(chan error, 1)
			go func() { _, err := w.Recv(); recv <- err }()
			code, took := call(c, 700*time.Millisecond)
			assert.Equal(t, codes.DeadlineExceeded, code, "no reset, no refusal: a timeout")
			assert.Equal(t, 700*time.Millisecond, took)
			time.Sleep(5 * time.Second)
			select {
			case err := <-recv:
				t.Fatalf("the stream heard from a machine without power: %v", err)
			default:
			}
			l.net.Restart("n1")
			assert.Equal(t, codes.Unavailable, status.Code(<-recv), "the rebooted machine resets the old connection")
			l.serve("n1")
			assert.Eventually(t, func() bool { code, _ := call(c, time.Second); return code == codes.OK },
				time.Minute, 100*time.Millisecond)
		}},
		{"pause stalls without errors, resume answers", func(t *testing.T, l *lab, c healthpb.HealthClient) {
			l.net.Pause("n1")
			code, took := call(c, 700*time.Millisecond)
			assert.Equal(t, codes.DeadlineExceeded, code)
			assert.Equal(t, 700*time.Millisecond, took)
			done := make(chan codes.Code)
			go func() { code, _ := call(c, time.Minute); done <- code }()
			time.Sleep(3 * time.Second)
			l.net.Resume("n1")
			assert.Equal(t, codes.OK, <-done)
		}},
		{"link delay shows exactly", func(t *testing.T, l *lab, c healthpb.HealthClient) {
			require.NoError(t, l.net.SetLink("c1", "n1", simnet.LinkConfig{Latency: 10 * time.Millisecond}))
			_, took := call(c, time.Second)
			assert.Equal(t, 11*time.Millisecond, took)
		}},
		{"host delay applies both ways", func(t *testing.T, l *lab, c healthpb.HealthClient) {
			require.NoError(t, l.net.SetHost("n1", simnet.LinkConfig{Latency: 40 * time.Millisecond}))
			_, took := call(c, time.Second)
			assert.Equal(t, 80*time.Millisecond, took)
			require.NoError(t, l.net.SetHost("n1", simnet.LinkConfig{Latency: time.Millisecond}))
			// Bytes already in flight keep their delay, and later ones
			// queue behind them (FIFO): let them drain.
			time.Sleep(100 * time.Millisecond)
			_, took = call(c, time.Second)
			assert.Equal(t, rtt, took)
		}},
		{"jitter stays within its bounds and keeps order", func(t *testing.T, l *lab, c healthpb.HealthClient) {
			require.NoError(t, l.net.SetHost("n1", simnet.LinkConfig{Latency: 5 * time.Millisecond, Jitter: 5 * time.Millisecond}))
			seen := map[time.Duration]bool{}
			for range 50 {
				code, took := call(c, time.Second)
				require.Equal(t, codes.OK, code)
				assert.GreaterOrEqual(t, took, 10*time.Millisecond)
				assert.LessOrEqual(t, took, 20*time.Millisecond)
				seen[took] = true
			}
			assert.Greater(t, len(seen), 5, "jitter must vary")
		}},
		{"loss resets open connections and drops new dials", func(t *testing.T, l *lab, c healthpb.HealthClient) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w, err := c.Watch(ctx, &healthpb.HealthCheckRequest{})
			require.NoError(t, err)
			_, err = w.Recv()
			require.NoError(t, err)
			l.net.SetLoss(1, 1)
			_, err = w.Recv()
			assert.Equal(t, codes.Unavailable, status.Code(err))
			c2 := l.client("c2", "n2")
			code, _ := call(c2, 3*time.Second)
			assert.Equal(t, codes.DeadlineExceeded, code, "every dial is dropped")
			l.net.SetLoss(0, 0)
			assert.Eventually(t, func() bool { code, _ := call(c2, time.Second); return code == codes.OK },
				time.Minute, 100*time.Millisecond)
			var dropped int64
			for _, s := range l.net.Stats() {
				dropped += s.Dropped
			}
			assert.Positive(t, dropped)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := newLab(t, simnet.Config{Seed: 7, Default: simnet.LinkConfig{Latency: time.Millisecond}}, "n1", "n2", "n3")
				c := l.client("c1", "n1")
				code, _ := call(c, time.Second)
				require.Equal(t, codes.OK, code)
				tc.run(t, l, c)
				assert.NotEmpty(t, l.net.Events())
			})
		})
	}
}

// TestOutsideBubble runs gRPC over simnet in real time.
func TestOutsideBubble(t *testing.T) {
	l := newLab(t, simnet.Config{Seed: 1, Default: simnet.LinkConfig{Latency: time.Millisecond}}, "n1")
	c := l.client("c1", "n1")
	for range 20 {
		code, took := call(c, 5*time.Second)
		require.Equal(t, codes.OK, code)
		assert.GreaterOrEqual(t, took, time.Millisecond)
	}
	l.net.Partition([]string{"c1"}, []string{"n1"})
	code, _ := call(c, 50*time.Millisecond)
	assert.Equal(t, codes.DeadlineExceeded, code)
	l.net.Heal()
	code, _ = call(c, 5*time.Second)
	assert.Equal(t, codes.OK, code)
}

// dialPair returns both ends of a raw connection from a to b.
func dialPair(t *testing.T, n *simnet.Network, a, b string) (net.Conn, net.Conn) {
	lis, err := n.Listen(b)
	require.NoError(t, err)
	t.Cleanup(func() { lis.Close() })
	ca, err := n.Dial(context.Background(), a, b)
	require.NoError(t, err)
	cb, err := lis.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { ca.Close(); cb.Close() })
	return ca, cb
}

func TestConnSemantics(t *testing.T) {
	cfg := simnet.Config{Seed: 3, Default: simnet.LinkConfig{Latency: 5 * time.Millisecond}}
	t.Run("dial to a missing host is refused after a round trip", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := simnet.New(cfg)
			defer n.Close()
			start := time.Now()
			_, err := n.Dial(context.Background(), "a", "b")
			assert.ErrorIs(t, err, syscall.ECONNREFUSED)
			assert.Equal(t, 10*time.Millisecond, time.Since(start))
		})
	})
	t.Run("a paused host dials nothing until Resume, then takes a round trip", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := simnet.New(cfg)
			defer n.Close()
			lis, err := n.Listen("b")
			require.NoError(t, err)
			defer lis.Close()
			n.Pause("a")
			dialed := make(chan error, 1)
			go func() {
				c, err := n.Dial(context.Background(), "a", "b")
				if err == nil {
					c.Close()
				}
				dialed <- err
			}()
			time.Sleep(10 * time.Second)
			synctest.Wait()
			select {
			case err := <-dialed:
				t.Fatalf("a paused host dialled: %v", err)
			default:
			}
			n.Resume("a")
			resumed := time.Now()
			require.NoError(t, <-dialed)
			assert.Equal(t, 10*time.Millisecond, time.Since(resumed))
		})
	})
	for _, tc := range []struct {
		name  string
		fault func(n *simnet.Network)
	}{
		{"a paused host's dial ends with its context", func(n *simnet.Network) { n.Pause("a") }},
		{"dial across a partition hangs until its deadline", func(n *simnet.Network) { n.Partition([]string{"a"}, []string{"b"}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := simnet.New(cfg)
				defer n.Close()
				lis, err := n.Listen("b")
				require.NoError(t, err)
				defer lis.Close()
				tc.fault(n)
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				start := time.Now()
				_, err = n.Dial(ctx, "a", "b")
				assert.ErrorIs(t, err, context.DeadlineExceeded)
				assert.Equal(t, 3*time.Second, time.Since(start))
			})
		})
	}
	t.Run("after the peer closes, one write succeeds and later ones fail with EPIPE", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := simnet.New(cfg)
			defer n.Close()
			a, b := dialPair(t, n, "a", "b")
			require.NoError(t, b.Close())
			k, err := a.Write([]byte("lost"))
			require.NoError(t, err, "the first write after the peer closed")
			assert.Equal(t, 4, k)
			for range 2 {
				k, err = a.Write([]byte("x"))
				assert.ErrorIs(t, err, syscall.EPIPE)
				assert.Zero(t, k)
				var oe *net.OpError
				require.True(t, errors.As(err, &oe), "%T is a *net.OpError", err)
				assert.Equal(t, "write", oe.Op)
			}
			// The writer still reads what the peer sent before closing.
			_, err = a.Read(make([]byte, 1))
			assert.ErrorIs(t, err, io.EOF)
		})
	})
	t.Run("a host in two groups is cut from both: no bridge", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := simnet.New(cfg)
			defer n.Close()
			for _, h := range []string{"a", "b", "c"} {
				lis, err := n.Listen(h)
				require.NoError(t, err)
				defer lis.Close()
			}
			n.Partition([]string{"a", "b"}, []string{"b", "c"})
			for _, l := range [][2]string{{"b", "a"}, {"a", "b"}, {"b", "c"}, {"c", "b"}, {"a", "c"}} {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, err := n.Dial(ctx, l[0], l[1])
				cancel()
				assert.ErrorIs(t, err, context.DeadlineExceeded, "%s->%s is cut", l[0], l[1])
			}
		})
	})
	t.Run("writes are pipelined and FIFO under jitter", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := simnet.New(simnet.Config{Seed: 3, Default: simnet.LinkConfig{Latency: time.Millisecond, Jitter: 5 * time.Millisecond}})
			defer n.Close()
			a, b := dialPair(t, n, "a", "b")
			start := time.Now()
			for i := range 100 {
				_, err := a.Write([]byte{byte(i)})
				require.NoError(t, err)
			}
			buf := make([]byte, 100)
			_, err := io.ReadFull(b, buf)
			require.NoError(t, err)
			for i := range buf {
				require.Equal(t, byte(i), buf[i])
			}
			assert.LessOrEqual(t, time.Since(start), 6*time.Millisecond, "100 writes cross in one delay, not 100")
		})
	})
	t.Run("read deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := simnet.New(cfg)
			defer n.Close()
			_, b := dialPair(t, n, "a", "b")
			start := time.Now()
			require.NoError(t, b.SetReadDeadline(start.Add(250*time.Millisecond)))
			_, err := b.Read(make([]byte, 1))
			assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
			var ne net.Error
			require.True(t, errors.As(err, &ne))
			assert.True(t, ne.Timeout())
			assert.Equal(t, 250*time.Millisecond, time.Since(start))
		})
	})
	t.Run("write deadline while paused", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := simnet.New(cfg)
			defer n.Close()
			a, _ := dialPair(t, n, "a", "b")
			n.Pause("a")
			require.NoError(t, a.SetWriteDeadline(time.Now().Add(time.Second)))
			_, err := a.Write([]byte("x"))
			assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
		})
	})
	t.Run("close sends EOF after the data", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := simnet.New(cfg)
			defer n.Close()
			a, b := dialPair(t, n, "a", "b")
			_, err := a.Write([]byte("bye"))
			require.NoError(t, err)
			require.NoError(t, a.Close())
			got, err := io.ReadAll(b)
			require.NoError(t, err)
			assert.Equal(t, "bye", string(got))
			_, err = a.Read(make([]byte, 1))
			assert.ErrorIs(t, err, net.ErrClosed)
		})
	})
	t.Run("stats count bytes, writes, opens and resets", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := simnet.New(cfg)
			defer n.Close()
			a, b := dialPair(t, n, "a", "b")
			_, _ = a.Write([]byte("hello"))
			_, _ = a.Write([]byte("!"))
			n.Reset("a", "b")
			_, err := b.Read(make([]byte, 8))
			assert.ErrorIs(t, err, syscall.ECONNRESET)
			st := n.Stats()
			require.Len(t, st, 1)
			assert.Equal(t, simnet.LinkStats{From: "a", To: "b", Bytes: 6, Writes: 2, Opened: 1, Resets: 1}, st[0])
			ev := n.Events()
			require.Len(t, ev, 1)
			assert.Equal(t, "reset", ev[0].Kind)
		})
	})
	t.Run("close unblocks everything", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := simnet.New(cfg)
			lis, err := n.Listen("b")
			require.NoError(t, err)
			errs := make(chan error, 1)
			go func() { _, err := lis.Accept(); errs <- err }()
			synctest.Wait()
			require.NoError(t, n.Close())
			assert.ErrorIs(t, <-errs, net.ErrClosed)
			_, err = n.Dial(context.Background(), "a", "b")
			assert.ErrorIs(t, err, net.ErrClosed)
		})
	})
	t.Run("bad input is refused", func(t *testing.T) {
		n := simnet.New(cfg)
		defer n.Close()
		_, err := n.Listen("")
		assert.Error(t, err)
		_, err = n.Dial(context.Background(), "", "b")
		assert.Error(t, err)
		assert.Error(t, simnet.Config{Default: simnet.LinkConfig{Latency: -1}}.Validate())
		_, err = n.Listen("x")
		require.NoError(t, err)
		_, err = n.Listen("x")
		assert.ErrorIs(t, err, syscall.EADDRINUSE)
	})
}

// TestBadDelay: a delay outside 0..MaxDelay is refused with a clear error
// by Config.Validate, SetLink and SetHost, and changes nothing: the
// network keeps its delays and still works.
func TestBadDelay(t *testing.T) {
	cases := []struct {
		name string
		cfg  simnet.LinkConfig
		want string // after "simnet: <where>: "
	}{
		{"negative latency", simnet.LinkConfig{Latency: -1}, "delay -1ns±0s: negative latency"},
		{"negative jitter", simnet.LinkConfig{Jitter: -time.Second}, "delay 0s±-1s: negative jitter"},
		{"latency over an hour", simnet.LinkConfig{Latency: time.Hour + 1}, "delay 1h0m0.000000001s±0s: latency over 1h0m0s"},
		{"huge jitter", simnet.LinkConfig{Jitter: math.MaxInt64}, "delay 0s±2562047h47m16.854775807s: jitter over 1h0m0s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.EqualError(t, tc.cfg.Validate(), "simnet: "+tc.want)
			bad := simnet.Config{Default: tc.cfg}
			assert.EqualError(t, bad.Validate(), "simnet: default: "+tc.want)
			assert.Panics(t, func() { simnet.New(bad) })
			synctest.Test(t, func(t *testing.T) {
				n := simnet.New(simnet.Config{Seed: 1, Default: simnet.LinkConfig{Latency: time.Millisecond}})
				defer n.Close()
				lis, err := n.Listen("b")
				require.NoError(t, err)
				defer lis.Close()
				assert.EqualError(t, n.SetLink("a", "b", tc.cfg), "simnet: set-link a->b: "+tc.want)
				assert.EqualError(t, n.SetHost("a", tc.cfg), "simnet: set-host a: "+tc.want)
				assert.EqualError(t, n.SetHost("b", tc.cfg), "simnet: set-host b: "+tc.want)
				assert.Empty(t, n.Events(), "a refused setting is no fault")
				start := time.Now()
				c, err := n.Dial(context.Background(), "a", "b")
				require.NoError(t, err)
				c.Close()
				assert.Equal(t, 2*time.Millisecond, time.Since(start), "the delays did not change")
			})
		})
	}
	for _, ok := range []simnet.LinkConfig{{}, {Latency: simnet.MaxDelay, Jitter: simnet.MaxDelay}} {
		assert.NoError(t, ok.Validate(), "%v", ok)
	}
}

// TestClearHost: clearing a host's delay removes its setting, which is not
// the same as setting it to the default: the other end's setting applies.
func TestClearHost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t, simnet.Config{Seed: 1, Default: simnet.LinkConfig{Latency: time.Millisecond}}, "n1")
		c := l.client("c1", "n1")
		code, _ := call(c, time.Second) // connect first
		require.Equal(t, codes.OK, code)
		require.NoError(t, l.net.SetHost("c1", simnet.LinkConfig{}))
		require.NoError(t, l.net.SetHost("n1", simnet.LinkConfig{Latency: 40 * time.Millisecond}))
		code, took := call(c, time.Second)
		require.Equal(t, codes.OK, code)
		assert.Equal(t, 80*time.Millisecond, took, "the slower host's setting applies")
		l.net.ClearHost("n1")
		time.Sleep(100 * time.Millisecond) // let bytes in flight drain (FIFO)
		code, took = call(c, time.Second)
		require.Equal(t, codes.OK, code)
		assert.Zero(t, took, "c1's setting applies alone, not the 1ms default")
		ev := l.net.Events()
		require.NotEmpty(t, ev)
		assert.Equal(t, simnet.Event{At: ev[len(ev)-1].At, Kind: "clear-host", Detail: "n1"}, ev[len(ev)-1])
	})
}

// TestWindow: a writer that outruns its reader blocks once the window is
// full, and goes on as the reader drains it.
func TestWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := simnet.New(simnet.Config{Seed: 1, Window: 10})
		defer n.Close()
		a, b := dialPair(t, n, "a", "b")
		_, err := a.Write(make([]byte, 10))
		require.NoError(t, err)
		wrote := make(chan error)
		go func() { _, err := a.Write([]byte("more")); wrote <- err }()
		synctest.Wait()
		select {
		case <-wrote:
			t.Fatal("write went past a full window")
		default:
		}
		_, err = io.ReadFull(b, make([]byte, 4))
		require.NoError(t, err)
		require.NoError(t, <-wrote)
	})
}

// TestCutsCompose: cuts are counted per directed link, so faults that cut
// the same link do not heal each other's: a link carries again only when
// each of its cuts is healed. Partition heals nothing first and returns
// each link it cut once; Heal removes every cut.
func TestCutsCompose(t *testing.T) {
	cfg := simnet.Config{Seed: 1, Default: simnet.LinkConfig{Latency: 5 * time.Millisecond}}
	// open reports whether a dial from→to gets through within a second:
	// a dial hangs while either direction is cut.
	open := func(n *simnet.Network, from, to string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := n.Dial(ctx, from, to)
		if err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			return false
		}
		c.Close()
		return true
	}
	setup := func(t *testing.T) *simnet.Network {
		n := simnet.New(cfg)
		t.Cleanup(func() { n.Close() })
		for _, h := range []string{"a", "b", "c"} {
			lis, err := n.Listen(h)
			require.NoError(t, err)
			t.Cleanup(func() { lis.Close() })
		}
		return n
	}
	healAll := func(n *simnet.Network, ls []simnet.Link) {
		for _, l := range ls {
			n.HealLink(l.From, l.To)
		}
	}
	t.Run("partition returns each link it cut once", func(t *testing.T) {
		n := simnet.New(cfg)
		defer n.Close()
		got := n.Partition([]string{"a", "b"}, []string{"b", "c"})
		assert.Equal(t, []simnet.Link{{"a", "b"}, {"a", "c"}, {"b", "c"}, {"b", "a"}, {"c", "a"}, {"c", "b"}}, got)
		assert.Empty(t, n.Partition([]string{"a", "b"}), "one group cuts nothing")
	})
	t.Run("two faults cut one link: it stays cut until both heal", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := setup(t)
			cut := n.Partition([]string{"a"}, []string{"b", "c"})
			n.Cut("a", "b") // a one-way cut of a link the partition also cut
			healAll(n, cut)
			assert.False(t, open(n, "a", "b"), "the one-way cut outlives the partition")
			assert.True(t, open(n, "a", "c"), "the partition's own links heal")
			n.HealLink("a", "b")
			assert.True(t, open(n, "a", "b"))
			n.HealLink("a", "b") // a link without cuts stays as it is
			assert.True(t, open(n, "a", "b"))
		})
	})
	t.Run("a partition heals no earlier cut, and healing it leaves them", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := setup(t)
			n.Cut("c", "a")
			cut := n.Partition([]string{"a"}, []string{"b"})
			assert.False(t, open(n, "c", "a"), "Partition did not heal c->a")
			healAll(n, cut)
			assert.True(t, open(n, "a", "b"))
			assert.False(t, open(n, "c", "a"), "nor did healing the partition")
			n.Heal()
			assert.True(t, open(n, "c", "a"), "Heal removes every cut")
		})
	})
	t.Run("bytes held by a cut flow when its last cut heals", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := simnet.New(cfg)
			defer n.Close()
			a, b := dialPair(t, n, "a", "b")
			n.Cut("a", "b")
			n.Cut("a", "b")
			_, err := a.Write([]byte("x"))
			require.NoError(t, err)
			require.NoError(t, b.SetReadDeadline(time.Now().Add(time.Second)))
			n.HealLink("a", "b")
			_, err = b.Read(make([]byte, 1))
			assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "one cut is left")
			require.NoError(t, b.SetReadDeadline(time.Time{}))
			n.HealLink("a", "b")
			_, err = b.Read(make([]byte, 1))
			assert.NoError(t, err)
		})
	})
}

// TestHostDelaysCompose: a host holds one delay setting per AddHostDelay,
// its links take the slowest, and RemoveHostDelay takes one away, leaving
// the others.
func TestHostDelaysCompose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := simnet.New(simnet.Config{Seed: 1, Default: simnet.LinkConfig{Latency: 5 * time.Millisecond}})
		defer n.Close()
		lis, err := n.Listen("b")
		require.NoError(t, err)
		defer lis.Close()
		rtt := func() time.Duration {
			start := time.Now()
			c, err := n.Dial(context.Background(), "a", "b")
			require.NoError(t, err)
			c.Close()
			return time.Since(start)
		}
		slow, slower := simnet.LinkConfig{Latency: 10 * time.Millisecond}, simnet.LinkConfig{Latency: 40 * time.Millisecond}
		require.NoError(t, n.AddHostDelay("b", slow))
		require.NoError(t, n.AddHostDelay("b", slower))
		assert.Equal(t, 80*time.Millisecond, rtt(), "the slowest setting applies")
		n.RemoveHostDelay("b", slower)
		assert.Equal(t, 20*time.Millisecond, rtt(), "the other setting stays")
		require.NoError(t, n.AddHostDelay("b", slow))
		n.RemoveHostDelay("b", slow)
		assert.Equal(t, 20*time.Millisecond, rtt(), "one of two equal settings stays")
		n.RemoveHostDelay("b", slow)
		assert.Equal(t, 10*time.Millisecond, rtt(), "none left: the default")
		n.RemoveHostDelay("b", slow)
		assert.Equal(t, 10*time.Millisecond, rtt(), "removing what is not there does nothing")
		assert.EqualError(t, n.AddHostDelay("b", simnet.LinkConfig{Latency: -1}), "simnet: add-host-delay b: delay -1ns±0s: negative latency")
		require.NoError(t, n.AddHostDelay("b", slower))
		require.NoError(t, n.SetHost("b", slow))
		assert.Equal(t, 20*time.Millisecond, rtt(), "SetHost replaces every setting")
		n.ClearHost("b")
		assert.Equal(t, 10*time.Millisecond, rtt(), "ClearHost removes every setting")
	})
}
