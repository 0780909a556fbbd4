package rr_seq

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/seqlab/seqlab/rr_seq/pb"
)

// fullFS is the real filesystem, except that syncs fail with ENOSPC while
// full is set: a disk that filled up.
type fullFS struct {
	OSFS
	full *atomic.Bool
}

type fullFile struct {
	File
	full *atomic.Bool
}

func (f fullFS) OpenAppend(name string) (File, error) {
	fl, err := f.OSFS.OpenAppend(name)
	if err != nil {
		return nil, err
	}
	return fullFile{fl, f.full}, nil
}

func (f fullFile) Sync() error {
	if f.full.Load() {
		return &fsError{syscall.ENOSPC}
	}
	return f.File.Sync()
}

type fsError struct{ errno syscall.Errno }

func (e *fsError) Error() string { return "sync: " + e.errno.Error() }
func (e *fsError) Unwrap() error { return e.errno }

// TestHealthTellsTheTruth: a node that cannot persist says NOT_SERVING,
// its callers hear why, and it serves again once it can.
func TestHealthTellsTheTruth(t *testing.T) {
	var full atomic.Bool
	tc := startCluster(t, 1, true, func(i int, c *Config) { c.FS = fullFS{full: &full} })
	n := tc.nodes[0]
	serving := func() bool {
		r, err := n.health.Check(context.Background(), &healthpb.HealthCheckRequest{})
		return err == nil && r.GetStatus().String() == "SERVING"
	}
	// Ready, then SERVING: health follows readiness a moment later.
	require.Eventually(t, serving, 5*time.Second, time.Millisecond)
	c := dial(t, tc.addrs[0])
	_, err := c.NextRange(context.Background(), &pb.NextRangeRequest{Name: "s", N: 1})
	require.NoError(t, err)

	full.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err = c.NextRange(ctx, &pb.NextRangeRequest{Name: "s", N: 1})
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.Contains(t, status.Convert(err).Message(), "cannot persist", "the cause, not just 'no quorum'")
	require.Contains(t, status.Convert(err).Message(), "no space left on device")
	require.False(t, serving(), "NOT_SERVING while it cannot persist")

	full.Store(false)
	r, err := c.NextRange(context.Background(), &pb.NextRangeRequest{Name: "s", N: 1})
	require.NoError(t, err)
	// Writes that failed to persist were never acknowledged: their IDs
	// are gaps, never handed out.
	require.GreaterOrEqual(t, r.GetFrom(), uint64(2))
	require.True(t, serving(), "SERVING again")
}

// countingHandler counts the error records logged, by message.
type countingHandler struct {
	mu     sync.Mutex
	errors map[string]int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.mu.Lock()
		h.errors[r.Message]++
		h.mu.Unlock()
	}
	return nil
}

// TestFailureLogsAreRateLimited: a failure that repeats is logged at
// most once a second, however many requests hit it (a full disk once
// logged hundreds of lines for one request).
func TestFailureLogsAreRateLimited(t *testing.T) {
	var full atomic.Bool
	h := &countingHandler{errors: map[string]int{}}
	tc := startCluster(t, 1, true, func(i int, c *Config) {
		c.FS = fullFS{full: &full}
		c.Logger = slog.New(h)
	})
	c := dial(t, tc.addrs[0])
	full.Store(true)
	start := time.Now()
	failed := 0
	for range 40 {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, err := c.NextRange(ctx, &pb.NextRangeRequest{Name: "s", N: 1})
		cancel()
		if err != nil {
			failed++
		}
	}
	elapsed := time.Since(start)
	require.Equal(t, 40, failed)
	h.mu.Lock()
	defer h.mu.Unlock()
	require.NotZero(t, h.errors["persist failed"], "the failure is logged")
	bound := 1 + int(elapsed/time.Second)
	for msg, n := range h.errors {
		require.LessOrEqual(t, n, bound, "%q logged %d times in %v for %d failed requests", msg, n, elapsed, failed)
	}
}
