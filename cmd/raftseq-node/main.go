// Command raftseq-node runs one node of raft_seq, the consensus sequencer
// on etcd raft.
//
//	raftseq-node --listen 127.0.0.1:7001 --peer-listen 127.0.0.1:7101 \
//	  --peers 127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103 --name n1 \
//	  --peer-secret-file data/secret --bootstrap --data-dir data/n1
//
// It serves the client API (rrseq.v1.Sequencer/NextRange, as rrseq-node
// does) with gRPC health and reflection on --listen, and the raft
// transport, to authenticated peers only, on --peer-listen. A node's raft
// ID is its place in --peers, so every node must list them in the same
// order. It logs with log/slog, logs "ready" once both ports are bound,
// and shuts down cleanly on SIGINT or SIGTERM.
//
// For the lab's process mode:
//
//	--node-cmd 'raftseq-node --listen {listen} --peer-listen {peer_listen} --peers {peers} --name {name} --data-dir {data_dir} --bootstrap'
//
// with RRSEQ_PEER_SECRET set in the environment.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/seqlab/seqlab/internal/nodeflags"
	"github.com/seqlab/seqlab/raft_seq"
	"github.com/seqlab/seqlab/rr_seq"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr, nil))
}

// run starts a node and serves until ctx is done. ready, if not nil,
// receives the client listener's address once the node listens.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) int {
	fs := flag.NewFlagSet("raftseq-node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: raftseq-node [flags]\n\nRuns one node of raft_seq, a consensus sequencer on etcd raft. Flags:\n")
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "127.0.0.1:7001", "address of the client API (NextRange, health, reflection)")
	peerListen := fs.String("peer-listen", "127.0.0.1:7101", "address of the raft transport, which only the cluster's nodes may call")
	self := fs.String("self", "", "this node's peer address as it appears in --peers (default: --peer-listen)")
	name := fs.String("name", "", "node name in replies and logs (default: --self)")
	peers := fs.String("peers", "", "comma-separated peer addresses (host:port) of every node, this one included, in the same order on every node (default: just this node)")
	cluster := fs.String("cluster", "", "cluster ID (default: derived from --peers)")
	bootstrap := fs.Bool("bootstrap", false, "with no state, start a new cluster once every peer answers that it is fresh; a node with state ignores it")
	dataDir := fs.String("data-dir", "", "directory of the write-ahead log (required: a raft node that forgets its log cannot rejoin)")
	memory := fs.Bool("in-memory", false, "keep the log in memory, for tests: a restart is a new node, which cannot rejoin")
	secretFile := fs.String("peer-secret-file", "", "file holding the cluster's shared secret for the raft transport (or set RRSEQ_PEER_SECRET)")
	tlsCert := fs.String("tls-cert", "", "this node's TLS certificate (PEM), for mutual TLS on the raft transport")
	tlsKey := fs.String("tls-key", "", "the key of --tls-cert (PEM)")
	tlsCA := fs.String("tls-ca", "", "the cluster CA's certificate (PEM): peers must present a certificate it signed")
	clientTLS := fs.Bool("client-tls", false, "serve the client API over TLS too, with --tls-cert")
	redirect := fs.Bool("redirect", false, "followers refuse requests naming the leader (FAILED_PRECONDITION) instead of forwarding them")
	tick := fs.Duration("tick", 100*time.Millisecond, "raft's tick: the leader's heartbeat interval")
	election := fs.Duration("election-timeout", time.Second, "least time without a leader before a node campaigns (drawn from [T, 2T)); the same on every node")
	reqTimeout := fs.Duration("request-timeout", 5*time.Second, "how long a proposed request waits to commit before its outcome is reported unknown")
	maxRange := fs.Uint64("max-range", rr_seq.DefaultMaxRange, "largest range one request may ask for")
	maxNames := fs.Int("max-names", 100_000, "most sequence names a request may bring the state to")
	maxInFlight := fs.Int("max-inflight", 1024, "most NextRange calls served at once; more get RESOURCE_EXHAUSTED")
	noSync := fs.Bool("unsafe-no-sync", false, "a planted bug, for the lab: acknowledge what reached the page cache, never fsynced, so a power loss loses acknowledged entries")
	seed := fs.Uint64("seed", 0, "seed of the election timeouts (default: drawn at random)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "raftseq-node: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments %q", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usage("--log-level: %v", err)
	}
	switch {
	case *dataDir == "" && !*memory:
		return usage("--data-dir is required (or --in-memory, for tests)")
	case *dataDir != "" && *memory:
		return usage("--data-dir and --in-memory exclude each other")
	}
	if *self == "" {
		*self = *peerListen
	}
	peerList, err := nodeflags.Peers(*peers, *self)
	if err != nil {
		return usage("--peers: %v", err)
	}
	secret, err := nodeflags.Secret(*secretFile)
	if err != nil {
		return usage("--peer-secret-file: %v", err)
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg := raft_seq.NodeConfig{
		Self: *self, Name: *name, Peers: peerList, Cluster: *cluster, DataDir: *dataDir, Bootstrap: *bootstrap,
		PeerSecret: secret, Seed: *seed, MaxInFlight: *maxInFlight, UnsafeNoSync: *noSync, Logger: logger,
		Core: raft_seq.Config{TickInterval: *tick, ElectionTimeout: *election, RequestTimeout: *reqTimeout,
			Redirect: *redirect, MaxRange: *maxRange, MaxNames: *maxNames},
	}
	switch {
	case *tlsCert != "" || *tlsKey != "" || *tlsCA != "":
		if *tlsCert == "" || *tlsKey == "" || *tlsCA == "" {
			return usage("--tls-cert, --tls-key and --tls-ca go together")
		}
		cfg.PeerServerTLS, cfg.PeerClientTLS, err = rr_seq.LoadPeerTLS(*tlsCert, *tlsKey, *tlsCA)
		if err != nil {
			return usage("%v", err)
		}
		if *clientTLS {
			cfg.ClientTLS = &tls.Config{Certificates: cfg.PeerServerTLS.Certificates, MinVersion: tls.VersionTLS12}
		}
	case *clientTLS:
		return usage("--client-tls needs --tls-cert, --tls-key and --tls-ca")
	case secret == "":
		return usage("the raft transport needs authentication: --peer-secret-file FILE (or RRSEQ_PEER_SECRET), or --tls-cert/--tls-key/--tls-ca")
	}
	if err := cfg.WithDefaults().Validate(); err != nil {
		return usage("%v", err)
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "raftseq-node: %v\n", err)
		return 1
	}
	plis, err := net.Listen("tcp", *peerListen)
	if err != nil {
		lis.Close()
		fmt.Fprintf(stderr, "raftseq-node: %v\n", err)
		return 1
	}
	node, err := raft_seq.NewNode(cfg)
	if err != nil {
		lis.Close()
		plis.Close()
		fmt.Fprintf(stderr, "raftseq-node: %v\n", err)
		return 1
	}
	logger.Info("ready", "node", node.Name(), "clients", lis.Addr().String(), "peers", plis.Addr().String())
	if ready != nil {
		ready <- lis.Addr().String()
	}
	errc := make(chan error, 2)
	go func() { errc <- node.Serve(lis) }()
	go func() { errc <- node.ServePeers(plis) }()
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
		node.Close()
		<-errc
		<-errc
		return 0
	case err := <-errc:
		node.Close()
		<-errc
		logger.Error("serve failed", "err", err)
		return 1
	}
}
