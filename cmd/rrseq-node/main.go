// Command rrseq-node runs one node of a read-repair quorum sequencer.
//
//	rrseq-node --listen 127.0.0.1:7001 --peer-listen 127.0.0.1:7101 \
//	  --peers 127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103 \
//	  --peer-secret-file data/secret --bootstrap --data-dir data/n1
//
// It serves the client API (NextRange) with gRPC health and reflection on
// --listen, and the peer API, to authenticated peers only, on
// --peer-listen. It logs with log/slog and shuts down cleanly on SIGINT or
// SIGTERM. A node that lost its state (in memory after a restart, or a new
// or wiped data dir) recovers from its peers before it serves; health
// says NOT_SERVING until then.
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
	"runtime/debug"
	"syscall"
	"time"

	"github.com/seqlab/seqlab/internal/nodeflags"
	"github.com/seqlab/seqlab/rr_seq"
)

// The garbage collector's settings unless the environment sets them: a
// node's heap is small and short-lived (messages in flight), and GOGC=400
// cut the cost per allocation in BenchmarkNext (rr_seq, see the README);
// the memory limit keeps the higher GOGC from letting a node under load
// grow without bound.
const (
	defaultGOGC     = 400
	defaultMemLimit = 1 << 30
)

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGOGC)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemLimit)
	}
}

func main() {
	tuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr, nil))
}

// run starts a node and serves until ctx is done. ready, if not nil,
// receives the client listener's address once the node listens.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) int {
	fs := flag.NewFlagSet("rrseq-node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: rrseq-node [flags]\n\nRuns one node of a read-repair quorum sequencer. Flags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nEnvironment: GOGC defaults to %d and GOMEMLIMIT to %dMiB unless set (measured in rr_seq's BenchmarkNext).\n",
			defaultGOGC, defaultMemLimit>>20)
	}
	readFirst := fs.Bool("read-first", false, "use the protocol from before write-only rounds and coalescing (to measure against)")
	listen := fs.String("listen", "127.0.0.1:7001", "address of the client API (NextRange, health, reflection)")
	peerListen := fs.String("peer-listen", "127.0.0.1:7101", "address of the peer API, which only the cluster's nodes may call")
	self := fs.String("self", "", "this node's peer address as it appears in --peers (default: --peer-listen)")
	name := fs.String("name", "", "node name in replies and logs (default: --self)")
	peers := fs.String("peers", "", "comma-separated peer addresses (host:port) of every node, this one included (default: just this node)")
	cluster := fs.String("cluster", "", "cluster ID (default: derived from --peers)")
	bootstrap := fs.Bool("bootstrap", false, "start a new cluster if every peer answers and none holds state; a node whose peers hold state recovers from them instead")
	recoverFlag := fs.Bool("recover", false, "start although the data dir's state is missing or corrupt, recovering it from the peers")
	dataDir := fs.String("data-dir", "", "directory for durable state; empty keeps state in memory only")
	secretFile := fs.String("peer-secret-file", "", "file holding the cluster's shared secret for the peer API (or set RRSEQ_PEER_SECRET)")
	tlsCert := fs.String("tls-cert", "", "this node's TLS certificate (PEM), for mutual TLS on the peer API")
	tlsKey := fs.String("tls-key", "", "the key of --tls-cert (PEM)")
	tlsCA := fs.String("tls-ca", "", "the cluster CA's certificate (PEM): peers must present a certificate it signed")
	clientTLS := fs.Bool("client-tls", false, "serve the client API over TLS too, with --tls-cert")
	r := fs.Int("r", 0, "read quorum (default: majority)")
	w := fs.Int("w", 0, "write quorum (default: majority)")
	rule := fs.String("write-rule", "set-if-unchanged", "conditional write rule: set-if-unchanged or set-if-greater (unsafe)")
	unsafe := fs.Bool("unsafe", false, "allow R+W <= N or W <= N/2 (hands out duplicate IDs)")
	ackBeforeSync := fs.Bool("unsafe-ack-before-sync", false, "a planted bug, for the lab: acknowledge writes before they are fsynced (a power loss takes back IDs handed out)")
	maxRange := fs.Uint64("max-range", rr_seq.DefaultMaxRange, "largest range one request may ask for")
	maxNames := fs.Int("max-names", 100_000, "most sequence names this node holds")
	maxInFlight := fs.Int("max-inflight", 1024, "most NextRange calls served at once; more get RESOURCE_EXHAUSTED")
	roundLife := fs.Duration("round-life", rr_seq.DefaultRoundLife, "longest a write round may take; the same on every node")
	peerTimeout := fs.Duration("peer-timeout", time.Second, "longest one read or write to a peer may take before the round goes on without it")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "rrseq-node: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments %q", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usage("--log-level: %v", err)
	}
	wr, err := rr_seq.ParseWriteRule(*rule)
	if err != nil {
		return usage("--write-rule: %v", err)
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
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg := rr_seq.Config{
		Self: *self, Name: *name, Peers: peerList, Cluster: *cluster, Bootstrap: *bootstrap, Recover: *recoverFlag,
		R: *r, W: *w, Unsafe: *unsafe, WriteRule: wr, DataDir: *dataDir, Logger: logger,
		MaxRange: *maxRange, MaxNames: *maxNames, MaxInFlight: *maxInFlight, RoundLife: *roundLife, PeerSecret: secret,
		ReadFirst: *readFirst, UnsafeAckBeforeSync: *ackBeforeSync, PeerTimeout: *peerTimeout,
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
		return usage("the peer API needs authentication: --peer-secret-file FILE (or RRSEQ_PEER_SECRET), or --tls-cert/--tls-key/--tls-ca")
	}
	if err := cfg.WithDefaults().Validate(); err != nil {
		return usage("%v", err)
	}
	for _, a := range []struct{ flag, addr string }{{"--listen", *listen}, {"--peer-listen", *peerListen}} {
		if !loopback(a.addr) && (cfg.PeerServerTLS == nil || (a.flag == "--listen" && cfg.ClientTLS == nil)) {
			logger.Warn("listening beyond loopback without TLS", "flag", a.flag, "addr", a.addr)
		}
	}
	if *ackBeforeSync {
		logger.Warn("planted bug on: writes are acknowledged before they are fsynced (--unsafe-ack-before-sync)")
	}
	// Bind both ports before the node starts, so that every line it logs,
	// "ready" included, is true of a node that takes connections.
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "rrseq-node: %v\n", err)
		return 1
	}
	plis, err := net.Listen("tcp", *peerListen)
	if err != nil {
		lis.Close()
		fmt.Fprintf(stderr, "rrseq-node: %v\n", err)
		return 1
	}
	logger.Info("listening", "node", *name, "clients", lis.Addr().String(), "peers", plis.Addr().String())
	node, err := rr_seq.NewNode(cfg)
	if err != nil {
		lis.Close()
		plis.Close()
		fmt.Fprintf(stderr, "rrseq-node: %v\n", err)
		return 1
	}
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

// loopback reports whether addr's host is a loopback address.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
