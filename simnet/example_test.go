package simnet_test

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/seqlab/seqlab/simnet"
)

// Three nodes serve gRPC on a simulated network; n1 is cut off from n2
// and n3, then the partition heals. Inside a testing/synctest bubble the
// same code runs in virtual time.
func Example() {
	net := simnet.New(simnet.Config{Seed: 1, Default: simnet.LinkConfig{Latency: time.Millisecond}})
	defer net.Close()

	nodes := []string{"n1", "n2", "n3"}
	for _, name := range nodes {
		lis, err := net.Listen(name)
		if err != nil {
			panic(err)
		}
		s := grpc.NewServer()
		healthpb.RegisterHealthServer(s, health.NewServer())
		go s.Serve(lis)
		defer s.Stop()
	}
	// n1's view of its peers.
	check := func(to string) string {
		cc, err := grpc.NewClient("passthrough:///"+to,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(net.Dialer("n1")))
		if err != nil {
			panic(err)
		}
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		return fmt.Sprintf("n1->%s %v", to, status.Code(err))
	}

	net.Partition([]string{"n1"}, []string{"n2", "n3"})
	fmt.Println(check("n2"), "|", check("n3"))
	net.Heal()
	fmt.Println(check("n2"), "|", check("n3"))
	for _, e := range net.Events() {
		fmt.Println(e.Kind, e.Detail)
	}
	// Output:
	// n1->n2 DeadlineExceeded | n1->n3 DeadlineExceeded
	// n1->n2 OK | n1->n3 OK
	// partition [[n1] [n2 n3]]
	// heal
}
