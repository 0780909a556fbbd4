package nemesis

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pkg/errors"
)

// Link is the latency of a link or host: fixed latency plus seeded random
// jitter. It mirrors simnet.LinkConfig.
type Link struct {
	Latency, Jitter time.Duration
}

// Edge is one directed link, From→To: what Cut cuts, what HealLink heals,
// and what Partition returns for each link it cut.
type Edge struct{ From, To string }

func (e Edge) String() string { return e.From + "->" + e.To }

// PartitionEdges returns the directed links that Partition(groups...)
// cuts: every link from a node of one group to a different node of
// another group, each once however many groups hold its ends, in the
// order of the groups and their nodes. A Network can build its
// Partition from it.
func PartitionEdges(groups ...[]string) []Edge {
	var out []Edge
	seen := map[Edge]bool{}
	for i, g := range groups {
		for j, o := range groups {
			if i == j {
				continue
			}
			for _, a := range g {
				for _, b := range o {
					if e := (Edge{a, b}); a != b && !seen[e] {
						seen[e] = true
						out = append(out, e)
					}
				}
			}
		}
	}
	return out
}

// Network is what faults do to the network. The lab's simulated network
// satisfies it through a thin adapter.
//
// A fault undoes only what it did, so that faults compose. Cuts are
// counted per directed link: every Cut, and every link a Partition cuts,
// adds one cut, HealLink takes one away, and a link carries nothing while
// any cut of it remains. A fault heals exactly the links it cut, one
// HealLink each, and two faults that cut the same link leave it cut
// until both have healed. Host delays are held the same way, one setting
// per AddHostDelay. Heal, which removes every cut, is for the final heal
// of a run, never for a fault's Stop.
type Network interface {
	// Partition cuts, both ways, every link between two nodes that
	// different groups hold (one cut of each, see PartitionEdges) and
	// returns those links, for the fault to heal with HealLink. It heals
	// nothing: cuts that other faults made stay. A node in two groups is
	// cut from every other node in any group, so overlapping groups
	// cannot make a bridge node that sees both sides: build that with
	// Cut, as PartitionBridge does.
	Partition(groups ...[]string) []Edge
	// Cut adds one cut to the link from→to only.
	Cut(from, to string)
	// HealLink takes away one cut of from→to, one that the caller made
	// with Cut or Partition; the link carries again when no cut of it
	// remains. On a link without cuts it does nothing.
	HealLink(from, to string)
	// Heal removes every cut, whichever fault made it: the final heal of
	// a run only. A fault that called it would heal the cuts of the
	// faults it is composed with.
	Heal()
	// Reset resets every open connection between from and to, whichever
	// side dialled.
	Reset(from, to string)
	// AddHostDelay adds a delay setting to every link of host. A host
	// holds one setting per AddHostDelay not yet removed, and its links
	// take the slowest of them (by latency plus jitter), or the default
	// delay when it holds none. An invalid delay (by
	// simnet.LinkConfig.Validate: negative, or over simnet.MaxDelay) is
	// an error and adds nothing.
	AddHostDelay(host string, l Link) error
	// RemoveHostDelay removes one setting equal to l that AddHostDelay
	// added to host, leaving any others; without one it does nothing.
	RemoveHostDelay(host string, l Link)
	Pause(host string)
	Resume(host string)
	// SetLoss sets the network's one loss setting; SetLoss(0, 0) ends
	// it. Unlike cuts and delays, loss is not held per fault: of two
	// losses at once, the first Stop ends both.
	SetLoss(dropDial, resetConn float64)
}

// Cluster is what faults act on: the nodes, their network and their
// disks, and the seeded random source every choice of target comes from.
type Cluster interface {
	// Nodes returns the node names, in order.
	Nodes() []string
	// Clients returns the names of the client processes that hold a
	// buffer (rr_seq.Client instances), in order.
	Clients() []string
	Net() Network
	// Crash stops a node's process. With powerLoss, its disk also loses
	// whatever was not synced (torn, if torn). A node in memory loses
	// everything either way.
	Crash(node string, powerLoss, torn bool) error
	// Restart starts a crashed node again from its disk.
	Restart(node string) error
	// CrashClient kills a buffering client: the IDs in its buffer are
	// lost. The workload replaces it with a fresh one.
	CrashClient(name string) error
	// Rand is the nemesis's seeded random source.
	Rand() *rand.Rand
	// DefaultLink is the network's normal delay.
	DefaultLink() Link
}

// Fault is one kind of trouble. Start returns the value to record (its
// targets); Stop undoes what the last Start did, and nothing else, and
// returns what it undid. Nothing else means that a fault composed with
// others (see All) leaves theirs in place: a partition heals the links it
// cut with HealLink, never with Heal, and a slow fault removes its own
// delay setting (see Network). A second Stop has nothing left to undo,
// does nothing and records nil. A one-shot fault (a reset, a client
// crash) does its work in Start, and its Stop records that there was
// nothing to undo.
//
// Every fault in this package also has a String that says exactly what
// it does, with its parameters.
type Fault interface {
	Name() string
	Start(c Cluster) (any, error)
	Stop(c Cluster) (any, error)
}

// Every fault here names itself exactly.
var _ = []interface {
	Fault
	fmt.Stringer
}{
	(*PartitionIsolate)(nil), (*PartitionHalves)(nil), (*PartitionRing)(nil), (*PartitionBridge)(nil), (*OneWayCut)(nil),
	(*Crash)(nil), (*Pause)(nil), (*Slow)(nil), (*Reset)(nil), (*Loss)(nil), (*ClientCrash)(nil), All(nil),
	(*ClockOffset)(nil), (*ClockStepBack)(nil), (*ClockStrobe)(nil), (*ClockDrift)(nil),
}

// Event is one start or stop, for the history.
type Event struct {
	At    time.Duration // since the run began
	F     string        // "start-<name>" or "stop-<name>"
	Value any
	Err   error
}

// pick returns k distinct random elements of xs, in xs order.
func pick(r *rand.Rand, xs []string, k int) []string {
	idx := r.Perm(len(xs))[:min(k, len(xs))]
	sort.Ints(idx)
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = xs[j]
	}
	return out
}

// without returns xs minus drop.
func without(xs []string, drop ...string) []string {
	var out []string
	for _, x := range xs {
		skip := false
		for _, d := range drop {
			skip = skip || x == d
		}
		if !skip {
			out = append(out, x)
		}
	}
	return out
}

// Registry is the catalogue of faults by name: one line per fault.
var Registry = map[string]func() Fault{
	"partition-isolate": func() Fault { return &PartitionIsolate{} },
	"partition-halves":  func() Fault { return &PartitionHalves{} },
	"partition-ring":    func() Fault { return &PartitionRing{} },
	"partition-bridge":  func() Fault { return &PartitionBridge{} },
	"partition-oneway":  func() Fault { return &OneWayCut{} },
	"crash-one":         func() Fault { return &Crash{Count: 1} },
	"crash-majority":    func() Fault { return &Crash{Majority: true} },
	"crash-all":         func() Fault { return &Crash{All: true} },
	"power-loss-all":    func() Fault { return &Crash{All: true, PowerLoss: true} },
	"lose-unsynced":     func() Fault { return &Crash{Majority: true, PowerLoss: true, Torn: true} },
	"pause":             func() Fault { return &Pause{} },
	"slow":              func() Fault { return &Slow{Link: Link{Latency: 50 * time.Millisecond, Jitter: 50 * time.Millisecond}} },
	"slow-node": func() Fault {
		return &Slow{OneNode: true, Link: Link{Latency: 200 * time.Millisecond, Jitter: 100 * time.Millisecond}}
	},
	"reset":        func() Fault { return &Reset{} },
	"loss":         func() Fault { return &Loss{DropDial: 0.3, ResetConn: 0.1} },
	"client-crash": func() Fault { return &ClientCrash{} },

	// Clock faults, on clusters that implement Clocks.
	"clock-offset":    func() Fault { return &ClockOffset{Amount: 500 * time.Millisecond} },
	"clock-step-back": func() Fault { return &ClockStepBack{Amount: 2 * time.Second} },
	"clock-strobe":    func() Fault { return &ClockStrobe{Delta: 200 * time.Millisecond, Period: 10 * time.Millisecond} },
	"clock-drift":     func() Fault { return &ClockDrift{Rate: 0.5} },
}

// Lookup returns the fault registered under name. A name made of
// registered names joined with "+" ("partition-isolate+crash-one") is
// those faults at once: an All, started in that order and stopped in
// reverse. A part may appear once.
func Lookup(name string) (Fault, error) {
	if mk, ok := Registry[name]; ok {
		return mk(), nil
	}
	parts := strings.Split(name, "+")
	if len(parts) == 1 {
		return nil, errors.Errorf("nemesis: unknown fault %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	all := make(All, 0, len(parts))
	for i, part := range parts {
		mk, ok := Registry[part]
		if !ok {
			return nil, errors.Errorf("nemesis: unknown fault %q in %q (known: %s)", part, name, strings.Join(Names(), ", "))
		}
		if slices.Contains(parts[:i], part) {
			// Two parts of one name would share one entry of the record,
			// and could pick the same target twice.
			return nil, errors.Errorf("nemesis: %q names %s twice", name, part)
		}
		all = append(all, mk())
	}
	return all, nil
}

// Names returns the registered fault names, sorted.
func Names() []string {
	out := make([]string, 0, len(Registry))
	for k := range Registry {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// All is several faults at once: Start starts each in order, Stop stops
// them in reverse. Both record each fault's value under its name. The
// faults share the cluster, and compose because each undoes only what it
// did: two partitions that cut the same link leave it cut until both
// have stopped (see Network).
type All []Fault

// Name joins the names with "+".
func (a All) Name() string {
	names := make([]string, len(a))
	for i, f := range a {
		names[i] = f.Name()
	}
	return strings.Join(names, "+")
}

// Start starts the faults in order, up to the first that fails.
func (a All) Start(c Cluster) (any, error) {
	out := map[string]any{}
	for _, f := range a {
		v, err := f.Start(c)
		out[f.Name()] = v
		if err != nil {
			return out, errors.Wrap(err, f.Name())
		}
	}
	return out, nil
}

// Stop stops every fault, in reverse order, even after one fails: a
// final heal must not leave faults on.
func (a All) Stop(c Cluster) (any, error) {
	out := map[string]any{}
	var first error
	for i := len(a) - 1; i >= 0; i-- {
		v, err := a[i].Stop(c)
		out[a[i].Name()] = v
		if err != nil && first == nil {
			first = errors.Wrap(err, a[i].Name())
		}
	}
	return out, first
}

// String lists what each fault does, in start order.
func (a All) String() string {
	parts := make([]string, len(a))
	for i, f := range a {
		parts[i] = f.Name()
		if s, ok := f.(fmt.Stringer); ok {
			parts[i] = s.String()
		}
	}
	return fmt.Sprintf("all(%s)", strings.Join(parts, ", "))
}
