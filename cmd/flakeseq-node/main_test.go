package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/seqlab/seqlab/flake_seq"
	"github.com/seqlab/seqlab/rr_seq/pb"
	"github.com/seqlab/seqlab/seq"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestServes: the command serves NextRange on loopback with its node ID
// in the IDs, keeps its mark in its data dir, and exits 0 when asked to
// stop.
func TestServes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "n1")
	ctx, cancel := context.WithCancel(context.Background())
	var log bytes.Buffer
	ready := make(chan string, 1)
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--peer-listen", "127.0.0.1:0", "--name", "n1", "--node-id", "9",
			"--data-dir", dir}, &log, ready)
	}()
	addr := <-ready
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc.Close()
	cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ccancel()
	r, err := pb.NewSequencerClient(cc).NextRange(cctx, &pb.NextRangeRequest{Name: "a", N: 5})
	require.NoError(t, err)
	assert.Equal(t, "n1", r.GetNode())
	_, node, _ := flake_seq.Unpack(seq.ID(r.GetFrom()))
	assert.Equal(t, 9, node)
	assert.FileExists(t, filepath.Join(dir, flake_seq.MarkFile))
	cancel()
	require.Equal(t, 0, <-done, log.String())
	assert.Contains(t, log.String(), "shutting down")
}

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--node-id", "1024"}, "node ID 1024 outside 0..1023"},
		{[]string{"--epoch", "yesterday"}, "--epoch"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"stray"}, "unexpected arguments"},
		{[]string{"--reserve", "1ms"}, "reserve 1ms"},
	} {
		var out bytes.Buffer
		assert.Equal(t, 2, run(context.Background(), tc.args, &out, nil), tc.args)
		assert.Contains(t, out.String(), tc.want)
	}
}
