package nemesis

// Pause freezes one random node (like SIGSTOP): its peers see silence, not
// errors, until Stop resumes it.
type Pause struct{ node string }

func (f *Pause) Name() string { return "pause" }

func (f *Pause) Start(c Cluster) (any, error) {
	f.node = pick(c.Rand(), c.Nodes(), 1)[0]
	c.Net().Pause(f.node)
	return map[string]any{"node": f.node}, nil
}

func (f *Pause) Stop(c Cluster) (any, error) {
	c.Net().Resume(f.node)
	return map[string]any{"node": f.node}, nil
}

// Slow raises latency and jitter on every node (a slow network), or on one
// random node (OneNode: a slow machine), until Stop.
type Slow struct {
	Link    Link
	OneNode bool
	hosts   []string
}

func (f *Slow) Name() string {
	if f.OneNode {
		return "slow-node"
	}
	return "slow"
}

func (f *Slow) Start(c Cluster) (any, error) {
	f.hosts = c.Nodes()
	if f.OneNode {
		f.hosts = pick(c.Rand(), f.hosts, 1)
	}
	for _, h := range f.hosts {
		c.Net().SetHost(h, f.Link)
	}
	return map[string]any{"hosts": f.hosts, "latency": f.Link.Latency.String(), "jitter": f.Link.Jitter.String()}, nil
}

func (f *Slow) Stop(c Cluster) (any, error) {
	for _, h := range f.hosts {
		c.Net().SetHost(h, c.DefaultLink())
	}
	return map[string]any{"hosts": f.hosts}, nil
}

// Reset resets every open connection between two random nodes, both ways:
// the peers see an error at once.
type Reset struct{}

func (f *Reset) Name() string { return "reset" }

func (f *Reset) Start(c Cluster) (any, error) {
	pair := pick(c.Rand(), c.Nodes(), 2)
	c.Net().Reset(pair[0], pair[1])
	c.Net().Reset(pair[1], pair[0])
	return map[string]any{"between": pair}, nil
}

func (f *Reset) Stop(c Cluster) (any, error) { return nil, nil }

// Loss drops a fraction of new connections and resets a fraction of open
// ones until Stop.
type Loss struct{ DropDial, ResetConn float64 }

func (f *Loss) Name() string { return "loss" }

func (f *Loss) Start(c Cluster) (any, error) {
	c.Net().SetLoss(f.DropDial, f.ResetConn)
	return map[string]any{"drop_dial": f.DropDial, "reset_conn": f.ResetConn}, nil
}

func (f *Loss) Stop(c Cluster) (any, error) {
	c.Net().SetLoss(0, 0)
	return nil, nil
}

// ClientCrash kills one random buffering client: the IDs in its buffer are
// never handed out and become gaps.
type ClientCrash struct{}

func (f *ClientCrash) Name() string { return "client-crash" }

func (f *ClientCrash) Start(c Cluster) (any, error) {
	clients := c.Clients()
	if len(clients) == 0 {
		return map[string]any{"client": nil}, nil
	}
	who := pick(c.Rand(), clients, 1)[0]
	return map[string]any{"client": who}, c.CrashClient(who)
}

func (f *ClientCrash) Stop(c Cluster) (any, error) { return nil, nil }
