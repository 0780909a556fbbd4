package nemesis

// PartitionIsolate cuts one random node off from everyone else, both ways:
// Targets[0] if set (see Targeted).
type PartitionIsolate struct {
	Targets []string
	healer
}

func (p *PartitionIsolate) Name() string { return "partition-isolate" }
func (p *PartitionIsolate) String() string {
	return "partition-isolate(" + who(p.Targets, "1 random node") + " | the rest)"
}

func (p *PartitionIsolate) Start(c Cluster) (any, error) {
	nodes := c.Nodes()
	if err := p.fits(nodes); err != nil {
		return nil, err
	}
	lone, err := spelt(p, c)
	if err != nil {
		return nil, err
	}
	if lone == nil {
		lone = pick(c.Rand(), nodes, 1)
	}
	return p.partition(c, [][]string{lone, without(nodes, lone...)}), nil
}

func (p *PartitionIsolate) Stop(c Cluster) (any, error) { return p.heal(c), nil }

func (p *PartitionIsolate) fits(nodes []string) error {
	return need(p, nodes, 2, "one node and the rest")
}
