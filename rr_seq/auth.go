package rr_seq

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"os"

	"github.com/pkg/errors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// secretKey is the metadata key that carries the cluster's shared secret
// on peer calls.
const secretKey = "rrseq-peer-secret"

// LoadPeerTLS reads a node's certificate and key and the cluster CA, and
// returns the TLS configurations of mutual TLS on the peer API: the server
// requires a client certificate signed by the CA, the client checks the
// server's against it.
func LoadPeerTLS(certFile, keyFile, caFile string) (server, client *tls.Config, err error) {
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

// secretCreds attaches the shared secret to every peer call.
type secretCreds struct {
	secret string
	tls    bool
}

func (s secretCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{secretKey: s.secret}, nil
}

func (s secretCreds) RequireTransportSecurity() bool { return s.tls }

// checkSecret refuses a peer call that does not carry the secret.
func checkSecret(ctx context.Context, secret string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	got := md.Get(secretKey)
	if len(got) != 1 || subtle.ConstantTimeCompare([]byte(got[0]), []byte(secret)) != 1 {
		return status.Error(codes.Unauthenticated, "the peer API is for the cluster's nodes: missing or wrong cluster secret")
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
