// Package scenarios is the lab's catalogue of scenarios and the runner that
// plays them. A Scenario is data: the cluster (nodes, quorums, write rule,
// persistence), the workload (clients, range sizes, rate), the fault
// schedule, the properties the configuration promises, and the verdict we
// expect. Run starts the cluster on a simulated network inside a
// testing/synctest bubble (virtual time), drives concurrent clients,
// injects the faults, writes the history as it goes, checks it, and prints
// one block saying what it found.
//
// Planted bugs are scenarios too: their expected verdict is a violation,
// and a run that does not find it fails. That is how the lab proves it can
// see.
//
// Every scenario also runs in the deterministic simulator (package
// simnet/sim): SimConfig turns it into a plan, Simulate and RunSim play
// it, Hunt sweeps seeds, Shrink reduces a failing plan, and ReplaySim
// replays a run bit for bit.
//
// A scenario can also be a script, a text file of one command a line
// (package scenarios/script documents the format): the cluster, the
// workload, the promises and the expected verdict, and a timeline of
// faults started and stopped at exact times on the nodes they name
// ("at 5s start partition-isolate n1"), random windows drawn from the
// seed, and, in a shrunk run, each client operation. ParseScript and
// LoadScript turn a script into its Scenario (Timeline, Windows, Ops),
// ToScript prints any scenario as one that runs the same, bit for bit in
// the simulator, and the scripts in testdata/*.scn join the catalogue.
// A run of a script keeps it in its directory (ScriptFile), so that
// replay and shrink need no file, and Shrink writes the shrunk run as a
// script (ShrunkFile) that replays it bit for bit.
//
// Everything random in a run (workload timing and targets, fault times and
// targets, network jitter, backoff) derives from one seed, printed in the
// block with the command that replays the run. run.json also records the
// build (commit, uncommitted changes, Go version), so that a replay can
// say when it runs other code.
//
// A block reports each check in the checker's words (held, violated, not
// promised, n/a, unknown) and adds caught for the violation a planted bug
// is expected to cause. Options.Context ends a run or a hunt early: the
// run checks what it recorded and marks itself interrupted, the hunt
// reports what the seeds it ran found.
package scenarios
