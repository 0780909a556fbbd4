// Package cluster puts the process mode's harness together: N node
// processes (rrseq-node, or any program given as a command template),
// each in its own network namespace (process/netns), each directed peer
// link through a proxy of the lab (process/proxy), each data dir on a
// FUSE disk that can lose power (process/faultfs), each process under a
// supervisor (process/supervisor). It implements nemesis.Cluster and
// nemesis.Network, so the lab's faults act on it as they act on the
// simulated network.
//
// Which hop each fault acts on, so that faults compose:
//
//   - Partition, Cut, HealLink, Heal: nftables rules on the wire between
//     two namespaces, after the proxy. Counted per directed link, as
//     nemesis.Network says.
//   - Reset: the proxies of the two links RST both ends of every
//     connection, and nftables resets any other TCP connection between
//     the two hosts (the lab's clients').
//   - AddHostDelay, RemoveHostDelay: the proxies of every peer link of the
//     host; a link takes the slowest setting of its two ends. Delay acts
//     on peer links only: the lab's clients reach the nodes directly.
//   - Pause, Resume: SIGSTOP and SIGCONT to the node's process group.
//   - Crash: SIGKILL; the node's kernel then resets its connections.
//     With power loss, the host also goes silent (every link to and from
//     it cut until Restart) and its disk loses what was not synced.
//   - SetLoss: not offered here (ErrUnsupported, reported by Err).
//
// The peer addresses every node is started with are the real ones: in
// each node's namespace a redirect sends its connections to a peer
// through the local proxy of that link, so a program needs no notion of
// proxies.
package cluster
