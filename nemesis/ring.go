package nemesis

// PartitionRing puts the nodes on a random ring and cuts, both ways, every
// link between two nodes more than k places apart on it, where k is the
// fewest neighbours on each side that make a majority with the node
// itself (2k+1 > n/2). So every node sees a majority, itself included,
// made of itself and its k nearest neighbours on each side, and no two
// nodes see the same set: each can reach a majority, but no two agree on
// which. That needs at least 4 nodes: on 3, a node's nearest majority is
// every node and nothing would be cut, so Start fails instead. Targets,
// if set, is the ring: every node once, in order.
type PartitionRing struct {
	Targets []string
	healer
}

func (p *PartitionRing) Name() string { return "partition-ring" }
func (p *PartitionRing) String() string {
	if len(p.Targets) > 0 {
		return "partition-ring(ring " + join(p.Targets) + ", each node sees its nearest majority)"
	}
	return "partition-ring(random ring, each node sees its nearest majority)"
}

func (p *PartitionRing) Start(c Cluster) (any, error) {
	nodes := c.Nodes()
	if err := p.fits(nodes); err != nil {
		return nil, err
	}
	order, err := spelt(p, c)
	if err != nil {
		return nil, err
	}
	if order == nil {
		order = pick(c.Rand(), nodes, len(nodes))
		c.Rand().Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	n := len(order)
	k := ringReach(n)
	cuts := 0
	for i := range n {
		for j := range n {
			if d := min((i-j+n)%n, (j-i+n)%n); d > k {
				p.cutLink(c, order[i], order[j])
				cuts++
			}
		}
	}
	return p.record(map[string]any{"ring": order, "neighbours": k, "cuts": cuts}), nil
}

func (p *PartitionRing) Stop(c Cluster) (any, error) { return p.heal(c), nil }

// ringReach is the fewest neighbours on each side of a node on a ring of n
// that make a majority with the node itself.
func ringReach(n int) int { return (n/2 + 1) / 2 }

func (p *PartitionRing) fits(nodes []string) error {
	return need(p, nodes, 4, "a ring of different majorities")
}
