package nemesis

import (
	"fmt"
	"math/rand/v2"
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

// Network is what faults do to the network. The lab's simulated network
// satisfies it through a thin adapter.
type Network interface {
	Partition(groups ...[]string)
	Cut(from, to string)
	Heal()
	Reset(from, to string)
	SetHost(host string, l Link)
	Pause(host string)
	Resume(host string)
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
	// DefaultLink is the network's normal latency, restored by Stop.
	DefaultLink() Link
}

// Fault is one kind of trouble. Start returns the value to record (its
// targets); Stop undoes what the last Start did. A one-shot fault (a
// client crash) does its work in Start and has nothing to undo.
type Fault interface {
	Name() string
	Start(c Cluster) (any, error)
	Stop(c Cluster) (any, error)
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
}

// Lookup returns the fault registered under name.
func Lookup(name string) (Fault, error) {
	mk, ok := Registry[name]
	if !ok {
		return nil, errors.Errorf("nemesis: unknown fault %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	return mk(), nil
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
// them in reverse.
type All []Fault

// Name joins the names with "+".
func (a All) Name() string {
	names := make([]string, len(a))
	for i, f := range a {
		names[i] = f.Name()
	}
	return strings.Join(names, "+")
}

// Start implements Fault.
func (a All) Start(c Cluster) (any, error) {
	out := map[string]any{}
	for _, f := range a {
		v, err := f.Start(c)
		if err != nil {
			return out, errors.Wrap(err, f.Name())
		}
		out[f.Name()] = v
	}
	return out, nil
}

// Stop implements Fault.
func (a All) Stop(c Cluster) (any, error) {
	out := map[string]any{}
	for i := len(a) - 1; i >= 0; i-- {
		v, err := a[i].Stop(c)
		if err != nil {
			return out, errors.Wrap(err, a[i].Name())
		}
		out[a[i].Name()] = v
	}
	return out, nil
}

func (a All) String() string { return fmt.Sprintf("all(%s)", a.Name()) }
