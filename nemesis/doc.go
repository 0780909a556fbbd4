// Package nemesis holds faults as values. A Fault has a name, a Start that
// breaks something in a Cluster and returns what it did (its targets), a
// Stop that undoes it and returns what it undid, and a String that says
// exactly what it does. Faults compose: All starts several at once (Lookup
// builds one from registered names joined with "+", such as
// "partition-isolate+crash-one"), and a Schedule starts faults in turn, at
// seeded random times and on seeded random targets, and ends with a
// heal-and-recover phase in which every fault is stopped while clients
// keep working.
//
// A fault draws its targets from the seeded source unless they are spelt
// out: Targeted("partition-isolate", []string{"n1"}) cuts n1 off and
// draws nothing, for a timeline that says which node (see targets.go for
// what each fault takes, and CheckTargets to check them against a
// cluster before a run).
//
// The package does not record anything itself: whoever runs a Schedule
// gets every start and stop as an Event, to write into the history as a
// "process":"nemesis" operation with its targets.
//
// Faults compose because each undoes only what it did: the network counts
// cuts per directed link and holds host delays one setting per fault, so
// a partition's Stop heals the links its Start cut and no others (see
// Network). Heal, which heals everything, is for the end of a run.
//
// Clock faults (clock-offset, clock-step-back, clock-strobe, clock-drift)
// skew one node's clock, for systems that read time, such as flake_seq's
// timestamps. They act through Clocks, an interface a Cluster implements
// only if its nodes read a clock it controls: a node's clock is then the
// true time plus the Shift of each Skew it holds (Reading, a pure
// function, so the simulator replays clocks bit for bit). Skews are held
// one per fault, so a clock fault's Stop removes its own skew and leaves
// another's. The simulator implements Clocks with virtual time, and
// SkewedClock gives in-process nodes that take a clock function theirs.
// Real processes read the kernel's clock, which no fault here moves: on
// such a cluster a clock fault's Start fails with ErrNoClocks.
//
// Adding a fault is writing one small type with Name, Start, Stop and
// String, in a file of its own as each fault of the catalogue has, one
// line in the catalogue (Registry) so scenarios and the command line can
// name it, and its case in TestStopSaysWhatItUndid. The README's "Adding
// a fault" walks through it, and a test applies its snippets and runs
// its commands.
package nemesis
