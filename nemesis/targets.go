package nemesis

import (
	"slices"
	"strings"

	"github.com/pkg/errors"
)

// A fault whose Targets field is set acts on those nodes (or, for
// client-crash, that client) instead of drawing them from c.Rand(): an
// explicit timeline, a reproduced incident or a shrunk failure says
// "cut n1 off", not "cut a node off". Such a fault draws nothing, so it
// leaves the seeded source as it found it. A fault without Targets
// behaves, draws and records exactly as before.
//
// What Targets holds, fault by fault (n is the number of nodes):
//
//	partition-isolate  1: the node cut off from the rest
//	partition-halves   n/2: the minority, cut off from the rest
//	partition-ring     n: every node once, in ring order
//	partition-bridge   n: the bridge, then one side, then the other
//	                   (the first side has the smaller half)
//	partition-oneway   2: from and to; from→to is cut
//	crash-one, ...     1, a majority (n/2+1) or n: the nodes to crash
//	pause              1: the node to pause
//	slow-node          1: the node to slow
//	reset              2: the two ends
//	client-crash       1: the buffering client to crash
//
// slow, loss and faults made of several ("a+b") take no targets: a
// timeline gives each part a step of its own.

// targetable is a fault whose targets can be spelt out.
type targetable interface {
	Fault
	targets() *[]string
	// want says how many targets the fault takes on a cluster of n
	// nodes (-1: none), whether they are clients, and what they are.
	want(n int) (count int, clients bool, what string)
}

var _ = []targetable{
	(*PartitionIsolate)(nil), (*PartitionHalves)(nil), (*PartitionRing)(nil), (*PartitionBridge)(nil), (*OneWayCut)(nil),
	(*Crash)(nil), (*Pause)(nil), (*Slow)(nil), (*Reset)(nil), (*ClientCrash)(nil),
}

// Targeted returns the fault registered under name, acting on targets
// instead of drawing them. With no targets it is Lookup. It refuses a
// fault that takes no targets, a count that cannot be right on any
// cluster, and a target named twice; whether the targets name nodes of
// the cluster is for CheckTargets, and Start, to say.
func Targeted(name string, targets []string) (Fault, error) {
	f, err := Lookup(name)
	if err != nil || len(targets) == 0 {
		return f, err
	}
	t, ok := f.(targetable)
	if !ok {
		if _, all := f.(All); all {
			return nil, errors.Errorf("nemesis: %s is several faults and takes no targets: give each its own", name)
		}
		return nil, errors.Errorf("nemesis: %s takes no targets", name)
	}
	if k, _, _ := t.want(1); k < 0 {
		return nil, errors.Errorf("nemesis: %s takes no targets", name)
	}
	for i, x := range targets {
		if slices.Contains(targets[:i], x) {
			return nil, errors.Errorf("nemesis: %s names %s twice", name, x)
		}
	}
	*t.targets() = slices.Clone(targets)
	return f, nil
}

// CheckTargets returns an error unless f's targets, if it has any, suit
// a cluster of these nodes and buffering clients: as many as the fault
// takes there, each naming one of them, none twice. A fault without
// targets passes.
func CheckTargets(f Fault, nodes, clients []string) error {
	t, ok := f.(targetable)
	if !ok || len(*t.targets()) == 0 {
		return nil
	}
	return checkTargets(t, nodes, clients)
}

func checkTargets(t targetable, nodes, clients []string) error {
	got := *t.targets()
	k, isClient, what := t.want(len(nodes))
	if k < 0 {
		return errors.Errorf("nemesis: %s takes no targets", t.Name())
	}
	if len(got) != k {
		s := "s"
		if k == 1 {
			s = ""
		}
		return errors.Errorf("nemesis: %s takes %d target%s on %d nodes (%s), got %d: %s",
			t.Name(), k, s, len(nodes), what, len(got), strings.Join(got, " "))
	}
	among, kind := nodes, "node"
	if isClient {
		among, kind = clients, "buffering client"
	}
	for i, x := range got {
		if slices.Contains(got[:i], x) {
			return errors.Errorf("nemesis: %s names %s twice", t.Name(), x)
		}
		if !slices.Contains(among, x) {
			known := "there are none"
			if len(among) > 0 {
				known = strings.Join(among, " ")
			}
			return errors.Errorf("nemesis: %s: %s names no %s of the cluster (%s)", t.Name(), x, kind, known)
		}
	}
	return nil
}

// fitter is a fault with a shape that needs a least number of nodes.
type fitter interface {
	fits(nodes []string) error
}

// Fits returns an error unless a cluster of these nodes is big enough
// for f's shape (a ring needs 4, a bridge 3), as f's Start would: so
// that a script can refuse, before it runs, a fault that would only
// fail.
func Fits(f Fault, nodes []string) error {
	if a, ok := f.(All); ok {
		for _, part := range a {
			if err := Fits(part, nodes); err != nil {
				return err
			}
		}
		return nil
	}
	if ft, ok := f.(fitter); ok {
		return ft.fits(nodes)
	}
	return nil
}

var _ = []fitter{
	(*PartitionIsolate)(nil), (*PartitionHalves)(nil), (*PartitionRing)(nil), (*PartitionBridge)(nil), (*OneWayCut)(nil),
	(*Pause)(nil), (*Reset)(nil),
}

// spelt returns the fault's targets as checked against the cluster, or
// nil if it has none and draws them.
func spelt(t targetable, c Cluster) ([]string, error) {
	got := *t.targets()
	if len(got) == 0 {
		return nil, nil
	}
	var clients []string
	if _, isClient, _ := t.want(0); isClient {
		clients = c.Clients()
	}
	if err := checkTargets(t, c.Nodes(), clients); err != nil {
		return nil, err
	}
	return slices.Clone(got), nil
}

// bridgeSides splits a bridge's order: the bridge, then two halves.
func bridgeSides(order []string) (bridge string, a, b []string) {
	rest := order[1:]
	return order[0], rest[:len(rest)/2], rest[len(rest)/2:]
}

func join(xs []string) string { return strings.Join(xs, " ") }

// crashCount is how many nodes a Crash takes down on n nodes.
func (f *Crash) crashCount(n int) int {
	switch {
	case f.All:
		return n
	case f.Majority:
		return n/2 + 1
	}
	return max(f.Count, 1)
}

func (p *PartitionIsolate) targets() *[]string { return &p.Targets }
func (p *PartitionIsolate) want(int) (int, bool, string) {
	return 1, false, "the node cut off from the rest"
}

func (p *PartitionHalves) targets() *[]string { return &p.Targets }
func (p *PartitionHalves) want(n int) (int, bool, string) {
	return n / 2, false, "the minority"
}

func (p *PartitionRing) targets() *[]string { return &p.Targets }
func (p *PartitionRing) want(n int) (int, bool, string) {
	return n, false, "every node once, in ring order"
}

func (p *PartitionBridge) targets() *[]string { return &p.Targets }
func (p *PartitionBridge) want(n int) (int, bool, string) {
	return n, false, "every node once: the bridge, then one side, then the other"
}

func (p *OneWayCut) targets() *[]string { return &p.Targets }
func (p *OneWayCut) want(int) (int, bool, string) {
	return 2, false, "from and to"
}

func (f *Crash) targets() *[]string { return &f.Targets }
func (f *Crash) want(n int) (int, bool, string) {
	return f.crashCount(n), false, "the nodes to crash"
}

func (f *Pause) targets() *[]string { return &f.Targets }
func (f *Pause) want(int) (int, bool, string) {
	return 1, false, "the node to pause"
}

func (f *Slow) targets() *[]string { return &f.Targets }
func (f *Slow) want(int) (int, bool, string) {
	if !f.OneNode {
		return -1, false, ""
	}
	return 1, false, "the node to slow"
}

func (f *Reset) targets() *[]string { return &f.Targets }
func (f *Reset) want(int) (int, bool, string) {
	return 2, false, "the two ends"
}

func (f *ClientCrash) targets() *[]string { return &f.Targets }
func (f *ClientCrash) want(int) (int, bool, string) {
	return 1, true, "the buffering client to crash"
}

// who is how a String names a fault's nodes: its targets, or what it
// draws.
func who(targets []string, drawn string) string {
	if len(targets) > 0 {
		return join(targets)
	}
	return drawn
}
