package nemesis

import "fmt"

// Loss drops a fraction of new connections and resets a fraction of open
// ones until Stop. Stop ends the loss; the resets stay done. The network
// has one loss setting (see Network.SetLoss), so two Loss faults at once
// do not compose: Lookup takes "loss" once in a name, and an All of two
// would end both at the first Stop.
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
