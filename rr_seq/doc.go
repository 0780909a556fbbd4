// Package rr_seq is a leaderless read-repair quorum sequencer: N nodes, each
// keeping per sequence name the lowest ID it has not seen allocated, hand
// out ranges of IDs with no leader and no consensus log.
//
// # Protocol
//
// Any node can coordinate NextRange(name, n):
//
//  1. it asks every node (itself included) for its value and waits for R
//     answers, keeping the highest: base (read-repair, the max wins);
//  2. it sends the conditional write Set(name, base, base+n) to every node
//     and waits for W acceptances;
//  3. with W acceptances it returns [base, base+n); if so many nodes refuse
//     or fail that W can no longer be reached, it backs off and starts over
//     with fresh reads, until the caller's deadline.
//
// R+W > N makes every read quorum meet the write quorum of every completed
// allocation, so a later read sees it. That alone is not enough when two
// allocations run at the same time: the write quorums must also meet (W >
// N/2), and the replicas must refuse the second of two writes that were
// based on the same read. Config.Validate insists on both unless Unsafe is
// set; the defaults are majorities.
//
// # Write rules
//
// SetIfUnchanged (the default) accepts Set(name, base, value) when the
// replica's current value is at most base: nobody has allocated past what
// the coordinator read. Of two coordinators that read the same base, each
// replica accepts at most one, so at most one wins a majority.
//
// SetIfGreater, the original design's rule, accepts when current < value.
// It lets two coordinators that read the same base, and ask for ranges of
// different sizes, both win. With N=3, W=2 and all nodes at 10: A asks for
// n=5 (writes 15), B for n=2 (writes 12).
//
//	n1: A's 15 arrives first, accepted (10 < 15); B's 12 refused (15 >= 12)
//	n2: B's 12 arrives first, accepted (10 < 12); A's 15 accepted (12 < 15)
//	n3: B's 12 arrives first, accepted;           A's 15 accepted
//
// A has three acceptances and returns [10,15); B has two (n2, n3) and
// returns [10,12). IDs 10 and 11 are handed out twice. Under
// SetIfUnchanged, n2 and n3 would refuse A's write (12 > 10), n1 would
// refuse B's, and only B would return a range. The lab's planted-bug
// scenario shows the duplicate IDs.
//
// # Structure
//
// The protocol itself (Replica, Coordinator) is a synchronous state machine
// with no goroutines, clocks, contexts or I/O: its inputs are requests,
// peer replies and peer failures, its outputs messages to send, writes to
// make durable, retries to schedule and replies to give. Node is the gRPC
// shell around it; the lab's deterministic simulator drives the same code.
//
// Storage keeps a node's values durable through the FS interface (one state
// file replaced atomically, fsynced with its directory, checksummed), with
// group commit so one fsync serves many concurrent writes. A node
// acknowledges a write only once it is durable.
//
// Client is the buffered client: it fetches ranges round-robin over the
// nodes and hands out their IDs one by one, trading gaps (IDs lost with a
// client's buffer) for speed.
package rr_seq
