// Package netns is the process mode's network: one private network
// namespace per host (a node, or the lab's clients), all joined through a
// hub namespace that holds a bridge, one veth pair a host. Every packet
// between two hosts crosses a veth, so its sender is known from its
// source address, and the faults are nftables rules inside the hosts'
// namespaces (through github.com/google/nftables: netlink, no nft
// binary). The namespaces and links are made with
// github.com/vishvananda/netlink and netns rather than `unshare` and
// `ip`, so that nothing depends on binaries and every step reports a Go
// error.
//
// No namespace is ever named (bind-mounted under /run/netns): each lives
// as long as an open descriptor or a process holds it. The lab holds one
// descriptor and one OS thread per namespace; Close releases them, and if
// the lab dies unannounced the kernel releases them too, so a killed lab
// leaves no namespace, veth or rule behind. Processes started in a
// namespace (Host.Start) fork from that namespace's thread, so a
// parent-death signal fires when the lab goes.
//
// What the faults do, on the wire between two hosts:
//
//   - Cut(a, b) stops every byte from a to b and nothing else. Packets a
//     sends to b in connections a opened (conntrack's original direction)
//     are dropped, SYN included, so a cannot connect to b. In connections
//     b opened, a's packets that carry data (or a FIN) are dropped, and its
//     bare ACKs pass: b's bytes still reach a and are acknowledged, and
//     a's answers never come back, as simnet's one-way cut does. TCP
//     holds what was dropped and retransmits it after HealLink. Cuts are
//     counted per directed link, as nemesis.Network says.
//   - Reset(a, b) resets, with `reject with tcp reset`, every TCP
//     connection between a and b open at the time, whichever side
//     dialled: the first packet either side sends on one of them turns
//     into a RST to its sender, and the other side's next packet meets the
//     RST of the kernel that closed it. Connections opened after the call
//     are left alone (a conntrack mark tells them apart), so a reset is
//     one-shot and needs no Stop.
//   - Redirect(dst, port) on a host sends the host's own connections to
//     dst to 127.0.0.1:port inside the host instead: that is how a
//     node's peer traffic passes through a proxy of the lab (package
//     process/proxy) while every node is started with the same peer
//     addresses. Sockets the lab opens with Host.Dial carry a mark that
//     the redirect skips, so the proxy's own dial reaches dst.
//
// Delays are not here: this kernel has no netem, and the proxy delays
// bytes instead. A cut acts on the wire after the proxy, so cuts and
// delays compose.
//
// The addresses come from 198.18.0.0/15, the range RFC 2544 sets aside
// for network tests, and exist only inside the lab's namespaces: nothing
// is routed out, and the host's own network sees no packet.
package netns
