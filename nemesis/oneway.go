package nemesis

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
	p.cutLink(c, from, to)
	return p.record(map[string]any{"from": from, "to": to}), nil
}

func (p *OneWayCut) Stop(c Cluster) (any, error) { return p.heal(c), nil }
