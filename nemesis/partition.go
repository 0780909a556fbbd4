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

// healer remembers the links a partition cut and what to record, so that
// Stop heals those links and no others, one HealLink each, and records
// what it healed. Cuts are counted per link (see Network), so a link that
// another fault also cut stays cut.
type healer struct {
	cut []Edge
	rec map[string]any
}

// partition cuts the network into groups and returns the value to record.
// The links add to any not healed yet, so that a Start without a Stop in
// between leaks no cut.
func (h *healer) partition(c Cluster, groups [][]string) any {
	h.cut = append(h.cut, c.Net().Partition(groups...)...)
	h.rec = map[string]any{"groups": groups}
	return h.rec
}

// cutLink cuts from→to and remembers it.
func (h *healer) cutLink(c Cluster, from, to string) {
	c.Net().Cut(from, to)
	h.cut = append(h.cut, Edge{from, to})
}

// record sets the value to record for the links cut with cutLink.
func (h *healer) record(rec map[string]any) any {
	h.rec = rec
	return rec
}

// heal heals the links the partition cut and returns what was healed, nil
// if nothing was cut.
func (h *healer) heal(c Cluster) any {
	if h.rec == nil {
		return map[string]any{"healed": nil}
	}
	for _, e := range h.cut {
		c.Net().HealLink(e.From, e.To)
	}
	v := map[string]any{"healed": h.rec}
	h.cut, h.rec = nil, nil
	return v
}
