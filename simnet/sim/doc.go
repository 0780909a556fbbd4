// Package sim is the lab's deterministic mode: a message-level
// discrete-event simulator that drives rr_seq's synchronous core (the
// replicas and coordinators) and range clients directly, on one
// goroutine, in virtual time.
//
// A run is a Config: the cluster, the workload, a seed and a fault plan
// of registered nemesis faults at fixed virtual times. One queue orders
// every event (deliveries, timers, client invocations, faults) by time,
// ties broken by a seeded draw. Nothing reads the wall clock, starts a
// goroutine, iterates a map where order matters, or draws randomness from
// anything but the seed, so the same Config gives the same run bit for
// bit: Result.Hash, a SHA-256 over every event and the history, proves
// it.
//
// The network has the fault model of package simnet at the level of
// messages: partitions of any shape, one-way cuts, delay and jitter per
// host, loss, duplication, resets; nodes crash (memory lost, the disk
// keeping what was written, or only what was fsynced on power loss),
// restart from their disk, and pause. The history is the lab's format,
// checked by package checker like any other.
package sim
