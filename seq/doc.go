// Package seq owns the vocabulary shared by every sequencer in seqlab: the
// ID type, the half-open Range of IDs a cluster allocates at once, the
// Sequencer interface that clients implement, and the errors callers branch
// on.
//
// It also holds the two local, non-distributed sequencers that every
// benchmark is measured against:
//
//   - Buffered, in the style of the original design: a goroutine fills a
//     buffered channel of IDs from an in-process counter, and Next receives
//     from that channel. It is the baseline a distributed sequencer with the
//     same buffer size is compared with.
//   - Atomic, a bare atomic counter: the floor no sequencer can beat.
//
// Package seq does not talk to the network; see package rr_seq for the
// distributed read-repair sequencer.
package seq
