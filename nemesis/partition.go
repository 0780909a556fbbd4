package nemesis

import "github.com/pkg/errors"

// need fails a partition the cluster is too small for: it would cut
// nothing, yet be recorded as a partition.
func need(f Fault, nodes []string, least int, shape string) error {
	if len(nodes) < least {
		return errors.Errorf("nemesis: %s needs at least %d nodes for %s, the cluster has %d",
			f.Name(), least, shape, len(nodes))
	}
	return nil
}

// healer remembers what a partition cut, so that Stop heals only when
// something is cut and records what it healed. Network.Heal removes every
// cut, so a partition's Stop also heals cuts another fault made.
type healer struct{ cut map[string]any }

// partition cuts the network into groups and returns the value to record.
func (h *healer) partition(c Cluster, groups [][]string) any {
	c.Net().Partition(groups...)
	h.cut = map[string]any{"groups": groups}
	return h.cut
}

// heal removes the cuts and returns what was healed, nil if nothing was
// cut.
func (h *healer) heal(c Cluster) any {
	if h.cut == nil {
		return map[string]any{"healed": nil}
	}
	c.Net().Heal()
	v := map[string]any{"healed": h.cut}
	h.cut = nil
	return v
}
