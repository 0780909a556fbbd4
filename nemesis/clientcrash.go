package nemesis

// ClientCrash kills one random buffering client: the IDs in its buffer are
// never handed out and become gaps. It is one-shot: the workload replaces
// the client, and Stop has nothing to undo. Targets, if set, names the
// client.
type ClientCrash struct {
	Targets []string
	client  string
	started bool
}

func (f *ClientCrash) Name() string { return "client-crash" }
func (f *ClientCrash) String() string {
	return "client-crash(" + who(f.Targets, "1 random buffering client") + ")"
}

func (f *ClientCrash) Start(c Cluster) (any, error) {
	named, err := spelt(f, c)
	if err != nil {
		return nil, err
	}
	f.started = true
	if named != nil {
		f.client = named[0]
		return map[string]any{"client": f.client}, c.CrashClient(f.client)
	}
	clients := c.Clients()
	if len(clients) == 0 {
		f.client = ""
		return map[string]any{"client": nil}, nil
	}
	f.client = pick(c.Rand(), clients, 1)[0]
	return map[string]any{"client": f.client}, c.CrashClient(f.client)
}

func (f *ClientCrash) Stop(c Cluster) (any, error) {
	if !f.started {
		return map[string]any{"nothing_to_undo": nil}, nil
	}
	var who any
	if f.client != "" {
		who = f.client
	}
	f.client, f.started = "", false
	return map[string]any{"nothing_to_undo": map[string]any{"client": who}}, nil
}
