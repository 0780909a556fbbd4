package nemesis

// OneWayCut cuts the link from one random node to another in one
// direction only: messages flow one way, and answers never come back.
// Targets, if set, is from and to.
type OneWayCut struct {
	Targets []string
	healer
}

func (p *OneWayCut) Name() string { return "partition-oneway" }
func (p *OneWayCut) String() string {
	if len(p.Targets) == 2 {
		a, b := p.Targets[0], p.Targets[1]
		return "partition-oneway(" + a + " -> " + b + " cut, " + b + " -> " + a + " open)"
	}
	return "partition-oneway(random a -> random b cut, b -> a open)"
}

func (p *OneWayCut) Start(c Cluster) (any, error) {
	nodes := c.Nodes()
	if err := p.fits(nodes); err != nil {
		return nil, err
	}
	ends, err := spelt(p, c)
	if err != nil {
		return nil, err
	}
	if ends == nil {
		from := pick(c.Rand(), nodes, 1)[0]
		others := without(nodes, from)
		ends = []string{from, others[c.Rand().IntN(len(others))]}
	}
	from, to := ends[0], ends[1]
	p.cutLink(c, from, to)
	return p.record(map[string]any{"from": from, "to": to}), nil
}

func (p *OneWayCut) Stop(c Cluster) (any, error) { return p.heal(c), nil }

func (p *OneWayCut) fits(nodes []string) error { return need(p, nodes, 2, "two ends") }
