package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
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

func writeSecret(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(p, []byte("s3cret\n"), 0o600))
	return p
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

func TestBadFlags(t *testing.T) {
	secret := writeSecret(t)
	dir := t.TempDir()
	empty := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--peer-secret-file", secret}, "--data-dir is required"},
		{[]string{"--data-dir", dir, "--in-memory", "--peer-secret-file", secret}, "exclude each other"},
		{[]string{"--data-dir", dir}, "needs authentication"},
		{[]string{"--data-dir", dir, "--peer-secret-file", empty}, "is empty"},
		{[]string{"--data-dir", dir, "--peer-secret-file", "/nonexistent/secret"}, "--peer-secret-file"},
		{[]string{"--data-dir", dir, "--peers", "a:1, b", "--peer-secret-file", secret}, `--peers: "b" is not host:port`},
		{[]string{"--data-dir", dir, "--peers", "a:1,a:1", "--self", "a:1", "--peer-secret-file", secret}, "listed twice"},
		{[]string{"--data-dir", dir, "--peers", "a:1,b:1", "--self", "c:1", "--peer-secret-file", secret}, "not in Peers"},
		{[]string{"--data-dir", dir, "--election-timeout", "10ms", "--peer-secret-file", secret}, "under two ticks"},
		{[]string{"--data-dir", dir, "--tls-cert", "x"}, "go together"},
		{[]string{"--data-dir", dir, "--log-level", "loud", "--peer-secret-file", secret}, "--log-level"},
		{[]string{"--nope"}, "flag provided but not defined"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			require.Equal(t, 2, run(context.Background(), tc.args, &stderr, nil))
			require.Contains(t, stderr.String(), tc.want)
		})
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "bad flags change nothing")
}

func TestNoStateWithoutBootstrap(t *testing.T) {
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"--listen", freeAddr(t), "--peer-listen", freeAddr(t), "--data-dir", t.TempDir(),
		"--peer-secret-file", writeSecret(t)}, &stderr, nil)
	require.Equal(t, 1, code)
	require.Contains(t, stderr.String(), "start it with Bootstrap (--bootstrap)")
}

func TestServesRangesHealthAndStops(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan int, 1)
	var stderr syncBuffer
	go func() {
		done <- run(ctx, []string{"--listen", addr, "--peer-listen", freeAddr(t), "--data-dir", t.TempDir(), "--bootstrap",
			"--peer-secret-file", writeSecret(t), "--election-timeout", "200ms", "--tick", "50ms"}, &stderr, ready)
	}()
	select {
	case <-ready:
	case code := <-done:
		t.Fatalf("exited %d: %s", code, stderr.String())
	}
	require.Contains(t, stderr.String(), "msg=ready")
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc.Close()
	require.Eventually(t, func() bool {
		h, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
		return err == nil && h.GetStatus() == healthpb.HealthCheckResponse_SERVING
	}, 5*time.Second, 10*time.Millisecond)
	resp, err := pb.NewSequencerClient(cc).NextRange(context.Background(), &pb.NextRangeRequest{Name: "a", N: 3})
	require.NoError(t, err)
	require.Equal(t, uint64(1), resp.GetFrom())
	require.Equal(t, uint64(4), resp.GetTo())
	cancel()
	require.Equal(t, 0, <-done)
	require.Contains(t, stderr.String(), "shutting down")
}
