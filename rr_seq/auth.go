package rr_seq

import (
	"crypto/tls"

	"github.com/seqlab/seqlab/internal/peerauth"
)

// LoadPeerTLS reads a node's certificate and key and the cluster CA, and
// returns the TLS configurations of mutual TLS on the peer API: the server
// requires a client certificate signed by the CA, the client checks the
// server's against it.
func LoadPeerTLS(certFile, keyFile, caFile string) (server, client *tls.Config, err error) {
	return peerauth.LoadTLS(certFile, keyFile, caFile)
}

// peerSecret is the cluster's shared secret on rr_seq's peer API.
func peerSecret(secret string) peerauth.Secret {
	return peerauth.Secret{Key: "rrseq-peer-secret", Value: secret, API: "peer API"}
}
