package nemesis

import (
	"fmt"

	"github.com/pkg/errors"
)

// Pause freezes one random node (like SIGSTOP): its peers see silence, not
// errors, until Stop resumes it.
type Pause struct{ node string }

func (f *Pause) Name() string   { return "pause" }
func (f *Pause) String() string { return "pause(1 random node)" }

func (f *Pause) Start(c Cluster) (any, error) {
	if err := need(f, c.Nodes(), 1, "a node to pause"); err != nil {
		return nil, err
	}
	f.node = pick(c.Rand(), c.Nodes(), 1)[0]
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

// Slow sets the latency and jitter of every node (a slow network), or of
// one random node (OneNode: a slow machine), until Stop clears the
// setting and the links take the network's default delay again.
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

func (f *Slow) String() string {
	who := "every node"
	if f.OneNode {
		who = "1 random node"
	}
	return fmt.Sprintf("%s(%s: %v±%v)", f.Name(), who, f.Link.Latency, f.Link.Jitter)
}

func (f *Slow) Start(c Cluster) (any, error) {
	hosts := c.Nodes()
	if f.OneNode {
		hosts = pick(c.Rand(), hosts, 1)
	}
	f.hosts = nil
	for _, h := range hosts {
		if err := c.Net().SetHost(h, &f.Link); err != nil {
			return map[string]any{"hosts": f.hosts}, errors.Wrapf(err, "slow %s", h)
		}
		f.hosts = append(f.hosts, h)
	}
	return map[string]any{"hosts": f.hosts, "latency": f.Link.Latency.String(), "jitter": f.Link.Jitter.String()}, nil
}

// Stop clears the setting of every host Start slowed.
func (f *Slow) Stop(c Cluster) (any, error) {
	var errs []error
	for _, h := range f.hosts {
		if err := c.Net().SetHost(h, nil); err != nil {
			errs = append(errs, errors.Wrapf(err, "clear %s", h))
		}
	}
	v := map[string]any{"restored": f.hosts, "delay": "default"}
	f.hosts = nil
	if len(errs) > 0 {
		return v, errs[0]
	}
	return v, nil
}

// Reset resets every open connection between two random nodes, whichever
// side dialled: the peers see an error at once. It is one-shot: Stop has
// nothing to undo.
type Reset struct{ between []string }

func (f *Reset) Name() string   { return "reset" }
func (f *Reset) String() string { return "reset(every connection between 2 random nodes)" }

func (f *Reset) Start(c Cluster) (any, error) {
	if err := need(f, c.Nodes(), 2, "two ends"); err != nil {
		return nil, err
	}
	f.between = pick(c.Rand(), c.Nodes(), 2)
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

// Loss drops a fraction of new connections and resets a fraction of open
// ones until Stop. Stop ends the loss; the resets stay done.
type Loss struct {
	DropDial, ResetConn float64
	on                  bool
}

func (f *Loss) Name() string { return "loss" }
func (f *Loss) String() string {
	return fmt.Sprintf("loss(drop-dial=%g, reset-conn=%g)", f.DropDial, f.ResetConn)
}

func (f *Loss) Start(c Cluster) (any, error) {
	c.Net().SetLoss(f.DropDial, f.ResetConn)
	f.on = true
	return map[string]any{"drop_dial": f.DropDial, "reset_conn": f.ResetConn}, nil
}

func (f *Loss) Stop(c Cluster) (any, error) {
	if !f.on {
		return map[string]any{"stopped": nil}, nil
	}
	c.Net().SetLoss(0, 0)
	f.on = false
	return map[string]any{"stopped": map[string]any{"drop_dial": f.DropDial, "reset_conn": f.ResetConn}}, nil
}

// ClientCrash kills one random buffering client: the IDs in its buffer are
// never handed out and become gaps. It is one-shot: the workload replaces
// the client, and Stop has nothing to undo.
type ClientCrash struct {
	client  string
	started bool
}

func (f *ClientCrash) Name() string   { return "client-crash" }
func (f *ClientCrash) String() string { return "client-crash(1 random buffering client)" }

func (f *ClientCrash) Start(c Cluster) (any, error) {
	f.started = true
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
