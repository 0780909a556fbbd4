// Package pb holds the protobuf definition of raft_seq's peer API and the
// code generated from it. Regenerate with `go generate ./raft_seq/pb`
// (needs protoc, protoc-gen-go and protoc-gen-go-grpc on PATH, the versions
// rr_seq/pb names).
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative raftseq.proto
