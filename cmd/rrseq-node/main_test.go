package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/seqlab/seqlab/rr_seq/pb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--r", "5"}, "R=5 is outside"},
		{[]string{"--peers", "a,b,c", "--self", "a", "--r", "3", "--w", "1"}, "not a majority"},
		{[]string{"--peers", "a,b,c", "--self", "a", "--r", "1", "--w", "2"}, "R+W=3 <= N=3"},
		{[]string{"--peers", "a,a,b", "--self", "a"}, "listed twice"},
		{[]string{"--write-rule", "yolo"}, "unknown write rule"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--nope"}, "flag provided but not defined"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stderr, nil)
			require.Equal(t, 2, code)
			require.Contains(t, stderr.String(), tc.want)
		})
	}
}

func TestServesRangesHealthAndStops(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() { done <- run(ctx, []string{"--listen", addr, "--data-dir", t.TempDir()}, &stderr, ready) }()
	select {
	case <-ready:
	case code := <-done:
		t.Fatalf("exited with %d: %s", code, stderr.String())
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc.Close()
	cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ccancel()
	h, err := healthpb.NewHealthClient(cc).Check(cctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, h.GetStatus())
	r, err := pb.NewSequencerClient(cc).NextRange(cctx, &pb.NextRangeRequest{Name: "orders", N: 10})
	require.NoError(t, err)
	require.Equal(t, uint64(1), r.GetFrom())
	require.Equal(t, uint64(11), r.GetTo())
	cancel()
	select {
	case code := <-done:
		require.Equal(t, 0, code)
	case <-time.After(10 * time.Second):
		t.Fatal("node did not stop")
	}
	require.Contains(t, stderr.String(), "shutting down")
}
