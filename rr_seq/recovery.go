package rr_seq

import (
	"fmt"
	"slices"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/seq"
)

// This file is the second half of the core: how a node that cannot show it
// holds its last acknowledged state gets it back before it acts as a
// replica again. Like the coordinator it is a synchronous state machine:
// the driver feeds it time, peer answers and peer failures, and carries
// out what it returns.

// MsgState asks a peer for its whole state: whether it is initialised, its
// cluster, and its values. Recovering nodes send it.
const MsgState MsgKind = 3

// PeerState is a peer's answer to MsgState.
type PeerState struct {
	// Initialised is true when the peer holds its acknowledged state: it
	// was bootstrapped or has recovered, and has not lost its state since.
	Initialised bool
	// Cluster is the peer's cluster ID ("" when not initialised).
	Cluster string
	// Values is the peer's state when it is initialised.
	Values map[string]uint64
}

// RecoveryWait is how long a node that lost its state waits, from its
// start, before it reads its peers: the coordinators' RoundLife, plus 2%
// and 10ms for clocks that run at slightly different rates.
func RecoveryWait(roundLife time.Duration) time.Duration {
	return roundLife + roundLife/50 + 10*time.Millisecond
}

// RecoveryConfig configures a Recovery.
type RecoveryConfig struct {
	// Self and Peers are as for the coordinator: Peers lists every node,
	// Self included.
	Self  string
	Peers []string
	// W is the cluster's write quorum. The node needs the states of
	// N-W+1 initialised peers: any W nodes that accepted a completed
	// allocation, less itself, meet any N-W+1 of the others.
	W int
	// Cluster is the cluster ID. Peers of another cluster are not counted.
	Cluster string
	// Bootstrap allows the node to start a new cluster, empty, when every
	// peer answers and none holds any value. A node whose peers hold
	// state always recovers from them, whatever this says.
	Bootstrap bool
	// Wait is how long to wait, from the start, before the first read of
	// the peers: RecoveryWait of the coordinators' RoundLife. 0 is only
	// right when no earlier process of this node can have acknowledged
	// anything (the first start of a brand-new node).
	Wait time.Duration
}

// Validate returns an error unless c is usable.
func (c RecoveryConfig) Validate() error {
	switch {
	case !slices.Contains(c.Peers, c.Self):
		return errors.Wrapf(seq.ErrInvalidArgument, "recovery: self %q is not among the peers", c.Self)
	case c.W < 1 || c.W > len(c.Peers):
		return errors.Wrapf(seq.ErrInvalidArgument, "recovery: W=%d outside 1..%d", c.W, len(c.Peers))
	case c.Cluster == "":
		return errors.Wrap(seq.ErrInvalidArgument, "recovery: empty cluster ID")
	case c.Wait < 0:
		return errors.Wrap(seq.ErrInvalidArgument, "recovery: negative wait")
	}
	return nil
}

// Need returns the number of initialised peers whose states a recovering
// node must merge: N-W+1.
func (c RecoveryConfig) Need() int { return len(c.Peers) - c.W + 1 }

// Recovered is the end of a recovery: the state to start from.
type Recovered struct {
	Values map[string]uint64
	// Bootstrapped is true when the node started a new cluster.
	Bootstrapped bool
	// From names the peers whose states were merged, in order.
	From []string
}

// RecoveryOutput is what the driver must carry out after a step: send
// Msgs (each tagged with its Round), call Poll after After (when After >
// 0), and once Done is set, make its values durable and start serving as
// a replica.
type RecoveryOutput struct {
	Msgs  []Msg
	After time.Duration
	Done  *Recovered
	// Notes are things worth a log line: a peer of another cluster.
	Notes []string
}

// Recovery is the start-up of a node that cannot show that it holds its
// last acknowledged state: a node in memory after any restart, a node
// whose data dir is new or was wiped, or one started with --recover. It
// neither answers reads nor accepts writes until it is done.
//
// It first waits out RecoveryWait, so that no coordinator still counts an
// acceptance this node gave before it lost its state (coordinators drop
// acceptances older than RoundLife). Then it asks every peer for its
// state, round after round, until it has the states of N-W+1 initialised
// peers of its cluster from one round; it merges them (the max of each
// name) and is done. With Bootstrap, a round in which every peer answers
// and none holds any value starts a new, empty cluster instead.
type Recovery struct {
	cfg     RecoveryConfig
	start   time.Duration
	round   uint32
	polling bool
	answers map[string]PeerState
	failed  int
	attempt int
	done    bool
	status  string
}

// NewRecovery starts a recovery at time now.
func NewRecovery(cfg RecoveryConfig, now time.Duration) (*Recovery, RecoveryOutput, error) {
	if err := cfg.Validate(); err != nil {
		return nil, RecoveryOutput{}, err
	}
	r := &Recovery{cfg: cfg, start: now}
	if len(cfg.Peers) == 1 {
		if cfg.Bootstrap {
			// Alone, nobody else can have acknowledged anything.
			r.done = true
			r.status = "bootstrapped alone"
			return r, RecoveryOutput{Done: &Recovered{Values: map[string]uint64{}, Bootstrapped: true}}, nil
		}
		r.status = "a single node that lost its state has no peer to recover from; restart it with bootstrap to start over"
		return r, RecoveryOutput{}, nil
	}
	if cfg.Wait > 0 {
		r.status = fmt.Sprintf("waiting %v for operations of before the restart to end", cfg.Wait)
		return r, RecoveryOutput{After: cfg.Wait}, nil
	}
	return r, r.Poll(now), nil
}

// Done reports whether the recovery has finished.
func (r *Recovery) Done() bool { return r.done }

// Status says in a few words where the recovery stands, for health and
// logs.
func (r *Recovery) Status() string { return r.status }

// Poll starts a round of state requests to every peer. A call before the
// wait is over, during a round, or after the end does nothing.
func (r *Recovery) Poll(now time.Duration) RecoveryOutput {
	if r.done || r.polling {
		return RecoveryOutput{}
	}
	if left := r.start + r.cfg.Wait - now; left > 0 {
		return RecoveryOutput{After: left}
	}
	r.round++
	r.polling = true
	r.answers = map[string]PeerState{}
	r.failed = 0
	var out RecoveryOutput
	for _, p := range r.cfg.Peers {
		if p != r.cfg.Self {
			out.Msgs = append(out.Msgs, Msg{Round: r.round, To: p, Kind: MsgState})
		}
	}
	return out
}

// StateReply feeds a peer's answer to MsgState.
func (r *Recovery) StateReply(now time.Duration, round uint32, from string, st PeerState) RecoveryOutput {
	if !r.current(round, from) {
		return RecoveryOutput{}
	}
	var out RecoveryOutput
	if st.Initialised && st.Cluster != r.cfg.Cluster {
		out.Notes = append(out.Notes, fmt.Sprintf("peer %s is of cluster %q, not %q: not counted", from, st.Cluster, r.cfg.Cluster))
		r.failed++
	} else {
		r.answers[from] = st
	}
	return r.decide(now, out)
}

// PeerFailed reports that a MsgState of the round got no answer.
func (r *Recovery) PeerFailed(now time.Duration, round uint32, from string) RecoveryOutput {
	if !r.current(round, from) {
		return RecoveryOutput{}
	}
	r.failed++
	return r.decide(now, RecoveryOutput{})
}

// current reports whether an answer is for the running round and the
// first from its peer.
func (r *Recovery) current(round uint32, from string) bool {
	if r.done || !r.polling || round != r.round || from == r.cfg.Self || !slices.Contains(r.cfg.Peers, from) {
		return false
	}
	_, seen := r.answers[from]
	return !seen
}

func (r *Recovery) decide(now time.Duration, out RecoveryOutput) RecoveryOutput {
	var from []string
	empty := true
	for _, p := range r.cfg.Peers {
		st, ok := r.answers[p]
		if !ok {
			continue
		}
		if st.Initialised {
			from = append(from, p)
		}
		if st.Initialised && len(st.Values) > 0 {
			empty = false
		}
	}
	others := len(r.cfg.Peers) - 1
	switch {
	case len(from) >= r.cfg.Need():
		merged := NewReplica(SetIfUnchanged, nil)
		for _, p := range from {
			merged.Merge(r.answers[p].Values)
		}
		r.finish(fmt.Sprintf("recovered from %v", from))
		out.Done = &Recovered{Values: merged.Snapshot(), From: from}
		return out
	case r.cfg.Bootstrap && len(r.answers) == others && empty:
		r.finish("bootstrapped a new cluster: every peer answered and none holds a value")
		out.Done = &Recovered{Values: map[string]uint64{}, Bootstrapped: true}
		return out
	case len(r.answers)+r.failed < others:
		return out // more answers to come
	}
	r.polling = false
	r.attempt++
	r.status = fmt.Sprintf("round %d: %d of the %d initialised peers needed answered (%d failed); polling again",
		r.round, len(from), r.cfg.Need(), r.failed)
	d := 50 * time.Millisecond << min(r.attempt-1, 4)
	out.After = min(d, time.Second)
	return out
}

func (r *Recovery) finish(status string) {
	r.done, r.polling, r.status = true, false, status
}
