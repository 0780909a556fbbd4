// Package checker reads a history of a sequencer and says whether it kept
// its promises, naming the operations that break them.
//
// For each sequence name, on its own:
//
//   - unique: no ID is handed out twice: by two ok next-range results, by
//     two ok next-id results, or by a next-id and a range handed out whole
//     (not fetched into a client library's buffer).
//   - linearizable (next-range): the ranges fit one order, consistent with
//     real time, in which each starts at or after the end of those before
//     it; a fail did nothing and an info may have happened at any point
//     after its invoke. Two checkers decide it: a direct one in
//     O(n log n) (the ok ranges are disjoint, and a range that completed
//     before another was invoked ends at or below its start), and
//     porcupine with a model of the sequencer, on histories small enough
//     for its search. They must agree; the tests hold them to it. The
//     direct checker decides alone when porcupine runs out of time, which
//     it does with a few dozen operations in flight at once.
//   - monotonic (next-id): each process's IDs strictly increase.
//   - gaps: IDs between 1 and the highest handed out that nobody got,
//     explained by a client library's buffer (fetched, never handed out)
//     or by next-range operations of unknown outcome invoked before the
//     first range above the gap completed; what is left is unexplained.
//   - stats: outcomes per operation, latency percentiles, and availability
//     in each window between faults.
//
// Each check gives a Result: valid (true, false or unknown), a one-line
// reason, and the indices of the offending events. The verdict composes
// the checks the system promises (Options.Promises): a sequencer that
// allows gaps promises unique, linearizable and monotonic but not
// gap-free. A check that times out is unknown, never valid.
//
// CheckDir checks a history file or run directory and writes
// results.json, plus porcupine's HTML view of a non-linearizable
// sequence with the fault windows drawn on it: of the whole sequence, or
// of its first violation and the operations nearest it when porcupine
// cannot take the whole. Beside a bare history file STEM.jsonl they are
// STEM.results.json and STEM.linearizable-SEQ.html. The history format
// is in package history.
package checker
