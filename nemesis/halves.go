package nemesis

// PartitionHalves splits the nodes at random into a minority and a
// majority, cut off from each other both ways. Targets, if set, is the
// minority.
type PartitionHalves struct {
	Targets []string
	healer
}

func (p *PartitionHalves) Name() string { return "partition-halves" }
func (p *PartitionHalves) String() string {
	if len(p.Targets) > 0 {
		return "partition-halves(" + join(p.Targets) + " | the rest)"
	}
	return "partition-halves(random minority | majority)"
}

func (p *PartitionHalves) Start(c Cluster) (any, error) {
	nodes := c.Nodes()
	if err := p.fits(nodes); err != nil {
		return nil, err
	}
	minority, err := spelt(p, c)
	if err != nil {
		return nil, err
	}
	if minority == nil {
		minority = pick(c.Rand(), nodes, len(nodes)/2)
	}
	return p.partition(c, [][]string{minority, without(nodes, minority...)}), nil
}

func (p *PartitionHalves) Stop(c Cluster) (any, error) { return p.heal(c), nil }

func (p *PartitionHalves) fits(nodes []string) error { return need(p, nodes, 2, "two sides") }
