// Package script reads and writes scenario scripts: a scenario as a text
// file with an explicit timeline. It owns the format, its parser (Parse)
// and its printer (Script.Format), and checks everything that can be
// checked without running: names, ranges, fault names and targets, and
// the timeline. It does not run anything, and knows no scenario type:
// package scenarios converts a Script into its Scenario.
//
// A script is one command per line; a line that starts with # is a
// comment, and blank lines are ignored. Nothing spans lines, and
// nothing is clever:
//
//	# A node cut off, a crash while it is, then a random minute.
//	name Partition/isolate-then-crash-n3
//	description n1 is cut off; n2 crashes while it is; then faults at random
//	systems rr_seq raft_seq
//	cluster nodes=3 persist=disk jitter=1ms
//	workload range-clients=4 id-clients=2 rate=20 names=orders,users
//	time-limit 40s
//	recovery 8s
//	promises unique linearizable monotonic live
//	modes sim grpc
//
//	at 5s start partition-isolate n1
//	at 9s start crash-one n2 for=3s
//	at 12s stop partition-isolate
//	random 14s..32s faults=partition-halves,pause interval=3s for=2s
//
// The header commands each come at most once, in any order; a setting
// left out takes the catalogue's default:
//
//	name GROUP/WHAT               one word (required)
//	description TEXT              the rest of the line
//	systems SYSTEM...             rr_seq raft_seq flake_seq (default: all)
//	cluster KEY=VALUE|FLAG...     nodes=1..9 (3), r=N w=N (a majority),
//	                              unsafe (allow r and w that do not meet),
//	                              write=set-if-unchanged|set-if-greater,
//	                              persist=memory|disk, read-first,
//	                              no-bootstrap-on-restart,
//	                              latency=D (1ms), jitter=D (0)
//	plant BUG...                  planted bugs: ack-before-sync late-join
//	                              rejoin-empty shun-reset trust-cache
//	                              (rr_seq's), flake-clock-rollback (flake_seq's)
//	workload KEY=VALUE...         range-clients=N id-clients=N (5 range
//	                              clients if both are left out), sizes=1,3,10,
//	                              id-range-size=N (8), rate=R (10 a second,
//	                              up to 10000), op-timeout=D (1s),
//	                              names=A,B (default)
//	time-limit D                  the run's length, up to 1h (30s)
//	recovery D                    its last part, every fault healed (a fifth);
//	                              0s: faults may last to the end (a shrunk run)
//	promises PROPERTY...          unique linearizable monotonic node-order
//	                              gap-free live
//	expect violates=P,Q|lost-buffers|rare...
//	modes MODE...                 grpc sim process (default: all that can)
//	seed N                        the run's seed when none is given (default:
//	                              one fixed by the name)
//
// The timeline comes in time order: a step never goes back in time, and
// every fault is over by the recovery (time-limit minus recovery).
// Times are Go durations (1.5s, 200ms).
//
//	at T start FAULT [TARGET...] [for=D] [seed=N]
//	at T stop FAULT [TARGET...]
//	at T heal-all
//	random A..B faults=F,G... [interval=D] [for=D] [in-turn]
//
// A start turns on a registered nemesis fault (nemesis.Lookup), on the
// targets it names (nemesis.Targeted says what each fault takes: the
// node to cut off, the nodes to crash, the two ends of a reset, the ID
// client k1..kN to crash...) or, without targets, on targets drawn from
// the run's seed, or from seed=N. It stays on for D, or until a stop of
// the same fault (which names its targets when two are on), a heal-all,
// or the end of the faults. Starting a fault on the same targets twice,
// or stopping one that is not on, is an error. A random step is the
// catalogue's schedule over the window: after each quiet interval (3s,
// plus up to half of it again), a fault drawn from the seed, or the next
// in turn, stays on for D (3s); none starts at or after B.
//
// A workload can also be spelt out, one operation a line, as a shrunk
// simulator run has it (sim.OpSpec): range clients c1..cN first, then ID
// clients k1..kN, in time order. With any op line, the clients run
// exactly these operations and no others.
//
//	op T cN nM SEQUENCE           a range client's NextRange on node nM
//	op T kN                       an ID client's next ID
//
// Parse refuses a script with anything wrong in it, whole, and says
// everything it found, each as FILE:LINE: message. Format prints a
// Script back in a fixed order, without comments, and Parse reads it
// back to the same Script.
package script
