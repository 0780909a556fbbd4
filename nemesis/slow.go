package nemesis

import (
	"fmt"

	"github.com/pkg/errors"
)

// Slow sets the latency and jitter of every node (a slow network), or of
// one random node (OneNode: a slow machine), until Stop clears the
// setting and the links take the network's default delay again.
type Slow struct {
	Link    Link
	OneNode bool
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
	return fmt.Sprintf("%s(%s: %v±%v)", f.Name(), who, f.Link.Latency, f.Link.Jitter)
}

func (f *Slow) Start(c Cluster) (any, error) {
	hosts := c.Nodes()
	if f.OneNode {
		hosts = pick(c.Rand(), hosts, 1)
	}
	f.hosts = nil
	for _, h := range hosts {
		if err := c.Net().SetHost(h, &f.Link); err != nil {
			return map[string]any{"hosts": f.hosts}, errors.Wrapf(err, "slow %s", h)
		}
		f.hosts = append(f.hosts, h)
	}
	return map[string]any{"hosts": f.hosts, "latency": f.Link.Latency.String(), "jitter": f.Link.Jitter.String()}, nil
}

// Stop clears the setting of every host Start slowed.
func (f *Slow) Stop(c Cluster) (any, error) {
	var errs []error
	for _, h := range f.hosts {
		if err := c.Net().SetHost(h, nil); err != nil {
			errs = append(errs, errors.Wrapf(err, "clear %s", h))
		}
	}
	v := map[string]any{"restored": f.hosts, "delay": "default"}
	f.hosts = nil
	if len(errs) > 0 {
		return v, errs[0]
	}
	return v, nil
}
