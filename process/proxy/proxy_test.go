package proxy

import (
	"context"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// upstream is an echo server on loopback that also hands its accepted
// connections to the test.
func upstream(t *testing.T) (string, chan net.Conn) { return server(t, true) }

// server is upstream, echoing or not.
func server(t *testing.T, echo bool) (string, chan net.Conn) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	conns := make(chan net.Conn, 8)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			conns <- c
			if echo {
				go io.Copy(c, c)
			}
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		<-done
		close(conns)
		for c := range conns {
			c.Close()
		}
	})
	return lis.Addr().String(), conns
}

func newLink(t *testing.T, target string) *Link {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l, err := New(Config{
		Name: "a->b", Listener: lis, Seed: 1,
		Dial: func(ctx context.Context) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", target)
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, l.Close()) })
	return l
}

func connect(t *testing.T, l *Link) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes one byte and waits for its echo.
func roundTrip(t *testing.T, c net.Conn, d time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	if _, err := c.Write([]byte{'x'}); err != nil {
		return 0, err
	}
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	b := make([]byte, 1)
	_, err := io.ReadFull(c, b)
	return time.Since(start), err
}

func TestDelayIsMeasured(t *testing.T) {
	target, _ := upstream(t)
	l := newLink(t, target)
	c := connect(t, l)
	base, err := roundTrip(t, c, 2*time.Second)
	require.NoError(t, err)

	require.NoError(t, l.Set(Forward, Settings{Latency: 60 * time.Millisecond}))
	require.NoError(t, l.Set(Backward, Settings{Latency: 40 * time.Millisecond, Jitter: 20 * time.Millisecond}))
	var worst, best time.Duration = 0, time.Hour
	for range 5 {
		rtt, err := roundTrip(t, c, 2*time.Second)
		require.NoError(t, err)
		worst, best = max(worst, rtt), min(best, rtt)
	}
	t.Logf("round trip: %v without delay, %v to %v with 60ms forward and 40ms±20ms backward", base, best, worst)
	require.GreaterOrEqual(t, best, 100*time.Millisecond)
	require.Less(t, worst, time.Second, "far slower than 60ms + 40ms±20ms, even on a busy machine")

	require.NoError(t, l.Set(Forward, Settings{}))
	require.NoError(t, l.Set(Backward, Settings{}))
	fastest := time.Hour
	for range 3 {
		rtt, err := roundTrip(t, c, 2*time.Second)
		require.NoError(t, err)
		fastest = min(fastest, rtt)
	}
	require.Less(t, fastest, 80*time.Millisecond, "the delay outlived its setting")
}

func TestJitterKeepsTheOrder(t *testing.T) {
	target, _ := upstream(t)
	l := newLink(t, target)
	require.NoError(t, l.Set(Forward, Settings{Jitter: 30 * time.Millisecond}))
	c := connect(t, l)
	var want []byte
	for i := range 50 {
		want = append(want, byte(i))
		_, err := c.Write([]byte{byte(i)})
		require.NoError(t, err)
		time.Sleep(time.Millisecond)
	}
	got := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.ReadFull(c, got)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

func TestStallHoldsTheBytes(t *testing.T) {
	target, _ := upstream(t)
	l := newLink(t, target)
	c := connect(t, l)
	_, err := roundTrip(t, c, 2*time.Second)
	require.NoError(t, err)
	require.NoError(t, l.Set(Backward, Settings{Stall: true}))
	_, err = roundTrip(t, c, 300*time.Millisecond)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.NoError(t, l.Set(Backward, Settings{}))
	b := make([]byte, 1)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = io.ReadFull(c, b)
	require.NoError(t, err, "the stalled byte was not delivered after the stall")
}

func TestBlackholeLosesTheBytes(t *testing.T) {
	target, _ := upstream(t)
	l := newLink(t, target)
	c := connect(t, l)
	require.NoError(t, l.Set(Forward, Settings{Blackhole: true}))
	_, err := c.Write([]byte("lost"))
	require.NoError(t, err)
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, l.Set(Forward, Settings{}))
	_, err = c.Write([]byte("kept"))
	require.NoError(t, err)
	b := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = io.ReadFull(c, b)
	require.NoError(t, err)
	require.Equal(t, "kept", string(b))
}

func TestResetResetsBothEnds(t *testing.T) {
	target, ups := server(t, false)
	l := newLink(t, target)
	c := connect(t, l)
	up := <-ups
	require.Eventually(t, func() bool { open, _ := l.Open(); return open == 1 }, 2*time.Second, time.Millisecond)
	require.Equal(t, 1, l.Reset())

	b := make([]byte, 1)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := c.Read(b)
	require.ErrorIs(t, err, syscall.ECONNRESET, "the dialler's end")
	up.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = up.Read(b)
	require.ErrorIs(t, err, syscall.ECONNRESET, "the upstream's end")

	// The link accepts again.
	connect(t, l)
	up2 := <-ups // held: a dropped conn is closed by its finalizer, ending the pair
	defer up2.Close()
	require.Eventually(t, func() bool {
		open, accepted := l.Open()
		return open == 1 && accepted == 2
	}, 2*time.Second, 5*time.Millisecond)
}

func TestAFailedDialResetsTheDialler(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l, err := New(Config{Listener: lis, Dial: func(ctx context.Context) (net.Conn, error) {
		return nil, syscall.ECONNREFUSED
	}})
	require.NoError(t, err)
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err == nil { // the reset may come before or after connect returns
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = c.Read(make([]byte, 1))
	}
	require.ErrorIs(t, err, syscall.ECONNRESET)
}

func TestCloseEndsEverything(t *testing.T) {
	target, _ := upstream(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l, err := New(Config{Listener: lis, Dial: func(ctx context.Context) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", target)
	}})
	require.NoError(t, err)
	c, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, l.Set(Backward, Settings{Stall: true}))
	_, err = c.Write([]byte("held"))
	require.NoError(t, err)
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, l.Close()) // with a stalled chunk in flight
	require.NoError(t, l.Close())
	_, err = net.DialTimeout("tcp", lis.Addr().String(), time.Second)
	require.Error(t, err, "the link still accepts after Close")
	// goleak (TestMain) shows that no goroutine of the link is left.
}

func TestBadInputIsRefused(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer lis.Close()
	dial := func(ctx context.Context) (net.Conn, error) { return nil, nil }
	_, err = New(Config{Name: "x", Dial: dial})
	require.EqualError(t, err, "proxy x: no listener")
	_, err = New(Config{Name: "x", Listener: lis})
	require.EqualError(t, err, "proxy x: no dial function")
	_, err = New(Config{Name: "x", Listener: lis, Dial: dial, DialTimeout: -1})
	require.EqualError(t, err, "proxy x: negative dial timeout")

	l, err := New(Config{Name: "x", Listener: lis, Dial: dial})
	require.NoError(t, err)
	defer l.Close()
	require.EqualError(t, l.Set(Forward, Settings{Latency: -time.Second}), "x: proxy: delay -1s±0s: negative")
	require.EqualError(t, l.Set(Backward, Settings{Jitter: 2 * time.Minute}), "x: proxy: delay 0s±2m0s: over 1m0s")
	require.EqualError(t, l.Set(Direction(7), Settings{}), "proxy x: no direction 7")
	require.Equal(t, Settings{}, l.Settings(Forward), "a refused setting changes nothing")
}
