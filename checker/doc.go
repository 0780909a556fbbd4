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
//   - node-order (next-range): each node that issues IDs (the node an ok
//     completion names) issues them in real-time order: a range that
//     completed at a node before another was invoked there holds only
//     IDs below the other's. It is what Flake IDs promise in place of a
//     global order; ranges that name no node are left out.
//   - gap-free: every ID between 1 and the highest handed out went to
//     someone. The check finds the gaps and explains what it can: IDs in
//     a client library's buffer (fetched, never handed out), and IDs that
//     next-range operations of unknown outcome, invoked before the first
//     range above the gap completed, may have taken. It fails on what is
//     left unexplained. With Options.Sparse, for IDs sparse by design
//     (Flake IDs), it does not look: n/a, with SparseReason.
//   - stats: outcomes per operation, latency percentiles, and availability
//     in each window between faults.
//
// Each check gives a Result: valid (true, false or unknown), a one-line
// reason, and the indices of the offending events. The verdict composes
// the checks the system promises (Options.Promises): a sequencer that
// allows gaps promises unique, linearizable and monotonic but not
// gap-free. A check that times out is unknown, never valid. For people,
// each check and verdict is one Word: held, violated, not promised, n/a
// (the history has nothing the check reads) or unknown; the lab adds
// caught for a planted bug's expected violation.
//
// CheckDir checks a history file or run directory and writes nothing;
// WriteResults writes results.json to a new file. CheckDir, like
// CheckReader, streams the history through the checks: it holds the
// operations in a compact form (about a hundred bytes each, no strings,
// no JSON) and the fault events, never the events themselves, so ten
// million events check in well under two gigabytes. With
// Options.VisualizeDir, a non-linearizable sequence also gets porcupine's
// HTML view with the fault windows drawn on it: of the whole sequence,
// or of its first violation and the operations nearest it when porcupine
// cannot take the whole. The history format is in package history.
package checker
