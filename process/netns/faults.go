package netns

import (
	"net/netip"

	"github.com/pkg/errors"
)

// ErrClosed is returned by the faults of a closed lab.
var ErrClosed = errors.New("netns: lab closed")

// Cut adds one cut to the link from→to: from sends nothing to to, while
// to's bytes still reach from (see the package doc). The link carries
// again when every cut of it has been healed.
func (l *Lab) Cut(from, to string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, _, err := l.pair(from, to)
	if err != nil {
		return err
	}
	k := [2]string{from, to}
	l.cuts[k]++
	if err := l.applyLocked(f); err != nil {
		l.cuts[k]--
		return err
	}
	return nil
}

// HealLink takes away one cut of from→to; on a link without cuts it does
// nothing.
func (l *Lab) HealLink(from, to string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, _, err := l.pair(from, to)
	if err != nil {
		return err
	}
	k := [2]string{from, to}
	if l.cuts[k] == 0 {
		return nil
	}
	if l.cuts[k]--; l.cuts[k] == 0 {
		delete(l.cuts, k)
	}
	return l.applyLocked(f)
}

// Heal removes every cut.
func (l *Lab) Heal() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	hit := map[*Host]bool{}
	for k := range l.cuts {
		hit[l.by[k[0]]] = true
	}
	clear(l.cuts)
	var first error
	for h := range hit {
		if err := l.applyLocked(h); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Cuts returns how many cuts each directed link holds, for tests and
// logs.
func (l *Lab) Cuts() map[[2]string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[[2]string]int, len(l.cuts))
	for k, v := range l.cuts {
		out[k] = v
	}
	return out
}

// Reset resets every TCP connection open now between a and b, whichever
// side dialled (see the package doc). Connections opened later are left
// alone.
func (l *Lab) Reset(a, b string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ha, hb, err := l.pair(a, b)
	if err != nil {
		return err
	}
	l.gen++
	ha.resets[b], hb.resets[a] = l.gen, l.gen
	if err := l.applyLocked(ha); err != nil {
		return err
	}
	return l.applyLocked(hb)
}

// Redirect sends the host's own TCP connections to dst (another host's
// listener, say) to 127.0.0.1:port inside the host instead, where a proxy
// of the lab listens; the lab's own sockets (Dial) still reach dst.
func (h *Host) Redirect(dst netip.AddrPort, port uint16) error {
	if !dst.Addr().Is4() || dst.Port() == 0 || port == 0 {
		return errors.Errorf("netns: redirect %s to port %d on %s: want an IPv4 address, a port and a local port", dst, port, h.name)
	}
	l := h.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	for _, rd := range h.redirects {
		if rd.dst == dst {
			return errors.Errorf("netns: %s already redirects %s", h.name, dst)
		}
	}
	h.redirects = append(h.redirects, redirect{dst: dst, port: port})
	if err := l.applyLocked(h); err != nil {
		h.redirects = h.redirects[:len(h.redirects)-1]
		return err
	}
	return nil
}

func (l *Lab) pair(a, b string) (*Host, *Host, error) {
	if l.closed {
		return nil, nil, ErrClosed
	}
	ha, hb := l.by[a], l.by[b]
	switch {
	case ha == nil:
		return nil, nil, errors.Errorf("netns: no host %q", a)
	case hb == nil:
		return nil, nil, errors.Errorf("netns: no host %q", b)
	case a == b:
		return nil, nil, errors.Errorf("netns: %s to itself is no link", a)
	}
	return ha, hb, nil
}

// applyLocked, l.mu held, rewrites h's rules from the lab's state.
func (l *Lab) applyLocked(h *Host) error {
	hr := hostRules{resets: map[netip.Addr]uint32{}, redirects: h.redirects}
	for _, o := range l.hosts {
		if l.cuts[[2]string{h.name, o.name}] > 0 {
			hr.cutTo = append(hr.cutTo, o.addr)
		}
	}
	for peer, mark := range h.resets {
		hr.resets[l.by[peer].addr] = mark
	}
	return errors.Wrapf(h.rules.apply(hr), "netns: rules of %s", h.name)
}
