package netns

import (
	"context"
	"net"
)

// plainDial dials from inside h without the lab's mark, as a node
// process would.
func (h *Host) plainDial(ctx context.Context, address string) (net.Conn, error) {
	var c net.Conn
	err := h.inside(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, "tcp", address)
		return err
	})
	return c, err
}
