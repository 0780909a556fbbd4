// Package raftsim puts raft_seq in the lab's simulator: a sim.System whose
// node processes drive raft_seq's synchronous core (raft_seq.Core)
// directly, with the gRPC node's disk and transport modelled at the level
// of the simulator's hosts and messages. All protocol logic stays in the
// core; this package only carries its outputs out. Config is raft_seq's
// side of a run's plan; the simulator's side is sim.Config.
//
// What each part of the node becomes here:
//
//   - Time is the host's virtual time, and the core's Output.Wake one host
//     timer, replaced by every output. The core's timers left unset are
//     derived from the clients' timeout (see Config).
//   - Elections come only from the core's seeded timers. Each start of a
//     node draws its core's Seed and Incarnation from the run's source
//     (sim.Host.Rand), so a restart campaigns on other timeouts than the
//     process before it, and a run is a function of sim.Config.Seed.
//   - A raft message is one sim.Request, encoded as on the node's stream
//     and labelled by its type (raft-app, raft-vote, ...), its term and its
//     index. The peer takes it at once; a message that fails (a cut, a
//     crash, a reset) tells raft the peer is unreachable, and a snapshot's
//     fate is reported with SnapshotSent. The node's stream, like the
//     client's gRPC call, runs over TCP and delivers a message once, so
//     the network's duplicates (sim.Config.Dup) stop at the receiver: a
//     second copy of a client's call or of a forwarded proposal would
//     allocate a second range, a gap no real network makes.
//   - With Config.Persist the log, hard state and snapshots are on the
//     host's disk, written at once (sim.Host.Written: a kill keeps them)
//     and fsynced in groups after Config.SyncDelay (sim.Host.Durable: a
//     power loss keeps only that), and the core hears a write is durable
//     only after its fsync, so the messages that depend on it (votes,
//     acknowledgements) wait for it. Without Persist, state is in memory,
//     and a restarted node has none: as the gRPC node with no state and
//     Bootstrap, it asks every peer whether it is fresh, stays out
//     refusing clients if one holds state (it cannot rejoin safely), and
//     starts a new cluster only if all are fresh (every node lost its
//     state: the IDs start over, as they would for real).
//   - A client's NextRange is a core request: the leader proposes it, a
//     follower forwards it to the leader (or with Config.Redirect refuses
//     it). A reply is ok with its range; fail when its error says nothing
//     was allocated (Definite: not leader, no leader, busy, dropped,
//     invalid); info otherwise (ErrUnknown: the entry may commit later).
//
// Planted bugs are configurations: Config.UnsafeNoSync (acknowledge what
// was never fsynced; power-loss-all or lose-unsynced catch it) and
// Config.RejoinEmpty (a node that lost its state rejoins from the
// bootstrap state; crash-majority without Persist catches it).
package raftsim
