// Package simnet is an in-process network for gRPC that partitions,
// delays, resets, crashes and pauses, in virtual time.
//
// A Network holds named hosts ("n1", "c1", ...). A host listens with
// Listen and dials with Dial or Dialer; gRPC runs over it unchanged through
// grpc.WithContextDialer and Server.Serve. No socket is opened.
//
// Every write travels over a directed link (from, to) and is delivered
// after the link's latency plus seeded random jitter. A connection stays
// FIFO, like TCP, and writes are pipelined: a 1ms link carries many writes
// per millisecond. Nothing in the package starts a goroutine or spins: a
// blocked Read, Write, Accept or Dial waits on channels and timers in its
// caller's goroutine, so inside a testing/synctest bubble time is virtual
// and minutes of simulated traffic pass in milliseconds. Outside a bubble
// the same code runs in real time.
//
// Faults, each reversible and safe to call concurrently:
//
//   - Partition cuts the links between groups of hosts, any shape; Cut
//     cuts one direction only; Heal and HealLink undo them. A cut link
//     blackholes: bytes wait and flow again on heal, as TCP retransmits,
//     unless the connection was closed meanwhile. Dials across a cut hang
//     until their context ends, as a SYN into a blackhole does.
//   - Reset resets the connections between two hosts: both ends see
//     ECONNRESET at once.
//   - SetLink and SetHost change the delay of a link or of every link of a
//     host (a slow machine) at run time, and ClearHost removes a host's
//     setting. A delay must lie within 0..MaxDelay; anything else is an
//     error and changes nothing.
//   - SetLoss drops a fraction of connection attempts (retried after
//     Config.SynRetry, as TCP retries a SYN) and resets a fraction of
//     connections. A TCP stream cannot lose bytes in its middle, so loss
//     is modelled at the connection level, never inside a stream.
//   - Crash closes a host's listener and resets all its connections at
//     once; the lab builds a new process object before Restart lets the
//     name listen again. A dial to a host where nothing listens is refused
//     (ECONNREFUSED) after one round trip, as the peer's kernel answers a
//     SYN with RST.
//   - PowerOff is a crash without the kernel: no reset leaves the machine,
//     so peers see silence (reads wait, writes queue, dials hang) until
//     their own timeouts; after Restart the machine resets the
//     connections it forgot.
//   - Pause freezes a host like SIGSTOP: it reads, writes, accepts and
//     dials nothing until Resume, and its peers see silence, not errors.
//
// A connection whose peer has closed behaves as on TCP: the next write
// succeeds and is lost, and later writes fail with EPIPE.
//
// Stats counts bytes, writes, connections and resets per link, and Events
// lists every fault with its virtual time so the lab can put faults into
// its history. All randomness comes from Config.Seed.
package simnet
