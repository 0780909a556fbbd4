package netns

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/pkg/errors"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// rules is one host's nftables table: "seqlab", with a filter chain on
// output (cuts, resets), one on input (resets) and a nat chain on output
// (redirects). Every change rewrites the chains in one transaction, so
// the host never runs on half a rule set.
type rules struct {
	conn            *nftables.Conn
	table           *nftables.Table
	out, in, natOut *nftables.Chain
}

// redirect is one Host.Redirect.
type redirect struct {
	dst  netip.AddrPort
	port uint16
}

func newRules(fd netns.NsHandle) (*rules, error) {
	conn, err := nftables.New(nftables.WithNetNSFd(int(fd)))
	if err != nil {
		return nil, err
	}
	r := &rules{conn: conn}
	r.table = conn.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: "seqlab"})
	r.out = conn.AddChain(&nftables.Chain{
		Name: "out", Table: r.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter,
	})
	r.in = conn.AddChain(&nftables.Chain{
		Name: "in", Table: r.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter,
	})
	r.natOut = conn.AddChain(&nftables.Chain{
		Name: "nat-out", Table: r.table, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest,
	})
	// Conntrack starts following a namespace's connections only once a
	// rule there needs it, and then takes a connection it meets in mid
	// stream for a new one, opened by whoever sent that packet: the
	// resets and cuts would then misjudge every connection older than
	// their first rule. So a rule that reads conntrack, and does nothing,
	// holds it on from the start, in chains the faults never rewrite.
	for _, hook := range []*nftables.ChainHook{nftables.ChainHookOutput, nftables.ChainHookInput} {
		ch := conn.AddChain(&nftables.Chain{
			Name: fmt.Sprintf("track-%d", *hook), Table: r.table, Type: nftables.ChainTypeFilter,
			Hooknum: hook, Priority: nftables.ChainPriorityRef(*nftables.ChainPriorityFilter - 1),
		})
		conn.AddRule(&nftables.Rule{Table: r.table, Chain: ch, Exprs: []expr.Any{
			&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
			neq(binaryutil.NativeEndian.PutUint32(0)),
		}})
	}
	if err := conn.Flush(); err != nil {
		return nil, errors.Wrap(err, "add table")
	}
	return r, nil
}

func (r *rules) close() error {
	r.conn.DelTable(r.table)
	return r.conn.Flush()
}

// hostRules is what a host's chains hold.
type hostRules struct {
	cutTo     []netip.Addr          // hosts this one may send nothing to
	resets    map[netip.Addr]uint32 // peer -> the mark of connections opened since its last reset
	redirects []redirect
}

// apply rewrites the chains to hold exactly hr.
func (r *rules) apply(hr hostRules) error {
	c := r.conn
	c.FlushChain(r.out)
	c.FlushChain(r.in)
	c.FlushChain(r.natOut)
	add := func(ch *nftables.Chain, es ...[]expr.Any) {
		var all []expr.Any
		for _, e := range es {
			all = append(all, e...)
		}
		c.AddRule(&nftables.Rule{Table: r.table, Chain: ch, Exprs: all})
	}
	for _, to := range hr.cutTo {
		// In connections the peer opened, bare ACKs pass, so that its
		// bytes still arrive; everything else to the peer is dropped.
		for doff := uint8(5); doff <= 15; doff++ {
			add(r.out, daddr(to), ctDirection(ctDirReply), bareTCP(doff), verdict(expr.VerdictAccept))
		}
		add(r.out, daddr(to), verdict(expr.VerdictDrop))
	}
	for peer, mark := range hr.resets {
		m := binaryutil.NativeEndian.PutUint32(mark)
		add(r.out, daddr(peer), ctStateNew(), setCtMark(m))
		add(r.out, daddr(peer), tcpNotRST(), ctMarkNot(m), resetVerdict())
		add(r.in, saddr(peer), ctStateNew(), setCtMark(m))
		add(r.in, saddr(peer), tcpNotRST(), ctMarkNot(m), resetVerdict())
	}
	for _, rd := range hr.redirects {
		add(r.natOut, daddr(rd.dst.Addr()), tcpDport(rd.dst.Port()), metaMarkNot(LabMark), redirectTo(rd.port))
	}
	return c.Flush()
}

func load(base expr.PayloadBase, off, n uint32) expr.Any {
	return &expr.Payload{DestRegister: 1, Base: base, Offset: off, Len: n}
}

func eq(b []byte) expr.Any  { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b} }
func neq(b []byte) expr.Any { return &expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: b} }

func daddr(a netip.Addr) []expr.Any {
	b := a.As4()
	return []expr.Any{load(expr.PayloadBaseNetworkHeader, 16, 4), eq(b[:])}
}

func saddr(a netip.Addr) []expr.Any {
	b := a.As4()
	return []expr.Any{load(expr.PayloadBaseNetworkHeader, 12, 4), eq(b[:])}
}

func isTCP() []expr.Any {
	return []expr.Any{load(expr.PayloadBaseNetworkHeader, 9, 1), eq([]byte{unix.IPPROTO_TCP})}
}

func tcpDport(p uint16) []expr.Any {
	return append(isTCP(), load(expr.PayloadBaseTransportHeader, 2, 2), eq(binaryutil.BigEndian.PutUint16(p)))
}

// bareTCP matches a TCP segment without data or FIN whose TCP header is
// doff words long: an IPv4 header without options (0x45) and a total
// length of exactly the two headers. nftables has no arithmetic on
// registers, hence one rule per header length.
func bareTCP(doff uint8) []expr.Any {
	total := make([]byte, 2)
	binary.BigEndian.PutUint16(total, 20+uint16(doff)*4)
	return append(isTCP(),
		load(expr.PayloadBaseNetworkHeader, 0, 1), eq([]byte{0x45}),
		load(expr.PayloadBaseNetworkHeader, 2, 2), eq(total),
		load(expr.PayloadBaseTransportHeader, 12, 1),
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0xf0}, Xor: []byte{0}},
		eq([]byte{doff << 4}),
		load(expr.PayloadBaseTransportHeader, 13, 1),
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x01}, Xor: []byte{0}},
		eq([]byte{0}),
	)
}

// tcpNotRST matches TCP segments other than resets, so that the resets
// a reject sends are not rejected in turn.
func tcpNotRST() []expr.Any {
	return append(isTCP(),
		load(expr.PayloadBaseTransportHeader, 13, 1),
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x04}, Xor: []byte{0}},
		eq([]byte{0}),
	)
}

func ctDirection(dir uint8) []expr.Any {
	return []expr.Any{&expr.Ct{Key: expr.CtKeyDIRECTION, Register: 1}, eq([]byte{dir})}
}

func ctStateNew() []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{
			SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitNEW), Xor: binaryutil.NativeEndian.PutUint32(0),
		},
		neq(binaryutil.NativeEndian.PutUint32(0)),
	}
}

func setCtMark(m []byte) []expr.Any {
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: m},
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true},
	}
}

func ctMarkNot(m []byte) []expr.Any {
	return []expr.Any{&expr.Ct{Key: expr.CtKeyMARK, Register: 1}, neq(m)}
}

func metaMarkNot(mark uint32) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyMARK, Register: 1}, neq(binaryutil.NativeEndian.PutUint32(mark))}
}

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }

func resetVerdict() []expr.Any {
	return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}}
}

func redirectTo(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.Redir{RegisterProtoMin: 1},
	}
}

// ctDirReply is conntrack's IP_CT_DIR_REPLY: a packet of a connection the
// other side opened.
const ctDirReply = 1
