// Package peerauth authenticates the peer APIs of the systems under test:
// a cluster's shared secret carried in the metadata of every peer call,
// or mutual TLS from the cluster's CA. rr_seq and raft_seq use it alike.
package peerauth

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"os"

	"github.com/pkg/errors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Secret is a cluster's shared secret, carried under the metadata key Key
// on the calls of the API it guards (named in the refusal).
type Secret struct {
	Key, Value, API string
}

// Creds attaches the secret to every call; with tls it is sent only over
// TLS.
func (s Secret) Creds(tls bool) credentials.PerRPCCredentials { return creds{s, tls} }

type creds struct {
	s   Secret
	tls bool
}

func (c creds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{c.s.Key: c.s.Value}, nil
}

func (c creds) RequireTransportSecurity() bool { return c.tls }

// Check refuses, with Unauthenticated, a call that does not carry the
// secret.
func (s Secret) Check(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	got := md.Get(s.Key)
	if len(got) != 1 || subtle.ConstantTimeCompare([]byte(got[0]), []byte(s.Value)) != 1 {
		return status.Errorf(codes.Unauthenticated, "the %s is for the cluster's nodes: missing or wrong cluster secret", s.API)
	}
	return nil
}

// ServerOptions are the interceptors that check the secret on every unary
// and streaming call; none when the secret is empty.
func (s Secret) ServerOptions() []grpc.ServerOption {
	if s.Value == "" {
		return nil
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := s.Check(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := s.Check(ss.Context()); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}
}

// LoadTLS reads a node's certificate and key and the cluster CA, and
// returns the TLS configurations of mutual TLS on a peer API: the server
// requires a client certificate signed by the CA, the client checks the
// server's against it.
func LoadTLS(certFile, keyFile, caFile string) (server, client *tls.Config, err error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, errors.Wrap(err, "load TLS certificate and key")
	}
	pemCA, err := os.ReadFile(caFile)
	if err != nil {
		return nil, nil, errors.Wrap(err, "read TLS CA")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemCA) {
		return nil, nil, errors.Errorf("TLS CA %s holds no PEM certificate", caFile)
	}
	server = &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
	client = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS13}
	return server, client, nil
}
