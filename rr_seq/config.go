package rr_seq

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/pkg/errors"
	"google.golang.org/grpc"

	"github.com/seqlab/seqlab/seq"
)

// Config configures a Node. The zero value of every optional field gets a
// default from WithDefaults.
type Config struct {
	// Self is this node's address as it appears in Peers.
	Self string
	// Name is the node's name in replies and logs; default Self.
	Name string
	// Peers lists the peer address of every node of the cluster, Self
	// included, once each.
	Peers []string
	// Cluster is the cluster ID, recorded in the data dir and checked
	// against peers; default "rrseq-" and a hash of the sorted Peers.
	Cluster string
	// Bootstrap lets a node with no state start a new cluster, but only
	// once every peer answers and none holds any value; otherwise it
	// recovers from its peers like any node that lost its state. A node
	// whose data dir holds its state ignores it.
	Bootstrap bool
	// Recover lets a node whose data dir is initialised but whose state
	// is missing or corrupt start anyway, recovering from its peers.
	// Without it such a node refuses to start.
	Recover bool
	// FirstStart says that no earlier process of this node ever ran, so
	// none can have acknowledged a write: recovery need not wait out
	// RoundLife. Only a harness that creates the node can know this.
	FirstStart bool
	// R and W are the read and write quorums; default a majority each.
	R, W int
	// Unsafe allows R+W <= N and W <= N/2. Such clusters hand out
	// duplicate IDs; the lab uses them to show it.
	Unsafe bool
	// WriteRule is the conditional write rule; default SetIfUnchanged.
	WriteRule WriteRule
	// DataDir, when set, makes every accepted value durable before it is
	// acknowledged. Empty means in memory only.
	DataDir string
	// FS is the filesystem under DataDir; default the real one.
	FS FS
	// UnsafeAckBeforeSync acknowledges writes that reached the page cache
	// but were never fsynced: a planted bug for the lab.
	UnsafeAckBeforeSync bool
	// UnsafePlanted plants coordinator bugs for the lab (see Planted).
	UnsafePlanted Planted
	// ReadFirst runs the protocol from before write-only rounds and
	// coalescing: every request reads before it writes. It is kept to
	// measure the newer protocol against.
	ReadFirst bool
	// Dialer, when set, dials peers (the lab's simulated network).
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
	// DialOptions are added to every peer connection.
	DialOptions []grpc.DialOption
	// ConnsPerPeer is the size of the round-robin pool of gRPC connections
	// to each peer; default 2.
	ConnsPerPeer int
	// DefaultTimeout bounds a NextRange whose caller set no deadline;
	// default 10s.
	DefaultTimeout time.Duration
	// PeerTimeout bounds one Get or Set to a peer, so that a silent peer
	// costs a round, not the whole operation; default 1s.
	PeerTimeout time.Duration
	// MaxBackoff caps the pause between two rounds of one operation;
	// default 50ms. The pause starts at 1ms and doubles, with jitter.
	MaxBackoff time.Duration
	// Fanout says whether a round goes to a quorum first (default) or to
	// every peer at once.
	Fanout Fanout
	// HedgeAfter is how long a round sent to a quorum waits before asking
	// the other peers too; default 5ms.
	HedgeAfter time.Duration
	// RoundLife bounds a write round (see Limits.RoundLife); default
	// DefaultRoundLife. A node that lost its state waits RecoveryWait of
	// it before it reads its peers, so every node must use the same value.
	RoundLife time.Duration
	// MaxRange bounds one request's range size; default DefaultMaxRange.
	MaxRange uint64
	// MaxNames bounds the sequence names a node holds; default 100,000.
	MaxNames int
	// MaxInFlight bounds the NextRange calls a node works on at once;
	// more are refused with ResourceExhausted. Default 1024.
	MaxInFlight int
	// PeerSecret, when set, is the shared cluster secret every peer call
	// must carry. Without TLS it travels in the clear: use it on loopback
	// or a trusted network only.
	PeerSecret string
	// PeerServerTLS and PeerClientTLS, set together, make the peer API
	// mutual TLS: the server asks for and checks the client's
	// certificate (see LoadPeerTLS). The peer API needs TLS, a secret, or
	// both.
	PeerServerTLS, PeerClientTLS *tls.Config
	// ClientTLS, when set, serves the client API over TLS.
	ClientTLS *tls.Config
	// Seed seeds the backoff jitter.
	Seed int64
	// Logger receives structured logs; default discards them.
	Logger *slog.Logger
}

// WithDefaults returns c with every unset optional field filled in.
func (c Config) WithDefaults() Config {
	if c.Name == "" {
		c.Name = c.Self
	}
	q := DefaultQuorum(len(c.Peers))
	if c.R == 0 {
		c.R = q.R
	}
	if c.W == 0 {
		c.W = q.W
	}
	if c.ConnsPerPeer == 0 {
		c.ConnsPerPeer = 2
	}
	if c.DefaultTimeout == 0 {
		c.DefaultTimeout = 10 * time.Second
	}
	if c.PeerTimeout == 0 {
		c.PeerTimeout = time.Second
	}
	if c.HedgeAfter == 0 {
		c.HedgeAfter = 5 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 50 * time.Millisecond
	}
	if c.FS == nil {
		c.FS = OSFS{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Cluster == "" {
		c.Cluster = DefaultClusterID(c.Peers)
	}
	if c.RoundLife == 0 {
		c.RoundLife = DefaultRoundLife
	}
	if c.MaxRange == 0 {
		c.MaxRange = DefaultMaxRange
	}
	if c.MaxNames == 0 {
		c.MaxNames = 100_000
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 1024
	}
	return c
}

// DefaultClusterID derives a cluster ID from the peer addresses, in any
// order: "rrseq-" and 12 hex digits of their hash.
func DefaultClusterID(peers []string) string {
	sorted := slices.Clone(peers)
	slices.Sort(sorted)
	sum := sha256.Sum256([]byte(strings.Join(sorted, "\n")))
	return "rrseq-" + hex.EncodeToString(sum[:6])
}

// Quorum returns the cluster shape c describes.
func (c Config) Quorum() Quorum { return Quorum{N: len(c.Peers), R: c.R, W: c.W} }

// Validate returns an error unless c (after WithDefaults) is usable.
func (c Config) Validate() error {
	if c.Self == "" {
		return errors.Wrap(seq.ErrInvalidArgument, "config: Self is empty")
	}
	seen := map[string]bool{}
	for _, p := range c.Peers {
		if p == "" {
			return errors.Wrap(seq.ErrInvalidArgument, "config: empty peer address")
		}
		if strings.TrimSpace(p) != p || strings.ContainsAny(p, " \t,") {
			return errors.Wrapf(seq.ErrInvalidArgument, "config: peer address %q has spaces or commas", p)
		}
		if seen[p] {
			return errors.Wrapf(seq.ErrInvalidArgument, "config: peer %q is listed twice", p)
		}
		seen[p] = true
	}
	if !seen[c.Self] {
		return errors.Wrapf(seq.ErrInvalidArgument, "config: Self %q is not in Peers %v", c.Self, c.Peers)
	}
	if err := c.Quorum().Validate(c.Unsafe); err != nil {
		return errors.Wrap(err, "config")
	}
	if c.WriteRule != SetIfUnchanged && c.WriteRule != SetIfGreater {
		return errors.Wrapf(seq.ErrInvalidArgument, "config: unknown write rule %d", c.WriteRule)
	}
	switch {
	case c.ConnsPerPeer < 1:
		return errors.Wrap(seq.ErrInvalidArgument, "config: ConnsPerPeer must be at least 1")
	case c.DefaultTimeout < 0, c.PeerTimeout < 0, c.MaxBackoff < 0, c.HedgeAfter < 0, c.RoundLife < 0:
		return errors.Wrap(seq.ErrInvalidArgument, "config: negative duration")
	case c.MaxNames < 0, c.MaxInFlight < 0:
		return errors.Wrap(seq.ErrInvalidArgument, "config: negative limit")
	case (c.PeerServerTLS == nil) != (c.PeerClientTLS == nil):
		return errors.Wrap(seq.ErrInvalidArgument, "config: PeerServerTLS and PeerClientTLS go together")
	case c.PeerServerTLS == nil && c.PeerSecret == "":
		return errors.Wrap(seq.ErrInvalidArgument, "config: the peer API needs mutual TLS or a shared secret (PeerSecret)")
	case c.Cluster != "" && (strings.ContainsAny(c.Cluster, " \t\n") || len(c.Cluster) > 128):
		return errors.Wrapf(seq.ErrInvalidArgument, "config: cluster ID %q has spaces or is over 128 bytes", c.Cluster)
	}
	return nil
}
