// Package rr_seq is a leaderless read-repair quorum sequencer: N nodes, each
// keeping per sequence name the lowest ID it has not seen allocated, hand
// out ranges of IDs with no leader and no consensus log.
//
// # Protocol
//
// Any node can coordinate NextRange(name, n):
//
//  1. it asks every node (itself included) for its value and waits for R
//     answers, keeping the highest: base (read-repair, the max wins; most
//     allocations skip this step, see below);
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
// # One round, and coalescing
//
// The read round only finds a base. Set-if-unchanged does not need it to
// be fresh, so a coordinator skips the read when it has a value it can
// use: the highest it has seen for the name (its own last winning write,
// an earlier read, or the current value a refusal carries), or a caller's
// hint (the end of its last range) lying above that by at most MaxRange.
// It sends the conditional write straight away. A refusal returns the
// replica's current value; the coordinator retries write-only once from
// the highest of those, and after that backs off and reads.
//
// Why any base is safe: take two winning writes, (b1 -> v1) and (b2 ->
// v2). Each was accepted by W replicas, and two majorities share a
// replica. There, say the first was accepted first: the replica's value
// became v1, and values never go down (amnesia aside, see below), so the
// second was accepted with v1 <= current <= b2. The ranges [b1, v1) and
// [b2, v2) are disjoint, however b2 was chosen. A stale guess is below
// some replica's current value: the write is refused and costs a retry. A
// guess above every value wins and leaves the IDs between as a gap. Never
// a duplicate. That is why a hint is clamped: not for safety, but so that
// a hostile one burns no more IDs than a request of MaxRange IDs could.
//
// Concurrent requests for one name at one coordinator coalesce into a
// batch: a request joins the batch that has not sent its write yet, if
// the sum stays within MaxRange, and the batch writes once for the sum.
// Members get consecutive sub-ranges in join order. Each member is
// linearized at the batch's winning write, which falls inside its call:
// it joined before the write was sent and hears back after the write won.
// A request that comes after the write was sent starts the next batch,
// which waits for the writing one (a coordinator writes one batch of a
// name at a time, so it never competes with itself) and then writes from
// its result, again without a read. A member that gives up before the
// write leaves the batch; after it, its sub-range is a gap.
//
// The lab plants both ways to get this wrong (Planted): counting
// refusals of a cached write as acceptances, and letting a request join
// after the write was sent. Both are caught on every seed.
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
// # Amnesia and recovery
//
// The argument above assumes replicas never forget what they accepted. A
// node in memory forgets everything when it restarts, and so does one
// whose data dir is wiped. A node that cannot show it holds its
// acknowledged state recovers first (Recovery): it answers no read and
// takes no write until it has merged the states of N-W+1 initialised
// peers, read in one round after it has waited out RecoveryWait. Any W
// nodes that accepted a completed allocation, less itself, meet any N-W+1
// of the others. The wait is what makes that sound: coordinators count no
// acceptance that arrives more than Limits.RoundLife after its write
// round began, so once a restarted node has waited that long (plus a
// margin for clock rates), no round that counted an acceptance it gave
// before it lost its state can still complete. Without the wait, N=5 and
// W=3 allow this: P1's write C is accepted by P1 and X; X restarts empty
// and recovers from P2, P3, P4, all behind; P2 then accepts C, which
// completes; B reads X, P3, P4 and hands C's IDs out again.
// TestRecoveryOutlivesStaleAcceptances plays it.
//
// Bootstrap starts a new, empty cluster, but only when every peer answers
// and none holds a value; a node whose peers hold state always recovers
// from them. A whole cluster that lost its state cannot tell itself from a
// new one: with Bootstrap it starts over, without it stays unavailable.
//
// # Structure
//
// The protocol itself (Replica, Coordinator, Recovery) is a synchronous
// state machine with no goroutines, clocks, contexts or I/O: its inputs
// are requests, peer replies, peer failures and the time, its outputs
// messages to send, writes to make durable, timers to set and replies to
// give. Node is the gRPC shell around it, serving the client API and the
// peer API on separate listeners (the peer API only to peers with the
// cluster's secret or a certificate of its CA); the lab's deterministic
// simulator drives the same code.
//
// Storage keeps a node's values durable through the FS interface: an
// append-only log of checksummed frames with group commit, so a write
// costs O(1) whatever the number of names, compacted into a snapshot from
// time to time, beside an identity file (cluster and node) and a lock. A
// node acknowledges a write only once it is durable.
//
// Client is the buffered client: it fetches ranges from one node while
// that node answers (the next after a failure), with the end of its last
// range as a hint, and hands out their IDs one by one, trading gaps (IDs
// lost with a client's buffer) for speed.
package rr_seq
