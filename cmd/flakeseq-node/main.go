// Command flakeseq-node runs one node of a Flake sequencer (flake_seq):
// IDs of the node's clock, its node ID and a counter, handed out with no
// coordination.
//
//	flakeseq-node --listen 127.0.0.1:7001 --node-id 1 --data-dir data/n1
//
// It serves the client API (rrseq.v1.Sequencer's NextRange) with gRPC
// health and reflection on --listen, and health alone on --peer-listen if
// given (flake nodes have no peers). It keeps its high-water mark in
// --data-dir, so that a restart with the clock behind starts above every
// ID it handed out; without one it keeps it in memory. It logs with
// log/slog and shuts down cleanly on SIGINT or SIGTERM. In the lab's
// process mode:
//
//	--node-cmd 'flakeseq-node --listen {listen} --peer-listen {peer_listen} --name {name} --node-id {index} --data-dir {data_dir}'
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
	"syscall"
	"time"

	"github.com/seqlab/seqlab/flake_seq"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr, nil))
}

// run starts a node and serves until ctx is done. ready, if not nil,
// receives the client listener's address once the node listens.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) int {
	fs := flag.NewFlagSet("flakeseq-node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: flakeseq-node [flags]\n\nRuns one node of a Flake sequencer. Flags:\n")
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "127.0.0.1:7001", "address of the client API (NextRange, health, reflection)")
	peerListen := fs.String("peer-listen", "", "address to serve health on for a lab that gives every node a peer port (flake nodes have no peers); empty for none")
	name := fs.String("name", "", "node name in replies and logs (default: --listen)")
	nodeID := fs.Int("node-id", 0, fmt.Sprintf("this node's part of every ID, 0..%d, unique in the cluster", flake_seq.MaxNodeID))
	dataDir := fs.String("data-dir", "", "directory for the high-water mark; empty keeps it in memory only (a restart with the clock behind may then hand out IDs again)")
	reserve := fs.Duration("reserve", time.Second, "how far ahead of its timestamps the node reserves on disk; a restart may wait this long for its clock")
	maxWait := fs.Duration("max-wait", 50*time.Millisecond, "longest a call waits for the clock to move on before UNAVAILABLE")
	epoch := fs.String("epoch", flake_seq.DefaultEpoch.Format(time.RFC3339), "where timestamps start (RFC 3339); the same on every node")
	rollback := fs.Bool("unsafe-clock-rollback", false, "a planted bug, for the lab ("+flake_seq.BugClockRollback+"): keep no high-water mark, so a restart with the clock behind hands out IDs again")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "flakeseq-node: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments %q", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usage("--log-level: %v", err)
	}
	ep, err := time.Parse(time.RFC3339, *epoch)
	if err != nil {
		return usage("--epoch: %v", err)
	}
	if *name == "" {
		*name = *listen
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg := flake_seq.NodeConfig{Name: *name, NodeID: *nodeID, DataDir: *dataDir, Epoch: ep, Reserve: *reserve,
		MaxWait: *maxWait, Planted: flake_seq.Planted{ClockRollback: *rollback}, Logger: logger}
	if err := cfg.WithDefaults().Validate(); err != nil {
		return usage("%v", err)
	}
	// Bind the ports before the node starts, so that every line it logs is
	// true of a node that takes connections.
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "flakeseq-node: %v\n", err)
		return 1
	}
	var plis net.Listener
	if *peerListen != "" {
		if plis, err = net.Listen("tcp", *peerListen); err != nil {
			lis.Close()
			fmt.Fprintf(stderr, "flakeseq-node: %v\n", err)
			return 1
		}
	}
	node, err := flake_seq.NewNode(cfg)
	if err != nil {
		lis.Close()
		if plis != nil {
			plis.Close()
		}
		fmt.Fprintf(stderr, "flakeseq-node: %v\n", err)
		return 1
	}
	logger.Info("listening", "node", *name, "node_id", *nodeID, "clients", lis.Addr().String(), "mark", node.Mark())
	if ready != nil {
		ready <- lis.Addr().String()
	}
	errc := make(chan error, 2)
	serving := 1
	go func() { errc <- node.Serve(lis) }()
	if plis != nil {
		serving++
		go func() { errc <- node.ServePeers(plis) }()
	}
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
		node.Close()
		for range serving {
			<-errc
		}
		return 0
	case err := <-errc:
		node.Close()
		for range serving - 1 {
			<-errc
		}
		logger.Error("serve failed", "err", err)
		return 1
	}
}
