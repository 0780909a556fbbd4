// Package flake_seq is the design document's Flake model: every node hands
// out IDs on its own, with no coordination, each ID a timestamp from the
// node's own clock, the node's ID and a counter, packed into a uint64
// (see TimeBits for the layout). NextRange(name, n) gives n consecutive
// IDs of one millisecond. IDs are unique across nodes by their node IDs,
// and within a node because it never uses a timestamp twice: its IDs
// only increase, across clock jumps and restarts.
//
// That is the whole difficulty of the model: a node's IDs are only as
// good as its clock, and clocks jump back, strobe and drift. Core, a pure
// state machine in the style of etcd raft's RawNode, holds the rules:
//
//   - A clock that reads behind the last timestamp used does not move the
//     node back: it keeps the last timestamp while that millisecond's
//     counters last, then refuses (ErrClockBehind, with the clock reading
//     it waits for) until the clock passes it. Refusing, not waiting, is
//     the core's answer; the shells wait a little (MaxWait) and then
//     refuse the call as unavailable.
//   - A range that does not fit in this millisecond's counters waits for
//     the next millisecond of the clock; one over PerMilli is refused.
//   - Across restarts the node keeps a high-water mark on disk: it
//     reserves timestamps ahead (Reserve, default 1s past the clock) with
//     one fsync, uses only timestamps below the durable mark, renews the
//     mark before it runs out (RenewAhead), and starts a restart above
//     it. A restart whose clock is behind thus starts above everything it
//     issued, and waits at most Reserve for its clock.
//
// The node ID is configuration, 0..MaxNodeID: two nodes with one ID would
// hand out the same IDs, and nothing here can tell.
//
// Planted.ClockRollback is the planted bug flake-clock-rollback: nodes keep
// no mark, so a node that restarts with its clock behind its last
// timestamp hands out its old IDs again. The lab catches it with a clock
// stepped back across a crash (see flakesim's tests).
//
// Node is the gRPC shell: it serves rrseq.v1.Sequencer's NextRange (from
// rr_seq/pb), keeps its mark in its data dir through fsys.FS, and reads its
// clock through NodeConfig.Clock, which is how the lab's gRPC mode skews
// it. Package flakesim puts the core in the simulator.
package flake_seq
