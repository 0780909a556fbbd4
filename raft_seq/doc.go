// Package raft_seq is the consensus sequencer of the original design
// document: a leader increments a replicated counter through a raft log
// (go.etcd.io/raft/v3). With clients that take ranges of n > 1 IDs and
// hand them out from a buffer, it is the document's "consensus with
// client-side caching"; with n = 1, plain consensus.
//
// # Protocol
//
// NextRange(name, n) is a log entry "name += n", tagged with the node,
// start and request that asked for it. Every node applies the committed
// entries in log order to the same state (each name's next ID), so the
// entry at one index yields the same range [old, old+n) everywhere; the
// node that proposed it answers its waiting request when it applies it. A
// follower forwards the proposal to the leader (raft's own forwarding), or
// with Config.Redirect refuses with a NotLeaderError naming the leader.
// There are no reads outside the log: every request is a write, so there
// are no lease reads to go stale (raft's ReadOnlySafe is set, and nothing
// calls ReadIndex).
//
// Where the document compares: consensus promises unique, linearizable
// and, apart from operations whose outcome is unknown and clients' lost
// buffers, gap-free IDs, with every request going through one leader and
// one round of replication and fsync. Read-repair (rr_seq) spreads the
// coordination over every node and skips the log, but loses IDs to
// refused writes and guesses; consensus loses only the ranges of requests
// that time out and commit later.
//
// # Outcomes
//
// A request ends with a range, or with an error that says whether it may
// have allocated: ErrUnknown (the entry was proposed, and not seen to
// commit within Config.RequestTimeout, or the core broke first: it may
// commit later, and then its range is a gap, never handed to anyone else)
// or a definite failure:
// ErrNotLeader, ErrNoLeader, ErrBusy, invalid input, or ErrDropped, when
// a different entry committed at the index this node saw its entry at. An
// entry is proposed once and keeps its index wherever it is replicated, so
// another entry committed there means it never will be. A proposal is
// never retried by the core: a retry is the client's, as a new request.
//
// # Elections, and why replay is exact
//
// Raft draws its election timeouts from crypto/rand, which no seed fixes.
// The core sets an ElectionTick so large that raft never campaigns on its
// own and calls Campaign itself once it has heard from no leader for a
// timeout drawn from [ElectionTimeout, 2*ElectionTimeout) by a PCG seeded
// with Config.Seed and the node's ID. Everything else raft does is a
// function of its inputs (it visits peers in sorted order), so a driver
// that feeds a seeded schedule gets the same run every time
// (TestDeterministicReplay shows two runs of one seed agree message for
// message, and another seed differs).
//
// CheckQuorum must be off: with the huge ElectionTick, followers would
// believe a dead leader's lease forever and ignore every vote. CheckQuorum
// does two jobs, and the core does both on its own clock instead. A
// follower that heard from its leader within ElectionTimeout, and a leader
// that heard from a quorum within it, ignore (pre-)votes for a later
// term, so a node that was cut off cannot depose a leader the others
// follow (PreVote is on as well). And a leader that has heard from no
// quorum for ElectionTimeout steps down: RawNode has no call for it, so
// the core starts raft afresh from its storage once no write is in flight
// (a restart that loses nothing). Without that, a leader cut off from its
// followers' answers, while they still hear its heartbeats (a one-way
// partition), would stall the cluster for good. What is left of
// CheckQuorum's absence: no lease-based reads, which raft_seq does not use.
//
// # Durability
//
// The core uses raft's asynchronous storage writes: each Ready's entries,
// hard state and snapshot come out as a Write, and every message that
// depends on it (a vote, an append's acknowledgement) is held in the core
// until the driver reports the write durable. The node's WAL appends one
// checksummed frame per Write and fsyncs once per batch (group commit),
// then tells the core. Every SnapshotEvery applied entries the core
// snapshots its state, and the WAL rewrites itself from the snapshot when
// it has grown; a torn last frame is cut on open, damage before it is
// ErrCorrupt, the data dir is locked and names its node and cluster.
//
// A node cannot safely forget its log: it may have voted in a term, or
// acknowledged entries a leader counted, and a node that forgot could vote
// again in that term and let two leaders commit different entries at one
// index. So a node with no state starts only with Bootstrap, and only once
// every peer answers that it is fresh too (no term past the first, no
// vote, no entry): the first start of a new cluster. A node whose data dir
// was wiped in a cluster that lived stays out, NOT_SERVING, saying why:
// the cluster goes on with the others, and never risks a duplicate.
// Bringing it back takes a membership change, which raft_seq does not do
// (its membership is static).
//
// Nodes that start a few milliseconds apart need one more rule. A node
// serves its peers' probes from the start, and its own probe may find its
// peers only later: by then they counted its fresh answer, bootstrapped
// and elected a leader without it, and it would see a cluster that lived
// and stay out for good. So every node draws a random incarnation when its
// process starts and sends it with its probes and its answers; a node that
// bootstraps remembers the incarnation each peer answered fresh with, and
// tells a prober that names the same one that it was counted. Such a node
// joins from the bootstrap state. That is safe: when the peer
// bootstrapped, every node had answered fresh, so all state in the
// cluster since descends from that bootstrap, and the prober, in this
// incarnation, has held none of it (it had no state when it answered, and
// has had none since): it is a node that bootstrapped then and has heard
// nothing, a follower that lags. What it did in earlier lives precedes the
// bootstrap, which every node had forgotten.
//
// Having answered fresh is not enough on its own. A node restarted in
// memory in a living cluster is probed by nobody with state (only nodes
// without state probe), and is counted by nobody: its incarnation is new,
// and a peer that counted its last one does not count this one; so it
// sees state, and stays out. Two nodes that lose their state at once
// answer each other fresh, but neither bootstraps (each finds the node
// that kept the state), so neither is counted: both stay out, though each
// answered fresh in this life. The count lives in the bootstrapper's
// memory only; a bootstrapper restarted from its disk forgets it, and a
// prober that finds no peer that remembers stays out, as before.
//
// # Structure
//
// Core is the synchronous state machine, with no goroutines, clocks or
// I/O; its inputs are Request, Step (a peer's message), Tick, Durable,
// Cancel, Unreachable and SnapshotSent, each at a time now, and each
// returns an Output: messages to send, writes to make durable, replies,
// and when to call Tick next. WAL keeps a node's state through the FS
// interface (the lab's simulated disk included). Node is the gRPC shell:
// rr_seq's client API (rrseq.v1.Sequencer) with health and reflection on
// one listener, and its own raft transport (raftseq.v1.Raft, one stream
// per peer, with the cluster's shared secret or mutual TLS) on another.
// Package raft_seq/raftsim drives the core in the lab's deterministic
// simulator.
package raft_seq
