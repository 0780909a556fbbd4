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
	lis, err := net.Listen("tcp", "127.0.0.1:0") // the client API
	if err != nil {
		panic(err)
	}
	peerLis, err := net.Listen("tcp", "127.0.0.1:0") // the peer API
	if err != nil {
		panic(err)
	}
	addr, peer := lis.Addr().String(), peerLis.Addr().String()
	node, err := rr_seq.NewNode(rr_seq.Config{
		Self: peer, Peers: []string{peer}, PeerSecret: "a cluster secret",
		Bootstrap: true, FirstStart: true, // a new cluster of one
	})
	if err != nil {
		panic(err)
	}
	served := make(chan error, 2)
	go func() { served <- node.Serve(lis) }()
	go func() { served <- node.ServePeers(peerLis) }()
	if err := node.WaitReady(context.Background()); err != nil {
		panic(err)
	}

	// A range straight from the node, then IDs from a buffering client.
	// (The allocation comes first: the client fetches ahead as soon as it
	// starts, so anything after it would race its fetches.)
	r, err := node.Allocate(context.Background(), rr_seq.Request{Name: "orders", N: 10})
	fmt.Println(r, err)

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

	client.Close()
	node.Close()
	<-served
	<-served
	// Output:
	// [1,11) <nil>
	// 11
	// 12
	// 13
}
