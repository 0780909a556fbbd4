package supervisor

import (
	"context"
	"net"

	"github.com/pkg/errors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Dial connects to a node's address; the lab's dials run inside a
// namespace (process/netns's Host.Dial).
type Dial func(ctx context.Context, address string) (net.Conn, error)

// Accepting is ready when a TCP connection to address succeeds: the
// least a program that serves the API can show.
func Accepting(dial Dial, address string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		c, err := dial(ctx, address)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// Serving is ready when the gRPC health service at address says SERVING
// for the whole server (service ""). rr_seq's nodes say NOT_SERVING
// while they recover.
func Serving(dial Dial, address string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		cc, err := grpc.NewClient("passthrough:///"+address,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return dial(ctx, a) }),
		)
		if err != nil {
			return err
		}
		defer cc.Close()
		resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if resp.Status != healthpb.HealthCheckResponse_SERVING {
			return errors.Errorf("health says %s", resp.Status)
		}
		return nil
	}
}
