package rr_seq

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/seqlab/seqlab/rr_seq/pb"
)

// FuzzNodeAPI feeds arbitrary requests to a node's gRPC handlers: none may
// panic, a refused request changes nothing, and an accepted one never
// lowers a value.
func FuzzNodeAPI(f *testing.F) {
	f.Add("s", uint64(1), uint64(1), uint64(5))
	f.Add("", uint64(0), uint64(0), uint64(0))
	f.Add("x", ^uint64(0), ^uint64(0)-1, ^uint64(0))
	f.Add("a\x00b", uint64(3), uint64(9), uint64(2))
	f.Fuzz(func(t *testing.T, name string, n, base, value uint64) {
		node, err := NewNode(Config{Self: "a", Peers: []string{"a"}, PeerSecret: "s", Bootstrap: true, FirstStart: true})
		require.NoError(t, err)
		defer node.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		require.NoError(t, node.WaitReady(ctx))
		peer := peerService{n: node}
		before := node.Values()[name]
		_, err = peer.Set(ctx, &pb.SetRequest{Name: name, Base: base, Value: value})
		if err != nil {
			require.Equal(t, codes.InvalidArgument, status.Code(err))
			require.Equal(t, before, node.Values()[name], "a refused Set changes nothing")
		}
		mid := node.Values()[name]
		require.GreaterOrEqual(t, mid, before)
		r, err := node.NextRange(ctx, &pb.NextRangeRequest{Name: name, N: n})
		if err != nil {
			require.Contains(t, []codes.Code{codes.InvalidArgument, codes.OutOfRange}, status.Code(err), "%v", err)
			require.Equal(t, mid, node.Values()[name], "a refused NextRange changes nothing")
			return
		}
		require.Equal(t, n, r.GetTo()-r.GetFrom())
		require.GreaterOrEqual(t, r.GetFrom(), max(mid, 1))
		_, err = peer.Get(ctx, &pb.GetRequest{Name: name})
		require.NoError(t, err)
	})
}
