package raft_seq

import "github.com/seqlab/seqlab/internal/peerauth"

// peerSecret is the cluster's shared secret on raft_seq's peer API.
func peerSecret(secret string) peerauth.Secret {
	return peerauth.Secret{Key: "raftseq-peer-secret", Value: secret, API: "raft peer API"}
}
