package nemesis

import (
	"fmt"

	"github.com/pkg/errors"
)

// Crash stops nodes' processes and restarts them on Stop. With PowerLoss
// their disks also lose what was not synced (Torn: unsynced files may keep
// a random prefix). Count nodes are chosen at random, or a majority, or
// all; Targets, if set, names them, as many as that, in the order they
// crash.
type Crash struct {
	Count     int
	Majority  bool
	All       bool
	PowerLoss bool
	Torn      bool
	Targets   []string
	down      []string
}

func (f *Crash) Name() string {
	what := "crash"
	switch {
	case f.PowerLoss && f.Torn:
		what = "lose-unsynced"
	case f.PowerLoss:
		what = "power-loss"
	}
	switch {
	case f.All:
		return what + "-all"
	case f.Majority:
		return what + "-majority"
	case f.Count > 1:
		return fmt.Sprintf("%s-%d", what, f.Count)
	}
	return what + "-one"
}

// String says which nodes crash and what their disks lose.
func (f *Crash) String() string {
	who := "1 random node"
	switch {
	case len(f.Targets) > 0:
		who = join(f.Targets)
	case f.All:
		who = "every node"
	case f.Majority:
		who = "random majority"
	case f.Count > 1:
		who = fmt.Sprintf("%d random nodes", f.Count)
	}
	switch {
	case f.PowerLoss && f.Torn:
		who += ", unsynced writes lost or torn"
	case f.PowerLoss:
		who += ", unsynced writes lost"
	}
	return fmt.Sprintf("%s(%s)", f.Name(), who)
}

func (f *Crash) Start(c Cluster) (any, error) {
	nodes := c.Nodes()
	targets, err := spelt(f, c)
	if err != nil {
		return nil, err
	}
	if targets == nil {
		targets = pick(c.Rand(), nodes, f.crashCount(len(nodes)))
	}
	f.down = nil
	for _, n := range targets {
		if err := c.Crash(n, f.PowerLoss, f.Torn); err != nil {
			return map[string]any{"nodes": f.down}, errors.Wrapf(err, "crash %s", n)
		}
		f.down = append(f.down, n)
	}
	return map[string]any{"nodes": f.down, "power_loss": f.PowerLoss}, nil
}

// Stop restarts every node Start crashed, even if one fails to.
func (f *Crash) Stop(c Cluster) (any, error) {
	var errs []error
	for _, n := range f.down {
		if err := c.Restart(n); err != nil {
			errs = append(errs, errors.Wrapf(err, "restart %s", n))
		}
	}
	out := map[string]any{"restarted": f.down}
	f.down = nil
	if len(errs) > 0 {
		return out, errs[0]
	}
	return out, nil
}
