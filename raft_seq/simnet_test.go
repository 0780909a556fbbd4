package raft_seq

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	rrpb "github.com/seqlab/seqlab/rr_seq/pb"
	"github.com/seqlab/seqlab/simnet"
	"github.com/seqlab/seqlab/simnet/disk"
)

// TestNodeOnSimnet: the gRPC node runs unchanged on the lab's simulated
// network and disks, in virtual time: it bootstraps, forwards a
// follower's request, survives its leader's isolation, and a power loss
// of every node brings back what was acknowledged.
func TestNodeOnSimnet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := simnet.New(simnet.Config{Seed: 5, Default: simnet.LinkConfig{Latency: time.Millisecond}})
		defer net.Close()
		names := []string{"n1", "n2", "n3"}
		peers := make([]string, len(names))
		disks := make([]*disk.Disk, len(names))
		for i, name := range names {
			peers[i] = name + ":peer"
			disks[i] = disk.New(int64(i + 1))
		}
		nodes := make([]*Node, len(names))
		start := func(i int) {
			n, err := NewNode(NodeConfig{Self: peers[i], Name: names[i], Peers: peers, DataDir: "data", FS: disks[i].Mount(),
				Bootstrap: true, Dialer: net.Dialer(names[i]), PeerSecret: "s3cret", Seed: uint64(i + 1),
				Core: Config{ElectionTimeout: 300 * time.Millisecond, TickInterval: 50 * time.Millisecond}})
			require.NoError(t, err)
			cl, err := net.Listen(names[i] + ":client")
			require.NoError(t, err)
			pl, err := net.Listen(peers[i])
			require.NoError(t, err)
			go n.Serve(cl)
			go n.ServePeers(pl)
			nodes[i] = n
		}
		stop := func(i int) {
			require.NoError(t, nodes[i].Close())
			nodes[i] = nil
		}
		defer func() {
			for i := range nodes {
				if nodes[i] != nil {
					stop(i)
				}
			}
		}()
		for i := range names {
			start(i)
		}
		allocate := func(i int) (uint64, error) {
			cc, err := grpc.NewClient("passthrough:///"+names[i]+":client", grpc.WithContextDialer(net.Dialer("c1")),
				grpc.WithTransportCredentials(insecure.NewCredentials()))
			require.NoError(t, err)
			defer cc.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			r, err := rrpb.NewSequencerClient(cc).NextRange(ctx, &rrpb.NextRangeRequest{Name: "x", N: 5})
			if err != nil {
				return 0, err
			}
			return r.GetTo(), nil
		}
		leader := func() int {
			for i, n := range nodes {
				if n != nil {
					if s, _ := n.Status(); s.State == "leader" {
						return i
					}
				}
			}
			return -1
		}
		waitLeader := func() int {
			for range 100 {
				if l := leader(); l >= 0 {
					return l
				}
				time.Sleep(50 * time.Millisecond)
			}
			t.Fatal("no leader")
			return -1
		}
		lead := waitLeader()
		follower := (lead + 1) % 3
		to, err := allocate(follower)
		require.NoError(t, err, "a follower forwards")
		require.Equal(t, uint64(6), to)

		net.Partition([]string{names[lead]}, []string{names[(lead+1)%3], names[(lead+2)%3], "c1"})
		time.Sleep(2 * time.Second)
		to, err = allocate(follower)
		require.NoError(t, err, "the majority elects a leader of its own")
		require.Equal(t, uint64(11), to)
		net.Heal()

		for i := range names {
			stop(i)
			disks[i].Crash(disk.Torn)
			net.Crash(names[i])
			net.Restart(names[i])
		}
		for i := range names {
			start(i)
		}
		waitLeader()
		to, err = allocate(follower)
		require.NoError(t, err)
		require.Equal(t, uint64(16), to, "what was acknowledged survived the power loss")
	})
}
