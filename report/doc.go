// Package report draws a run directory as one HTML page, report.html, that
// a person can read at a glance: the verdict of every check with its
// reason and evidence, the latency, quantile and throughput plots with a
// band for each fault, the availability between fault events, and a
// timeline of the operations with the violating ones marked.
//
// The page is self-contained (inline SVG and CSS, no script, nothing
// fetched), and it is derived output: Write reads the recording
// (run.json, history.jsonl, results.json, summary.txt) and writes only
// report.html, and Render writes nothing at all. A directory that holds
// only a history gets a report too: without results.json the history is
// checked as seqlab check checks it. The same recording gives the same
// bytes; what differs between two runs of one seed (the start, the wall
// time, the run directory) sits in one marked section.
//
// A 1-hour run's history has hundreds of thousands of operations, so the
// report holds none of its events: it reads the history once as it
// streams past, keeping each operation in compact form and the fault
// events whole, and reads it again only for the few lines it quotes or
// draws in full (the evidence and the capped timeline's operations).
//
// The plots are gonum's, as SVG; the fault bands are drawn beneath each
// plot's data in its own coordinates, one per fault kind of each fault
// window, so that a composed fault a+b shades the strips of both.
// Long runs are downsampled and long timelines capped, and the page says
// so.
//
// porcupine writes its view of a non-linearizable sequence with the
// title "Porcupine"; View and TitleViews give it one that names the run.
// The package does not run anything, check beyond what a history lacks,
// or serve pages: seqlab report and seqlab serve do.
package report
