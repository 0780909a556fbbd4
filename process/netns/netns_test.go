package netns

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/internal/leftover"
)

// needLab skips a test where this process cannot make namespaces.
func needLab(t *testing.T) {
	t.Helper()
	if err := Check(); err != nil {
		t.Skipf("no network namespaces here: %v", err)
	}
}

// newLab makes a lab of hosts and checks, when the test ends, that
// nothing of it is left.
func newLab(t *testing.T, hosts ...string) *Lab {
	t.Helper()
	needLab(t)
	before := leftover.Take()
	start := time.Now()
	l, err := New(Config{Hosts: hosts})
	require.NoError(t, err)
	t.Logf("setup of %d hosts: %v", len(hosts), time.Since(start))
	mine := l.Inodes()
	t.Cleanup(func() {
		start := time.Now()
		require.NoError(t, l.Close())
		t.Logf("teardown: %v", time.Since(start))
		require.NoError(t, leftover.Since(before, leftover.Mine{NetNS: mine, Under: t.TempDir()}))
	})
	return l
}

// listen serves on h at port, handing each accepted connection to conns.
func listen(t *testing.T, h *Host, port int) (netip.AddrPort, chan net.Conn) {
	t.Helper()
	ap := netip.AddrPortFrom(h.Addr(), uint16(port))
	lis, err := h.Listen("tcp", ap.String())
	require.NoError(t, err)
	conns := make(chan net.Conn, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		<-done
		close(conns)
		for c := range conns {
			c.Close()
		}
	})
	return ap, conns
}

func dial(t *testing.T, h *Host, ap netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := h.Dial(ctx, "tcp", ap.String())
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func accept(t *testing.T, conns chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-conns:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
		return nil
	}
}

// readWithin reads len(want) bytes from c within d.
func readWithin(c net.Conn, n int, d time.Duration) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	b := make([]byte, n)
	_, err := io.ReadFull(c, b)
	return b, err
}

func TestHostsTalkThroughTheHub(t *testing.T) {
	l := newLab(t, "n1", "n2", "n3")
	var self syscall.Stat_t
	require.NoError(t, syscall.Stat("/proc/self/ns/net", &self))
	seen := map[uint64]bool{self.Ino: true}
	for _, h := range l.Hosts() {
		require.False(t, seen[h.Inode()], "%s shares a namespace", h.Name())
		seen[h.Inode()] = true
	}
	require.Equal(t, "198.18.0.1", l.Host("n1").Addr().String())
	require.Equal(t, "198.18.0.3", l.Host("n3").Addr().String())

	ap, conns := listen(t, l.Host("n3"), 7000)
	c, err := dial(t, l.Host("n1"), ap, 2*time.Second)
	require.NoError(t, err)
	s := accept(t, conns)
	// The peer sees the dialler's own address: every packet's sender is
	// known.
	require.Equal(t, "198.18.0.1", s.RemoteAddr().(*net.TCPAddr).IP.String())
	_, err = c.Write([]byte("ping"))
	require.NoError(t, err)
	got, err := readWithin(s, 4, 2*time.Second)
	require.NoError(t, err)
	require.Equal(t, "ping", string(got))

	// 127.0.0.1 in a host is the host's own loopback, not the machine's:
	// nothing listens there.
	_, err = dial(t, l.Host("n1"), netip.MustParseAddrPort("127.0.0.1:1"), time.Second)
	require.Error(t, err)
}

func TestCutIsOneWay(t *testing.T) {
	l := newLab(t, "a", "b")
	a, b := l.Host("a"), l.Host("b")
	apA, connsA := listen(t, a, 7000)
	apB, _ := listen(t, b, 7000)

	require.NoError(t, l.Cut("a", "b"))
	// a cannot open a connection to b: its SYN is dropped.
	_, err := dial(t, a, apB, 300*time.Millisecond)
	require.Error(t, err, "a dialled b across a cut")

	// b can connect to a (a's SYN-ACK is a bare segment of a connection b
	// opened), and b's bytes arrive, since a's ACKs pass.
	cb, err := dial(t, b, apA, 2*time.Second)
	require.NoError(t, err, "b could not dial a: the cut a->b cut b->a too")
	sa := accept(t, connsA)
	_, err = cb.Write([]byte("request"))
	require.NoError(t, err)
	got, err := readWithin(sa, 7, 2*time.Second)
	require.NoError(t, err)
	require.Equal(t, "request", string(got))

	// a's answer does not come back while the cut holds...
	_, err = sa.Write([]byte("answer"))
	require.NoError(t, err)
	_, err = readWithin(cb, 6, 500*time.Millisecond)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)

	// ...and is delivered, by TCP's retransmission, once the link heals.
	require.NoError(t, l.HealLink("a", "b"))
	got, err = readWithin(cb, 6, 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, "answer", string(got))
	_, err = dial(t, a, apB, 2*time.Second)
	require.NoError(t, err)
}

func TestCutsAreCounted(t *testing.T) {
	l := newLab(t, "a", "b")
	apB, _ := listen(t, l.Host("b"), 7000)
	require.NoError(t, l.Cut("a", "b"))
	require.NoError(t, l.Cut("a", "b"))
	require.NoError(t, l.HealLink("a", "b"))
	require.Equal(t, map[[2]string]int{{"a", "b"}: 1}, l.Cuts())
	_, err := dial(t, l.Host("a"), apB, 300*time.Millisecond)
	require.Error(t, err, "one of two cuts healed the link")
	require.NoError(t, l.HealLink("a", "b"))
	require.NoError(t, l.HealLink("a", "b"), "healing a link without cuts does nothing")
	require.Empty(t, l.Cuts())
	_, err = dial(t, l.Host("a"), apB, 2*time.Second)
	require.NoError(t, err)

	require.NoError(t, l.Cut("a", "b"))
	require.NoError(t, l.Cut("b", "a"))
	require.NoError(t, l.Heal())
	require.Empty(t, l.Cuts())
	_, err = dial(t, l.Host("a"), apB, 2*time.Second)
	require.NoError(t, err)
}

func TestResetResetsOpenConnectionsOnly(t *testing.T) {
	l := newLab(t, "a", "b")
	a, b := l.Host("a"), l.Host("b")
	apB, connsB := listen(t, b, 7000)
	ca, err := dial(t, a, apB, 2*time.Second)
	require.NoError(t, err)
	sb := accept(t, connsB)

	require.NoError(t, l.Reset("a", "b"))
	// a's next write turns into a RST to a; b's side is reset when it
	// next sends, by a's kernel, which no longer knows the connection.
	_, err = ca.Write([]byte("x"))
	if err == nil {
		_, err = readWithin(ca, 1, 2*time.Second)
	}
	require.ErrorIs(t, err, syscall.ECONNRESET, "a's connection was not reset")
	_, err = sb.Write([]byte("y"))
	if err == nil {
		_, err = readWithin(sb, 1, 2*time.Second)
	}
	require.ErrorIs(t, err, syscall.ECONNRESET, "b's connection was not reset")

	// A connection opened after the reset works.
	c2, err := dial(t, a, apB, 2*time.Second)
	require.NoError(t, err)
	s2 := accept(t, connsB)
	_, err = c2.Write([]byte("hi"))
	require.NoError(t, err)
	got, err := readWithin(s2, 2, 2*time.Second)
	require.NoError(t, err)
	require.Equal(t, "hi", string(got))
	_, err = s2.Write([]byte("ok"))
	require.NoError(t, err)
	got, err = readWithin(c2, 2, 2*time.Second)
	require.NoError(t, err)
	require.Equal(t, "ok", string(got))

	// A second reset takes that one too.
	require.NoError(t, l.Reset("b", "a"))
	_, err = c2.Write([]byte("x"))
	if err == nil {
		_, err = readWithin(c2, 1, 2*time.Second)
	}
	require.ErrorIs(t, err, syscall.ECONNRESET)
}

func TestRedirectSendsTheHostsOwnTrafficToALocalPort(t *testing.T) {
	l := newLab(t, "a", "b")
	a, b := l.Host("a"), l.Host("b")
	apB, connsB := listen(t, b, 7000)
	local, err := a.Listen("tcp", "127.0.0.1:9000")
	require.NoError(t, err)
	defer local.Close()
	require.NoError(t, a.Redirect(apB, 9000))

	// A process's connection to b lands on the local port...
	c, err := a.plainDial(context.Background(), apB.String())
	require.NoError(t, err)
	defer c.Close()
	s, err := local.Accept()
	require.NoError(t, err)
	s.Close()
	// ...while the lab's own (marked) dial reaches b.
	_, err = dial(t, a, apB, 2*time.Second)
	require.NoError(t, err)
	accept(t, connsB)

	require.ErrorContains(t, a.Redirect(apB, 9001), "already redirects")
	require.ErrorContains(t, a.Redirect(netip.AddrPort{}, 9001), "want an IPv4 address")
}

func TestStartRunsTheProcessInTheHost(t *testing.T) {
	l := newLab(t, "a")
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, l.Host("a").Start(cmd))
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat("/proc/"+strconv.Itoa(cmd.Process.Pid)+"/ns/net", &st))
	require.Equal(t, l.Host("a").Inode(), st.Ino)
}

func TestBadInputIsRefused(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "netns: no hosts"},
		{Config{Hosts: []string{"a", "a"}}, `netns: host "a" twice`},
		{Config{Hosts: []string{"A"}}, `netns: host name "A": want a lower-case letter`},
		{Config{Hosts: []string{""}}, `netns: host name ""`},
		{Config{Hosts: []string{"a"}, Subnet: netip.MustParsePrefix("198.18.0.0/30")}, "want an IPv4 prefix of /8 to /24"},
		{Config{Hosts: []string{"a"}, Subnet: netip.MustParsePrefix("fd00::/64")}, "want an IPv4 prefix"},
	} {
		_, err := New(tc.cfg)
		require.ErrorContains(t, err, tc.want)
	}
	l := newLab(t, "a", "b")
	require.ErrorContains(t, l.Cut("a", "zz"), `netns: no host "zz"`)
	require.ErrorContains(t, l.Cut("a", "a"), "to itself")
	require.ErrorContains(t, l.Reset("q", "a"), `no host "q"`)
	_, err := l.Host("a").Dial(context.Background(), "tcp", "b:7000")
	require.ErrorContains(t, err, "want an IP address and a port")
	require.NoError(t, l.Close())
	require.ErrorIs(t, l.Cut("a", "b"), ErrClosed)
	require.NoError(t, l.Close(), "a second Close does nothing")
}

func TestFailedSetupLeavesNothing(t *testing.T) {
	needLab(t)
	before := leftover.Take()
	boom := errors.New("boom")
	testFailJoin = func(i int) error {
		if i == 2 {
			return boom
		}
		return nil
	}
	defer func() { testFailJoin = nil }()
	_, err := New(Config{Hosts: []string{"a", "b", "c"}})
	require.ErrorIs(t, err, boom)
	require.NoError(t, leftover.Since(before, leftover.Mine{Under: t.TempDir()}))
}
