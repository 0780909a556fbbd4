package nemesis

import "github.com/pkg/errors"

// PartitionIsolate cuts one random node off from everyone else, both ways.
type PartitionIsolate struct{ healer }

func (p *PartitionIsolate) Name() string   { return "partition-isolate" }
func (p *PartitionIsolate) String() string { return "partition-isolate(1 random node | the rest)" }

func (p *PartitionIsolate) Start(c Cluster) (any, error) {
	nodes := c.Nodes()
	if err := need(p, nodes, 2, "one node and the rest"); err != nil {
		return nil, err
	}
	lone := pick(c.Rand(), nodes, 1)
	return p.partition(c, [][]string{lone, without(nodes, lone...)}), nil
}

func (p *PartitionIsolate) Stop(c Cluster) (any, error) { return p.heal(c), nil }

// PartitionHalves splits the nodes at random into a minority and a
// majority, cut off from each other both ways.
type PartitionHalves struct{ healer }

func (p *PartitionHalves) Name() string   { return "partition-halves" }
func (p *PartitionHalves) String() string { return "partition-halves(random minority | majority)" }

func (p *PartitionHalves) Start(c Cluster) (any, error) {
	nodes := c.Nodes()
	if err := need(p, nodes, 2, "two sides"); err != nil {
		return nil, err
	}
	minority := pick(c.Rand(), nodes, len(nodes)/2)
	return p.partition(c, [][]string{minority, without(nodes, minority...)}), nil
}

func (p *PartitionHalves) Stop(c Cluster) (any, error) { return p.heal(c), nil }

// PartitionRing puts the nodes on a random ring and cuts, both ways, every
// link between two nodes more than k places apart on it, where k is the
// fewest neighbours on each side that make a majority with the node
// itself (2k+1 > n/2). So every node sees a majority, itself included,
// made of itself and its k nearest neighbours on each side, and no two
// nodes see the same set: each can reach a majority, but no two agree on
// which. That needs at least 4 nodes: on 3, a node's nearest majority is
// every node and nothing would be cut, so Start fails instead.
type PartitionRing struct{ healer }

func (p *PartitionRing) Name() string { return "partition-ring" }
func (p *PartitionRing) String() string {
	return "partition-ring(random ring, each node sees its nearest majority)"
}

func (p *PartitionRing) Start(c Cluster) (any, error) {
	nodes := c.Nodes()
	if err := need(p, nodes, 4, "a ring of different majorities"); err != nil {
		return nil, err
	}
	order := pick(c.Rand(), nodes, len(nodes))
	c.Rand().Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	n := len(order)
	k := ringReach(n)
	cuts := 0
	for i := range n {
		for j := range n {
			if d := min((i-j+n)%n, (j-i+n)%n); d > k {
				c.Net().Cut(order[i], order[j])
				cuts++
			}
		}
	}
	p.cut = map[string]any{"ring": order, "neighbours": k, "cuts": cuts}
	return p.cut, nil
}

func (p *PartitionRing) Stop(c Cluster) (any, error) { return p.heal(c), nil }

// ringReach is the fewest neighbours on each side of a node on a ring of n
// that make a majority with the node itself.
func ringReach(n int) int { return (n/2 + 1) / 2 }

// PartitionBridge picks a random bridge node, splits the others at random
// into two halves and cuts every link between the halves, both ways. The
// bridge keeps its links to both: it sees every node, while each half
// sees only itself and the bridge. The shape is built from Cuts, because
// Partition with the bridge in both groups would cut the bridge off from
// both sides (see Network.Partition).
type PartitionBridge struct{ healer }

func (p *PartitionBridge) Name() string { return "partition-bridge" }
func (p *PartitionBridge) String() string {
	return "partition-bridge(half | half, joined only by 1 random bridge node)"
}

func (p *PartitionBridge) Start(c Cluster) (any, error) {
	nodes := c.Nodes()
	if err := need(p, nodes, 3, "two sides and a bridge"); err != nil {
		return nil, err
	}
	order := pick(c.Rand(), nodes, len(nodes))
	c.Rand().Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	bridge := order[0]
	rest := order[1:]
	a, b := rest[:len(rest)/2], rest[len(rest)/2:]
	for _, x := range a {
		for _, y := range b {
			c.Net().Cut(x, y)
			c.Net().Cut(y, x)
		}
	}
	p.cut = map[string]any{"bridge": bridge, "sides": [][]string{a, b}}
	return p.cut, nil
}

func (p *PartitionBridge) Stop(c Cluster) (any, error) { return p.heal(c), nil }

// OneWayCut cuts the link from one random node to another in one
// direction only: messages flow one way, and answers never come back.
type OneWayCut struct{ healer }

func (p *OneWayCut) Name() string   { return "partition-oneway" }
func (p *OneWayCut) String() string { return "partition-oneway(random a -> random b cut, b -> a open)" }

func (p *OneWayCut) Start(c Cluster) (any, error) {
	nodes := c.Nodes()
	if err := need(p, nodes, 2, "two ends"); err != nil {
		return nil, err
	}
	from := pick(c.Rand(), nodes, 1)[0]
	others := without(nodes, from)
	to := others[c.Rand().IntN(len(others))]
	c.Net().Cut(from, to)
	p.cut = map[string]any{"from": from, "to": to}
	return p.cut, nil
}

func (p *OneWayCut) Stop(c Cluster) (any, error) { return p.heal(c), nil }

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
