package rr_seq

import (
	"context"
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
	require.True(t, serving())
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
