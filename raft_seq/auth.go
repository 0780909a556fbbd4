package raft_seq

import (
	"context"
	"crypto/subtle"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// secretKey is the metadata key that carries the cluster's shared secret
// on peer calls.
const secretKey = "raftseq-peer-secret"

// secretCreds attaches the shared secret to every peer call.
type secretCreds struct {
	secret string
	tls    bool
}

func (s secretCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{secretKey: s.secret}, nil
}

func (s secretCreds) RequireTransportSecurity() bool { return s.tls }

func checkSecret(ctx context.Context, secret string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	got := md.Get(secretKey)
	if len(got) != 1 || subtle.ConstantTimeCompare([]byte(got[0]), []byte(secret)) != 1 {
		return status.Error(codes.Unauthenticated, "the raft peer API is for the cluster's nodes: missing or wrong cluster secret")
	}
	return nil
}

// peerAuth returns the interceptors that check the secret, if there is one.
func peerAuth(secret string) []grpc.ServerOption {
	if secret == "" {
		return nil
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := checkSecret(ctx, secret); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := checkSecret(ss.Context(), secret); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}
}
