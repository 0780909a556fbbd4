// Package pb holds the protobuf definition of the rr_seq wire API and the
// code generated from it. Regenerate with `go generate ./rr_seq/pb` (needs
// protoc, protoc-gen-go and protoc-gen-go-grpc on PATH).
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative rrseq.proto
