// Package rrsim puts rr_seq in the lab's simulator: a sim.System whose
// node processes drive rr_seq's synchronous core (Replica, Coordinator,
// Recovery) directly, with the same timers the gRPC node uses (peer
// timeout, hedge, backoff, group-commit fsync), and its state on the
// simulated disk. Config is rr_seq's side of a run's plan; the
// simulator's side is sim.Config.
package rrsim
