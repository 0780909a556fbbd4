package netns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"runtime"
	"sync"
	"syscall"

	"github.com/pkg/errors"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultSubnet is where hosts get their addresses: the first host .1,
// the next .2, and so on.
var DefaultSubnet = netip.MustParsePrefix("198.18.0.0/24")

// LabMark is the socket mark of the lab's own sockets (Host.Dial), which
// redirects skip.
const LabMark = 0x5e9

// MaxHosts is the most hosts a lab holds.
const MaxHosts = 200

// ErrNoPrivilege is returned when this process cannot make network
// namespaces (it needs root, or CAP_SYS_ADMIN and CAP_NET_ADMIN).
var ErrNoPrivilege = errors.New("netns: making network namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN)")

// Config says which hosts a lab holds. The zero value of Subnet means
// DefaultSubnet.
type Config struct {
	Hosts  []string
	Subnet netip.Prefix
}

var hostName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}$`)

// Validate reports what is wrong with c, if anything.
func (c Config) Validate() error {
	if len(c.Hosts) == 0 {
		return errors.New("netns: no hosts")
	}
	if len(c.Hosts) > MaxHosts {
		return errors.Errorf("netns: %d hosts, at most %d", len(c.Hosts), MaxHosts)
	}
	seen := map[string]bool{}
	for _, h := range c.Hosts {
		if !hostName.MatchString(h) {
			return errors.Errorf("netns: host name %q: want a lower-case letter, then up to 30 letters, digits or '-'", h)
		}
		if seen[h] {
			return errors.Errorf("netns: host %q twice", h)
		}
		seen[h] = true
	}
	s := c.subnet()
	if !s.Addr().Is4() || s.Bits() < 8 || s.Bits() > 24 {
		return errors.Errorf("netns: subnet %s: want an IPv4 prefix of /8 to /24", s)
	}
	return nil
}

func (c Config) subnet() netip.Prefix {
	if !c.Subnet.IsValid() {
		return DefaultSubnet
	}
	return c.Subnet.Masked()
}

// Lab is the hosts' namespaces, the hub between them, and the rules of
// the faults. Its methods are safe for concurrent use.
type Lab struct {
	hub   *space
	hosts []*Host
	by    map[string]*Host
	bits  int

	mu     sync.Mutex
	cuts   map[[2]string]int // directed link -> cuts held
	gen    uint32            // the last reset's conntrack mark
	closed bool
}

// Host is one host's namespace.
type Host struct {
	name  string
	index int
	addr  netip.Addr
	sp    *space
	lab   *Lab
	rules *rules

	redirects []redirect
	resets    map[string]uint32 // peer -> conntrack mark of its last reset
}

// space is one namespace and the OS thread that lives in it.
type space struct {
	fd   netns.NsHandle
	ino  uint64
	work chan func()
	done chan struct{}
}

// New makes the hub and one namespace per host, each joined to the hub
// by a veth pair, its end in the host called eth0 with the host's
// address. On any error it removes what it made.
func New(cfg Config) (_ *Lab, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Lab{by: map[string]*Host{}, cuts: map[[2]string]int{}, bits: cfg.subnet().Bits()}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if l.hub, err = newSpace(); err != nil {
		return nil, err
	}
	hub, err := netlink.NewHandleAt(l.hub.fd)
	if err != nil {
		return nil, errors.Wrap(err, "netns: netlink in the hub")
	}
	defer hub.Close()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
	if err := hub.LinkAdd(br); err != nil {
		return nil, errors.Wrap(err, "netns: add the hub's bridge")
	}
	if err := hub.LinkSetUp(br); err != nil {
		return nil, errors.Wrap(err, "netns: bring the hub's bridge up")
	}
	addr := cfg.subnet().Addr()
	for i, name := range cfg.Hosts {
		addr = addr.Next()
		if !cfg.subnet().Contains(addr.Next()) { // keep the broadcast address free
			return nil, errors.Errorf("netns: subnet %s has no room for %d hosts", cfg.subnet(), len(cfg.Hosts))
		}
		h := &Host{name: name, index: i, addr: addr, lab: l, resets: map[string]uint32{}}
		if h.sp, err = newSpace(); err != nil {
			return nil, err
		}
		l.hosts = append(l.hosts, h)
		l.by[name] = h
		if testFailJoin != nil {
			if err := testFailJoin(i); err != nil {
				return nil, err
			}
		}
		if err := l.join(hub, br, h); err != nil {
			return nil, errors.Wrapf(err, "netns: join %s to the hub", name)
		}
		if h.rules, err = newRules(h.sp.fd); err != nil {
			return nil, errors.Wrapf(err, "netns: rules of %s", name)
		}
	}
	return l, nil
}

// testFailJoin, set by tests, fails New before it joins host i.
var testFailJoin func(i int) error

// join makes h's veth pair and brings both ends up.
func (l *Lab) join(hub *netlink.Handle, br *netlink.Bridge, h *Host) error {
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: fmt.Sprintf("v%d", h.index), MasterIndex: br.Index},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(h.sp.fd),
	}
	if err := hub.LinkAdd(veth); err != nil {
		return errors.Wrap(err, "add veth")
	}
	if err := hub.LinkSetUp(veth); err != nil {
		return errors.Wrap(err, "bring the hub's end up")
	}
	in, err := netlink.NewHandleAt(h.sp.fd)
	if err != nil {
		return errors.Wrap(err, "netlink in the host")
	}
	defer in.Close()
	for _, name := range []string{"lo", "eth0"} {
		link, err := in.LinkByName(name)
		if err != nil {
			return errors.Wrapf(err, "find %s", name)
		}
		if name == "eth0" {
			a := &netlink.Addr{IPNet: &net.IPNet{IP: h.addr.AsSlice(), Mask: net.CIDRMask(l.bits, 32)}}
			if err := in.AddrAdd(link, a); err != nil {
				return errors.Wrap(err, "address eth0")
			}
		}
		if err := in.LinkSetUp(link); err != nil {
			return errors.Wrapf(err, "bring %s up", name)
		}
	}
	return nil
}

// newSpace makes a namespace on a thread of its own: the thread unshares
// its network namespace, stays locked in it and runs the space's work
// until the space closes, then exits, since a locked goroutine that
// returns takes its thread with it.
func newSpace() (*space, error) {
	sp := &space{work: make(chan func()), done: make(chan struct{})}
	ready := make(chan error, 1)
	onOwnThread(func() {
		defer close(sp.done)
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			if errors.Is(err, unix.EPERM) {
				err = ErrNoPrivilege
			}
			ready <- errors.Wrap(err, "netns: unshare")
			return
		}
		fd, err := netns.Get()
		if err != nil {
			ready <- errors.Wrap(err, "netns: open the new namespace")
			return
		}
		sp.fd = fd
		var st unix.Stat_t
		if err := unix.Fstat(int(fd), &st); err == nil {
			sp.ino = st.Ino
		}
		ready <- nil
		for f := range sp.work {
			f()
		}
	})
	if err := <-ready; err != nil {
		<-sp.done
		return nil, err
	}
	return sp, nil
}

// do runs f on the space's thread, inside the namespace.
func (sp *space) do(f func()) {
	ran := make(chan struct{})
	sp.work <- func() { defer close(ran); f() }
	<-ran
}

func (sp *space) close() {
	if sp == nil {
		return
	}
	close(sp.work)
	<-sp.done
	if sp.fd.IsOpen() {
		sp.fd.Close()
	}
}

// Check reports whether this process can make a lab here: nil, or an
// error that says what is missing.
func Check() error {
	sp, err := newSpace()
	if err != nil {
		return err
	}
	defer sp.close()
	r, err := newRules(sp.fd)
	if err != nil {
		return errors.Wrap(err, "netns: nftables")
	}
	r.close()
	return nil
}

// Hosts returns the hosts in the order of the Config.
func (l *Lab) Hosts() []*Host { return append([]*Host(nil), l.hosts...) }

// Host returns the host called name, or nil.
func (l *Lab) Host(name string) *Host { return l.by[name] }

// Inodes returns the inode numbers of the lab's namespaces (the hub's
// first), which tests use to show that none outlives Close.
func (l *Lab) Inodes() []uint64 {
	var out []uint64
	if l.hub != nil {
		out = append(out, l.hub.ino)
	}
	for _, h := range l.hosts {
		out = append(out, h.sp.ino)
	}
	return out
}

// Close removes every rule, veth and namespace of the lab. The caller
// must have stopped the processes it started in them first: the thread
// each was forked from exits now, and with it goes any parent-death
// signal they asked for. A second Close does nothing.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	var first error
	for _, h := range l.hosts {
		if h.rules != nil {
			if err := h.rules.close(); err != nil && first == nil {
				first = errors.Wrapf(err, "netns: remove the rules of %s", h.name)
			}
		}
	}
	if l.hub != nil {
		// Deleting the hub's ends takes the host ends with them at once,
		// rather than when the kernel gets round to the dead namespaces.
		if hub, err := netlink.NewHandleAt(l.hub.fd); err == nil {
			for _, h := range l.hosts {
				if link, err := hub.LinkByName(fmt.Sprintf("v%d", h.index)); err == nil {
					if err := hub.LinkDel(link); err != nil && first == nil {
						first = errors.Wrapf(err, "netns: delete the veth of %s", h.name)
					}
				}
			}
			hub.Close()
		}
	}
	for _, h := range l.hosts {
		h.sp.close()
	}
	l.hub.close()
	return first
}

// Name returns the host's name.
func (h *Host) Name() string { return h.name }

// Addr returns the host's address on the hub.
func (h *Host) Addr() netip.Addr { return h.addr }

// Inode returns the inode number of the host's namespace.
func (h *Host) Inode() uint64 { return h.sp.ino }

// Start starts cmd inside the host's namespace: it forks from the
// namespace's thread, so a SysProcAttr.Pdeathsig the caller set fires
// when the lab closes or dies.
func (h *Host) Start(cmd *exec.Cmd) error {
	var err error
	h.sp.do(func() { err = cmd.Start() })
	return err
}

// Dial connects from inside the host. The address must be an IP literal
// and a port: a name would be resolved by goroutines outside the
// namespace. The socket carries LabMark, so redirects leave it alone.
func (h *Host) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	if _, err := netip.ParseAddrPort(address); err != nil {
		return nil, errors.Errorf("netns: dial %q from %s: want an IP address and a port", address, h.name)
	}
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, LabMark)
		}); err != nil {
			return err
		}
		return serr
	}}
	var c net.Conn
	err := h.inside(func() error {
		var err error
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// Listen listens inside the host; address is an IP literal and a port,
// or ":port" for every address of the host.
func (h *Host) Listen(network, address string) (net.Listener, error) {
	var lis net.Listener
	err := h.inside(func() error {
		var err error
		lis, err = net.Listen(network, address)
		return err
	})
	return lis, err
}

// inside runs f on a new thread that enters the host's namespace and is
// thrown away afterwards, so that no thread of the lab's pool is ever
// left in the wrong namespace, and so that a slow f (a dial) holds up no
// other work in the host.
func (h *Host) inside(f func() error) error {
	out := make(chan error, 1)
	onOwnThread(func() {
		if err := unix.Setns(int(h.sp.fd), unix.CLONE_NEWNET); err != nil {
			out <- errors.Wrapf(err, "netns: enter %s", h.name)
			return
		}
		out <- f()
	})
	return <-out
}

// onOwnThread runs f in a new goroutine locked to an OS thread that is
// thrown away when f returns, so that a thread whose namespace f changed
// never runs anything else. That thread is never the process's main
// thread: Go does not end the main thread when its locked goroutine
// exits, but parks it for good, and the namespace with it.
func onOwnThread(f func()) {
	go func() {
		runtime.LockOSThread() // never unlocked, unless this is the main thread
		if unix.Gettid() == unix.Getpid() {
			// While this goroutine holds the main thread, the next one
			// cannot have it.
			done := make(chan struct{})
			onOwnThread(func() { defer close(done); f() })
			<-done
			runtime.UnlockOSThread()
			return
		}
		f()
	}()
}
