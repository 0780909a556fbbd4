package nemesis

import (
	"fmt"

	"github.com/pkg/errors"
)

// Slow adds a delay of Link to every node (a slow network), or to one
// random node (OneNode: a slow machine), until Stop removes it. Each host
// holds its delay settings one per fault (see Network.AddHostDelay), so
// Stop leaves a delay that another fault set, and slow+slow-node is
// slow-node's host under the slower of the two until slow-node stops.
// Targets, if set, names the one node (OneNode only).
type Slow struct {
	Link    Link
	OneNode bool
	Targets []string
	hosts   []string
}

func (f *Slow) Name() string {
	if f.OneNode {
		return "slow-node"
	}
	return "slow"
}

func (f *Slow) String() string {
	who := "every node"
	if f.OneNode {
		who = "1 random node"
	}
	if len(f.Targets) > 0 {
		who = join(f.Targets)
	}
	return fmt.Sprintf("%s(%s: %v±%v)", f.Name(), who, f.Link.Latency, f.Link.Jitter)
}

func (f *Slow) Start(c Cluster) (any, error) {
	hosts := c.Nodes()
	if len(f.Targets) > 0 {
		var err error
		if hosts, err = spelt(f, c); err != nil {
			return nil, err
		}
	} else if f.OneNode {
		hosts = pick(c.Rand(), hosts, 1)
	}
	f.hosts = nil
	for _, h := range hosts {
		if err := c.Net().AddHostDelay(h, f.Link); err != nil {
			return map[string]any{"hosts": f.hosts}, errors.Wrapf(err, "slow %s", h)
		}
		f.hosts = append(f.hosts, h)
	}
	return map[string]any{"hosts": f.hosts, "latency": f.Link.Latency.String(), "jitter": f.Link.Jitter.String()}, nil
}

// Stop removes the delay from every host Start slowed; other settings of
// those hosts stay.
func (f *Slow) Stop(c Cluster) (any, error) {
	for _, h := range f.hosts {
		c.Net().RemoveHostDelay(h, f.Link)
	}
	v := map[string]any{"restored": f.hosts, "removed": fmt.Sprintf("%v±%v", f.Link.Latency, f.Link.Jitter)}
	f.hosts = nil
	return v, nil
}
