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
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--r", "5", "--peer-secret-file", secret}, "R=5 is outside"},
		{[]string{"--peers", "a:1,b:1,c:1", "--self", "a:1", "--r", "3", "--w", "1", "--peer-secret-file", secret}, "not a majority"},
		{[]string{"--peers", "a:1,b:1,c:1", "--self", "a:1", "--r", "1", "--w", "2", "--peer-secret-file", secret}, "R+W=3 <= N=3"},
		{[]string{"--peers", "a:1,a:1,b:1", "--self", "a:1", "--peer-secret-file", secret}, "listed twice"},
		{[]string{"--peers", "a:1, b", "--peer-secret-file", secret}, `--peers: "b" is not host:port`},
		{[]string{}, "the peer API needs authentication"},
		{[]string{"--tls-cert", "x"}, "go together"},
		{[]string{"--peer-secret-file", "/nonexistent/secret"}, "--peer-secret-file"},
		{[]string{"--write-rule", "yolo"}, "unknown write rule"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--peer-timeout", "-1s", "--peer-secret-file", secret}, "negative duration"},
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
	go func() {
		done <- run(ctx, []string{"--listen", addr, "--peer-listen", freeAddr(t), "--data-dir", t.TempDir(),
			"--bootstrap", "--peer-secret-file", writeSecret(t)}, &stderr, ready)
	}()
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
	require.Eventually(t, func() bool {
		h, err := healthpb.NewHealthClient(cc).Check(cctx, &healthpb.HealthCheckRequest{})
		return err == nil && h.GetStatus() == healthpb.HealthCheckResponse_SERVING
	}, 5*time.Second, 10*time.Millisecond, "SERVING once bootstrapped")
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

// The planted bug the process mode catches is on only when asked for,
// and the node says so as it starts.
func TestAckBeforeSyncSaysSo(t *testing.T) {
	for _, planted := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan string, 1)
		done := make(chan int, 1)
		var stderr bytes.Buffer
		args := []string{"--listen", freeAddr(t), "--peer-listen", freeAddr(t), "--data-dir", t.TempDir(),
			"--bootstrap", "--peer-secret-file", writeSecret(t), "--peer-timeout", "100ms"}
		if planted {
			args = append(args, "--unsafe-ack-before-sync")
		}
		go func() { done <- run(ctx, args, &stderr, ready) }()
		select {
		case <-ready:
		case code := <-done:
			t.Fatalf("exited with %d: %s", code, stderr.String())
		}
		cancel()
		require.Equal(t, 0, <-done)
		require.Equal(t, planted, strings.Contains(stderr.String(), "planted bug on"), stderr.String())
	}
}
