package nemesis

import "github.com/pkg/errors"

// Crash stops nodes' processes and restarts them on Stop. With PowerLoss
// their disks also lose what was not synced (Torn: unsynced files may keep
// a random prefix). Count nodes are chosen at random, or a majority, or
// all.
type Crash struct {
	Count     int
	Majority  bool
	All       bool
	PowerLoss bool
	Torn      bool
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
	}
	return what + "-one"
}

func (f *Crash) Start(c Cluster) (any, error) {
	nodes := c.Nodes()
	k := max(f.Count, 1)
	switch {
	case f.All:
		k = len(nodes)
	case f.Majority:
		k = len(nodes)/2 + 1
	}
	f.down = pick(c.Rand(), nodes, k)
	for _, n := range f.down {
		if err := c.Crash(n, f.PowerLoss, f.Torn); err != nil {
			return map[string]any{"nodes": f.down}, errors.Wrapf(err, "crash %s", n)
		}
	}
	return map[string]any{"nodes": f.down, "power_loss": f.PowerLoss}, nil
}

func (f *Crash) Stop(c Cluster) (any, error) {
	var errs []error
	for _, n := range f.down {
		if err := c.Restart(n); err != nil {
			errs = append(errs, errors.Wrapf(err, "restart %s", n))
		}
	}
	out := map[string]any{"nodes": f.down}
	f.down = nil
	if len(errs) > 0 {
		return out, errs[0]
	}
	return out, nil
}
