package nemesis

// Pause freezes one random node (like SIGSTOP): its peers see silence, not
// errors, until Stop resumes it. Targets, if set, names the node.
type Pause struct {
	Targets []string
	node    string
}

func (f *Pause) Name() string   { return "pause" }
func (f *Pause) String() string { return "pause(" + who(f.Targets, "1 random node") + ")" }

func (f *Pause) Start(c Cluster) (any, error) {
	if err := f.fits(c.Nodes()); err != nil {
		return nil, err
	}
	node, err := spelt(f, c)
	if err != nil {
		return nil, err
	}
	if node == nil {
		node = pick(c.Rand(), c.Nodes(), 1)
	}
	f.node = node[0]
	c.Net().Pause(f.node)
	return map[string]any{"node": f.node}, nil
}

func (f *Pause) Stop(c Cluster) (any, error) {
	if f.node == "" {
		return map[string]any{"resumed": nil}, nil
	}
	c.Net().Resume(f.node)
	v := map[string]any{"resumed": f.node}
	f.node = ""
	return v, nil
}

func (f *Pause) fits(nodes []string) error { return need(f, nodes, 1, "a node to pause") }
