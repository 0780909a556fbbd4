// Package sim is the lab's deterministic mode: a message-level
// discrete-event simulator that drives a system's synchronous core and
// the clients' logic directly, on one goroutine, in virtual time.
//
// The simulator knows no system. A System starts node processes (Proc)
// on simulated hosts (Host): a process takes clients' calls and peers'
// requests, and uses its host for timers, messages to peers (Request),
// its disk (what it wrote, what it synced) and answers. rr_seq's adapter
// is rr_seq/rrsim; a user's system plugs in the same way.
//
// A run is a Config and a System: the cluster's size and network, the
// workload, a seed and a fault plan of registered nemesis faults at fixed
// virtual times. One queue orders
// every event (deliveries, timers, client invocations, faults) by time;
// events due at the same time are ordered by a seeded hash of the event.
// Nothing reads the wall clock, starts a goroutine, iterates a map where
// order matters, or draws randomness from anything but the seed, so the
// same Config gives the same run bit for bit: Result.Hash, a SHA-256 over
// every event and the history, proves it.
//
// Clients come in two kinds, as in the lab's gRPC mode: range clients
// call NextRange on a node, and ID clients hand out IDs one by one from a
// buffer (seq.Buffer, the logic of rr_seq.Client) that they fill with
// ranges fetched from one node while it answers. The workload is drawn from
// per-client sources at a rate, or spelt out operation by operation
// (Config.Ops); a run reports its workload in that form (Result.Workload),
// and running it again gives the same run, which is what lets a failing
// run be shrunk an operation at a time.
//
// The network has the fault model of package simnet at the level of
// messages: partitions of any shape, one-way cuts, delay and jitter per
// host, loss, duplication, resets; nodes crash (memory lost, the disk
// keeping what was written, or only what was fsynced on power loss),
// restart from their disk, and pause; ID clients crash and lose their
// buffers. Unlike TCP, messages of one pair may overtake each other under
// jitter. The history is the lab's format, checked by package checker
// like any other.
package sim
