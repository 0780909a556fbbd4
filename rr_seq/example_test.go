package rr_seq_test

import (
	"context"
	"fmt"
	"net"

	"github.com/seqlab/seqlab/rr_seq"
)

// Example starts a one-node cluster on loopback and takes IDs from it with
// a buffering client.
func Example() {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	addr := lis.Addr().String()
	node, err := rr_seq.NewNode(rr_seq.Config{Self: addr, Peers: []string{addr}})
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- node.Serve(lis) }()

	client, err := rr_seq.NewClient(rr_seq.ClientConfig{Nodes: []string{addr}, Name: "orders", RangeSize: 100})
	if err != nil {
		panic(err)
	}
	for range 3 {
		id, err := client.Next(context.Background())
		if err != nil {
			panic(err)
		}
		fmt.Println(id)
	}
	r, err := node.Allocate(context.Background(), "orders", 10)
	fmt.Println(r, err)

	client.Close()
	node.Close()
	<-served
	// Output:
	// 1
	// 2
	// 3
	// [101,111) <nil>
}
