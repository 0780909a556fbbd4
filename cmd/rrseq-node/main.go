// Command rrseq-node runs one node of a read-repair quorum sequencer.
//
//	rrseq-node --listen 127.0.0.1:7001 --peers 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003 --data-dir data/n1
//
// It serves the rr_seq gRPC API plus gRPC health and reflection, logs with
// log/slog, and shuts down cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/seqlab/seqlab/rr_seq"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr, nil))
}

// run starts a node and serves until ctx is done. ready, if not nil,
// receives the listening address once the node serves.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) int {
	fs := flag.NewFlagSet("rrseq-node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:7001", "address to listen on")
	self := fs.String("self", "", "this node's address as it appears in --peers (default: --listen)")
	name := fs.String("name", "", "node name in replies and logs (default: --self)")
	peers := fs.String("peers", "", "comma-separated addresses of every node, this one included (default: just this node)")
	dataDir := fs.String("data-dir", "", "directory for durable state; empty keeps state in memory only")
	r := fs.Int("r", 0, "read quorum (default: majority)")
	w := fs.Int("w", 0, "write quorum (default: majority)")
	rule := fs.String("write-rule", "set-if-unchanged", "conditional write rule: set-if-unchanged or set-if-greater (unsafe)")
	unsafe := fs.Bool("unsafe", false, "allow R+W <= N or W <= N/2 (hands out duplicate IDs)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rrseq-node: unexpected arguments %q\n", fs.Args())
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "rrseq-node: --log-level: %v\n", err)
		return 2
	}
	wr, err := rr_seq.ParseWriteRule(*rule)
	if err != nil {
		fmt.Fprintf(stderr, "rrseq-node: --write-rule: %v\n", err)
		return 2
	}
	if *self == "" {
		*self = *listen
	}
	peerList := []string{*self}
	if *peers != "" {
		peerList = strings.Split(*peers, ",")
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	node, err := rr_seq.NewNode(rr_seq.Config{
		Self: *self, Name: *name, Peers: peerList, R: *r, W: *w, Unsafe: *unsafe,
		WriteRule: wr, DataDir: *dataDir, Logger: logger,
	})
	if err != nil {
		fmt.Fprintf(stderr, "rrseq-node: %v\n", err)
		return 2
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		node.Close()
		fmt.Fprintf(stderr, "rrseq-node: %v\n", err)
		return 1
	}
	logger.Info("serving", "addr", lis.Addr().String())
	if ready != nil {
		ready <- lis.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- node.Serve(lis) }()
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
		node.Close()
		<-errc
		return 0
	case err := <-errc:
		node.Close()
		logger.Error("serve failed", "err", err)
		return 1
	}
}
