package nemesis

// PartitionBridge picks a random bridge node, splits the others at random
// into two halves and cuts every link between the halves, both ways. The
// bridge keeps its links to both: it sees every node, while each half
// sees only itself and the bridge. The shape is built from Cuts, because
// Partition with the bridge in both groups would cut the bridge off from
// both sides (see Network.Partition). Targets, if set, is every node
// once: the bridge, then one side, then the other, the first side the
// smaller when they cannot be equal.
type PartitionBridge struct {
	Targets []string
	healer
}

func (p *PartitionBridge) Name() string { return "partition-bridge" }
func (p *PartitionBridge) String() string {
	if len(p.Targets) > 1 {
		bridge, a, b := bridgeSides(p.Targets)
		return "partition-bridge(" + join(a) + " | " + join(b) + ", joined only by bridge " + bridge + ")"
	}
	return "partition-bridge(half | half, joined only by 1 random bridge node)"
}

func (p *PartitionBridge) Start(c Cluster) (any, error) {
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
	bridge, a, b := bridgeSides(order)
	for _, x := range a {
		for _, y := range b {
			p.cutLink(c, x, y)
			p.cutLink(c, y, x)
		}
	}
	return p.record(map[string]any{"bridge": bridge, "sides": [][]string{a, b}}), nil
}

func (p *PartitionBridge) Stop(c Cluster) (any, error) { return p.heal(c), nil }

func (p *PartitionBridge) fits(nodes []string) error {
	return need(p, nodes, 3, "two sides and a bridge")
}
