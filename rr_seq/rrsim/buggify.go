package rrsim

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/simnet/sim"
)

// The seed-fired sites, in the spirit of FoundationDB's BUGGIFY: small
// places in rr_seq's node where a run can make the node do something
// legal but unlikely. A run enables some of them (Buggify), each with the
// share of the times it is reached that it fires. Each fires only in the
// simulator, only when its run enabled it, and notes itself in the trace
// ("buggify-NAME"), so a replay of the plan fires it at the same places.
const (
	// SiteReplyDelay holds a replica's answer to a peer for up to half a
	// peer timeout: the coordinator hedges, and its quorum forms from
	// other replicas than the ones it asked first.
	SiteReplyDelay = "reply-delay"
	// SiteRefuse has a replica turn a read or a write down, as an
	// overloaded node does: the coordinator asks another.
	SiteRefuse = "refuse"
	// SiteHedgeDrop drops a round's hedge timer: the round waits on the
	// peers it asked first until they answer or time out.
	SiteHedgeDrop = "hedge-drop"
	// SiteFsyncSlow makes one group commit take 5 to 50 fsyncs' time.
	SiteFsyncSlow = "fsync-slow"
	// SiteBackoffLong makes a retry wait the longest backoff.
	SiteBackoffLong = "backoff-long"
	// SiteRestartAfterAck ends the process just after a replica took a
	// write and answered it, as a panic would, and its supervisor starts
	// it again 1 to 50 ms later: in memory, a node that lost its state
	// the moment it held the newest value, the narrowest window of a
	// crash. At most one such restart in the cluster every
	// RestartSpacing, so that restarts never pile up into the loss of
	// every node (which rr_seq in memory does not survive by design).
	SiteRestartAfterAck = "restart-after-ack"
)

// RestartSpacing is the least time between two restarts by
// SiteRestartAfterAck in one run.
const RestartSpacing = 2 * time.Second

// Sites are every site, in the order a draw takes them.
var Sites = []string{SiteReplyDelay, SiteRefuse, SiteHedgeDrop, SiteFsyncSlow, SiteBackoffLong, SiteRestartAfterAck}

// Buggify is the sites a run enables and the source of their firing: it
// is part of the plan, so a replay fires the same sites at the same
// places. Nil enables none.
type Buggify struct {
	// Seed seeds each node process's source of firings.
	Seed uint64 `json:"seed"`
	// Sites are the enabled sites, each with the share of the times it
	// is reached that it fires.
	Sites []Site `json:"sites"`
	// Until, when set, is when the sites stop firing: the start of the
	// run's final recovery, so that liveness is judged on a cluster left
	// alone, as it is once the faults have healed.
	Until time.Duration `json:"until_ns,omitempty"`
	// Calm, when set, are the stretches in which SiteRestartAfterAck may
	// fire: clear of the plan's crash faults by RestartMargin, so that a
	// restarted node has recovered before a fault crashes another and a
	// node a fault restarted has recovered before the site restarts
	// another. (In memory, two nodes recovering at once out of three
	// leave no quorum to recover from: a loss the faults alone never
	// cause.) Nil puts no bound on it.
	Calm []Span `json:"calm,omitempty"`
}

// Span is a stretch of virtual time, [From, To).
type Span struct {
	From time.Duration `json:"from_ns"`
	To   time.Duration `json:"to_ns"`
}

// RestartMargin is how far a calm stretch keeps from a crash fault: more
// than a node in memory takes to recover (rr_seq.RecoveryWait of the
// default round life, and a round trip).
const RestartMargin = time.Second

// CalmBetween returns the stretches of [0, until) that keep
// RestartMargin from every crash, each crash a stretch of its own.
func CalmBetween(crashes []Span, until time.Duration) []Span {
	sorted := slices.Clone(crashes)
	slices.SortFunc(sorted, func(a, b Span) int { return cmp.Compare(a.From, b.From) })
	out := []Span{}
	from := time.Duration(0)
	for _, c := range sorted {
		if to := min(c.From-RestartMargin, until); to > from {
			out = append(out, Span{from, to})
		}
		from = max(from, c.To+RestartMargin)
	}
	if from < until {
		out = append(out, Span{from, until})
	}
	return out
}

// calm reports whether t is in a calm stretch.
func (b *Buggify) calm(t time.Duration) bool {
	if b.Calm == nil {
		return true
	}
	for _, s := range b.Calm {
		if t >= s.From && t < s.To {
			return true
		}
	}
	return false
}

// Site is one enabled site.
type Site struct {
	Name string  `json:"name"`
	P    float64 `json:"p"`
}

// DrawBuggify draws the sites of a run from its seed: each site is
// enabled with probability one half, and fires 1%, 5% or 25% of the times
// it is reached, as FoundationDB enables a share of its sites per run so
// that each run stresses a different few.
func DrawBuggify(seed int64, until time.Duration) *Buggify {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x62756767))
	b := &Buggify{Seed: rng.Uint64(), Until: until}
	for _, name := range Sites {
		on := rng.IntN(2) == 0
		p := []float64{0.01, 0.05, 0.25}[rng.IntN(3)]
		if on {
			b.Sites = append(b.Sites, Site{Name: name, P: p})
		}
	}
	return b
}

// Validate reports an unknown site or a share outside (0, 1].
func (b *Buggify) Validate() error {
	if b == nil {
		return nil
	}
	for _, s := range b.Sites {
		if !slices.Contains(Sites, s.Name) {
			return errors.Errorf("rrsim: unknown buggify site %q (sites: %v)", s.Name, Sites)
		}
		if !(s.P > 0 && s.P <= 1) || b.Until < 0 {
			return errors.Errorf("rrsim: buggify site %s fires with p=%v until %v (want 0 < p <= 1, until >= 0)", s.Name, s.P, b.Until)
		}
	}
	return nil
}

// String names the enabled sites and their shares.
func (b *Buggify) String() string {
	if b == nil || len(b.Sites) == 0 {
		return "none"
	}
	out := ""
	for i, s := range b.Sites {
		if i > 0 {
			out += " "
		}
		out += s.Name + "=" + strconv.FormatFloat(s.P, 'g', -1, 64)
	}
	return out
}

// sites is a node process's view of Buggify: the share of each site by
// its index in Sites, and a source of its own, so that enabling sites
// moves no draw of the run's source. Nil fires nothing.
type sites struct {
	p     [6]float64
	until time.Duration
	b     *Buggify
	rng   *rand.Rand
	h     *sim.Host
}

// newSites returns nil when b enables nothing. The process's source
// depends on the node and the time it started, so a restarted node draws
// afresh.
func newSites(b *Buggify, h *sim.Host) *sites {
	if b == nil || len(b.Sites) == 0 {
		return nil
	}
	s := &sites{h: h, until: b.Until, b: b}
	for _, site := range b.Sites {
		s.p[slices.Index(Sites, site.Name)] = site.P
	}
	var name uint64
	for _, c := range h.Name() {
		name = name<<8 | uint64(c)
	}
	s.rng = rand.New(rand.NewPCG(b.Seed^name, uint64(h.Now())))
	return s
}

// fire reports whether the site fires here, and notes it in the trace
// when it does. A site the run did not enable draws nothing.
func (s *sites) fire(site string, a, b uint64) bool {
	if s == nil {
		return false
	}
	i := slices.Index(Sites, site)
	if s.p[i] == 0 || (s.until > 0 && s.h.Now() >= s.until) || s.rng.Float64() >= s.p[i] {
		return false
	}
	s.h.Note(sim.Label{Kind: "buggify-" + site, From: s.h.Name(), A: a, B: b})
	return true
}

// draw is a number in [0, n) from the sites' source, for a site that
// fired.
func (s *sites) draw(n int64) int64 { return s.rng.Int64N(max(n, 1)) }
