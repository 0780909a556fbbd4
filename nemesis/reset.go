package nemesis

// Reset resets every open connection between two random nodes, whichever
// side dialled: the peers see an error at once. It is one-shot: Stop has
// nothing to undo. Targets, if set, names the two nodes.
type Reset struct {
	Targets []string
	between []string
}

func (f *Reset) Name() string { return "reset" }
func (f *Reset) String() string {
	if len(f.Targets) == 2 {
		return "reset(every connection between " + f.Targets[0] + " and " + f.Targets[1] + ")"
	}
	return "reset(every connection between 2 random nodes)"
}

func (f *Reset) Start(c Cluster) (any, error) {
	if err := f.fits(c.Nodes()); err != nil {
		return nil, err
	}
	between, err := spelt(f, c)
	if err != nil {
		return nil, err
	}
	if between == nil {
		between = pick(c.Rand(), c.Nodes(), 2)
	}
	f.between = between
	c.Net().Reset(f.between[0], f.between[1]) // once: Reset works both ways
	return map[string]any{"between": f.between}, nil
}

func (f *Reset) Stop(c Cluster) (any, error) {
	if f.between == nil {
		return map[string]any{"nothing_to_undo": nil}, nil
	}
	v := map[string]any{"nothing_to_undo": map[string]any{"between": f.between}}
	f.between = nil
	return v, nil
}

func (f *Reset) fits(nodes []string) error { return need(f, nodes, 2, "two ends") }
