package nemesis

import "fmt"

// PartitionIsolate cuts one random node off from everyone else.
type PartitionIsolate struct{ groups [][]string }

func (p *PartitionIsolate) Name() string { return "partition-isolate" }

func (p *PartitionIsolate) Start(c Cluster) (any, error) {
	nodes := c.Nodes()
	lone := pick(c.Rand(), nodes, 1)
	p.groups = [][]string{lone, without(nodes, lone...)}
	return partition(c, p.groups), nil
}

func (p *PartitionIsolate) Stop(c Cluster) (any, error) { return heal(c), nil }

// PartitionHalves splits the nodes at random into a majority and a
// minority.
type PartitionHalves struct{}

func (p *PartitionHalves) Name() string { return "partition-halves" }

func (p *PartitionHalves) Start(c Cluster) (any, error) {
	nodes := c.Nodes()
	minority := pick(c.Rand(), nodes, len(nodes)/2)
	return partition(c, [][]string{minority, without(nodes, minority...)}), nil
}

func (p *PartitionHalves) Stop(c Cluster) (any, error) { return heal(c), nil }

// PartitionRing gives each node a view of a majority, but every node a
// different one: nodes on a ring each see their nearest neighbours. No two
// nodes agree on who is in the majority, yet each can reach one.
type PartitionRing struct{}

func (p *PartitionRing) Name() string { return "partition-ring" }

func (p *PartitionRing) Start(c Cluster) (any, error) {
	nodes := c.Nodes()
	order := pick(c.Rand(), nodes, len(nodes))
	c.Rand().Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	n := len(order)
	reach := n / 2 // neighbours on each side needed for a majority with self
	var cuts [][2]string
	for i := range n {
		for j := range n {
			d := min((i-j+n)%n, (j-i+n)%n)
			if i != j && d > (reach+1)/2 {
				c.Net().Cut(order[i], order[j])
				cuts = append(cuts, [2]string{order[i], order[j]})
			}
		}
	}
	return map[string]any{"ring": order, "cuts": len(cuts)}, nil
}

func (p *PartitionRing) Stop(c Cluster) (any, error) { return heal(c), nil }

// PartitionBridge splits the nodes into two halves that cannot talk to
// each other, except through one bridge node that sees both.
type PartitionBridge struct{}

func (p *PartitionBridge) Name() string { return "partition-bridge" }

func (p *PartitionBridge) Start(c Cluster) (any, error) {
	nodes := c.Nodes()
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
	return map[string]any{"bridge": bridge, "sides": [][]string{a, b}}, nil
}

func (p *PartitionBridge) Stop(c Cluster) (any, error) { return heal(c), nil }

// OneWayCut cuts the link from one random node to another in one
// direction only: messages flow one way, and answers never come back.
type OneWayCut struct{}

func (p *OneWayCut) Name() string { return "partition-oneway" }

func (p *OneWayCut) Start(c Cluster) (any, error) {
	nodes := c.Nodes()
	from := pick(c.Rand(), nodes, 1)[0]
	others := without(nodes, from)
	to := others[c.Rand().IntN(len(others))]
	c.Net().Cut(from, to)
	return map[string]any{"from": from, "to": to}, nil
}

func (p *OneWayCut) Stop(c Cluster) (any, error) { return heal(c), nil }

func partition(c Cluster, groups [][]string) any {
	c.Net().Partition(groups...)
	return map[string]any{"groups": groups}
}

func heal(c Cluster) any {
	c.Net().Heal()
	return map[string]any{"healed": "all"}
}

func (p *PartitionIsolate) String() string { return fmt.Sprintf("partition-isolate%v", p.groups) }
