// Package history reads and writes the lab's histories: JSON Lines, one
// event per line, in the order events happened.
//
//	{"index":0,"time":0,"process":0,"type":"invoke","f":"next-range","value":{"name":"default","n":10}}
//	{"index":1,"time":1200000,"process":0,"type":"ok","f":"next-range","value":{"name":"default","n":10,"from":1,"to":11},"node":"n2"}
//	{"index":2,"time":1300000,"process":"nemesis","type":"info","f":"start-partition","value":{"groups":[["n1"],["n2","n3"]]}}
//
// index counts lines from 0 (a reader takes any increasing indices, so
// the lines after a corrupt one still count); time is nanoseconds since
// the run began and never decreases. process is a client number, or "nemesis" for faults.
// A client operation is an invoke followed by exactly one completion: ok
// (it happened, with this result), fail (it certainly did not) or info (it
// may or may not have). A process has one operation in flight at most and
// never invokes again after an info. f is next-range (value name, n, and
// on ok from and to, half open, to-from == n), next-id (value name, and on
// ok id), or, for the nemesis, the fault's name. node and error are
// optional; unknown fields are kept and written back.
//
// Real-time order is line order: an operation precedes another when its
// completion line comes before the other's invoke line. time may tie.
//
// A Recorder writes a history as it goes, a line per event, so a run that
// dies leaves a readable file. Read parses one, reporting each malformed
// line with its number and what is wrong, and keeps the others; a Scanner
// does the same an event at a time, for a reader that keeps only what it
// needs of each. They read lines in the exact shape a Recorder writes
// (and Write, too) by hand, several times faster than encoding/json,
// which takes every other line; the two give the same events and
// problems.
package history
