// Package flakesim puts flake_seq in the lab's simulator: a sim.System
// whose node processes drive flake_seq's pure Core directly, read their
// own clock (sim.Host.Clock: virtual time plus what clock faults did to
// it), and keep their high-water mark on the simulated disk, written at
// once and durable after SyncDelay (a power loss keeps only the durable
// one). Config is flake_seq's side of a run's plan; the simulator's side
// is sim.Config.
//
// Flake nodes coordinate with no one: a call is answered by the node it
// reaches, at once, after waiting up to Config.MaxWait for the node's
// clock to move on or its renewal to be durable, or with a fail.
package flakesim
