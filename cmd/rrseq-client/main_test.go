package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seqlab/seqlab/rr_seq"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPrintsIDs(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	n, err := rr_seq.NewNode(rr_seq.Config{Self: "127.0.0.1:1", Peers: []string{"127.0.0.1:1"}, PeerSecret: "s", Bootstrap: true, FirstStart: true})
	require.NoError(t, err)
	require.NoError(t, n.WaitReady(context.Background()))
	var wg sync.WaitGroup
	wg.Go(func() { n.Serve(l) })
	defer wg.Wait()
	defer n.Close()

	var out, errb bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"--nodes", addr, "--count", "3"}, &out, &errb), errb.String())
	require.Equal(t, "1\n2\n3\n", out.String())
	out.Reset()
	require.Equal(t, 0, run(context.Background(), []string{"--nodes", addr, "--count", "2", "--range-size", "5"}, &out, &errb), errb.String())
	require.Equal(t, "4\n5\n", out.String(), "a new client starts after every range handed out before")
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--count", "0"},
		{"--timeout", "0"},
		{"--nodes", ""},
		{"--name", ""},
		{"--bogus"},
		{"positional"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			require.Equal(t, 2, run(context.Background(), args, &out, &errb))
			require.Empty(t, out.String())
			require.NotEmpty(t, errb.String())
		})
	}
}
