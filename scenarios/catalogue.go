package scenarios

import (
	"embed"
	"path"
	"slices"
	"sync"
	"time"

	"github.com/seqlab/seqlab/rr_seq"
)

// The catalogue's scenarios written as scripts (package script), one a
// file: they join the Go-defined ones below.
//
//go:embed testdata/*.scn
var scriptFiles embed.FS

// scripted parses the catalogue's scripts once, on first use (after
// every init has registered its system): the scenarios, and what is
// wrong with any that do not parse, which TestCatalogueScripts reports.
var scripted = sync.OnceValues(func() ([]Scenario, []error) {
	var out []Scenario
	var errs []error
	files, _ := scriptFiles.ReadDir("testdata")
	for _, f := range files {
		name := path.Join("scenarios", "testdata", f.Name())
		src, err := scriptFiles.ReadFile(path.Join("testdata", f.Name()))
		if err == nil {
			var sc Scenario
			if sc, err = ParseScript(name, src); err == nil {
				out = append(out, sc)
				continue
			}
		}
		errs = append(errs, err)
	}
	return out, errs
})

// ScriptErrors says what is wrong with the catalogue's scripts that do
// not parse; they are left out of it.
func ScriptErrors() []error {
	_, errs := scripted()
	return errs
}

// allScenarios is the Go-defined scenarios, then the scripted ones.
func allScenarios() []Scenario {
	sc, _ := scripted()
	return append(slices.Clone(catalogue), sc...)
}

// The catalogue. Each entry is data; Run plays any of them. Names are
// "Group/what": the tests run one group per test function, so that
// `go test ./scenarios -run Partition` selects the partition group.
var catalogue = []Scenario{
	// Partitions of each shape, on 3 and 5 nodes.
	partition("isolate", 3, "partition-isolate", "one node cut off from the others"),
	partition("isolate", 5, "partition-isolate", "one node cut off from the others"),
	partition("halves", 3, "partition-halves", "a random minority cut off from the majority"),
	partition("halves", 5, "partition-halves", "a random minority cut off from the majority"),
	partition("ring", 5, "partition-ring", "every node sees a different majority"),
	partition("bridge", 3, "partition-bridge", "two sides that only a bridge node joins"),
	partition("bridge", 5, "partition-bridge", "two sides that only a bridge node joins"),
	partition("oneway", 3, "partition-oneway", "a link cut in one direction only"),
	partition("oneway", 5, "partition-oneway", "a link cut in one direction only"),

	// Crashes.
	{
		Name: "Crash/restart-one-n3-memory", Description: "one in-memory node crashes and comes back empty; it recovers from its peers before it serves",
		Cluster: Cluster{Nodes: 3}, Faults: []string{"crash-one"},
	},
	{
		Name: "Crash/all-in-memory-no-bootstrap-n3", Description: "every in-memory node crashes; restarted without --bootstrap, the cluster stays unavailable instead of starting over",
		Systems: []string{RRSeq},
		Cluster: Cluster{Nodes: 3, NoBootstrapOnRestart: true}, Faults: []string{"crash-all"},
		// Safe by staying unavailable: it does not promise liveness.
		Promises: []string{"unique", "linearizable"},
	},
	{
		Name: "Crash/restart-one-n5-disk", Description: "one node crashes and restarts from its disk",
		Cluster: Cluster{Nodes: 5, Persist: Disk}, Faults: []string{"crash-one"},
	},
	{
		Name: "Crash/majority-n5-disk", Description: "a majority crashes: no quorum until they restart from disk",
		Cluster: Cluster{Nodes: 5, Persist: Disk}, Faults: []string{"crash-majority"},
	},
	{
		Name: "Crash/total-power-loss-n3-disk", Description: "every node loses power at once; fsynced state must survive",
		Cluster: Cluster{Nodes: 3, Persist: Disk}, Faults: []string{"power-loss-all"},
	},
	{
		Name: "Disk/lose-unsynced-n3", Description: "a majority loses power; unsynced writes are lost or torn",
		Cluster: Cluster{Nodes: 3, Persist: Disk}, Faults: []string{"lose-unsynced"},
	},
	{
		Name: "Disk/lose-unsynced-n5", Description: "a majority loses power; unsynced writes are lost or torn",
		Cluster: Cluster{Nodes: 5, Persist: Disk}, Faults: []string{"lose-unsynced", "crash-one"},
	},

	// Pauses, slow links, resets and loss.
	{
		Name: "Pause/one-n3", Description: "one node freezes (SIGSTOP) and resumes",
		Cluster: Cluster{Nodes: 3}, Faults: []string{"pause"},
	},
	{
		Name: "Pause/one-n5", Description: "one node freezes (SIGSTOP) and resumes",
		Cluster: Cluster{Nodes: 5}, Faults: []string{"pause"},
	},
	{
		Name: "Slow/network-n3", Description: "every link gets 50ms latency and 50ms jitter",
		Cluster: Cluster{Nodes: 3}, Faults: []string{"slow"},
	},
	{
		Name: "Slow/node-n5", Description: "one node's links get 200ms latency and 100ms jitter",
		Cluster: Cluster{Nodes: 5}, Faults: []string{"slow-node"},
	},
	{
		Name: "Net/reset-loss-n3", Description: "connections reset, new connections dropped",
		Cluster: Cluster{Nodes: 3}, Faults: []string{"reset", "loss"}, Interval: time.Second, FaultFor: 2 * time.Second,
	},

	// Clocks: each node reads its own, and the faults skew it. Only a
	// system that stamps IDs from its clock (flake_seq) meets them; the
	// others time out by virtual time alone.
	{
		Name: "Clock/skew-n3", Description: "one node's clock jumps ahead, steps back, strobes or drifts",
		Cluster:  Cluster{Nodes: 3},
		Workload: Workload{RangeClients: 4, IDClients: 2},
		Faults:   []string{"clock-offset", "clock-step-back", "clock-strobe", "clock-drift"},
	},
	{
		Name: "Clock/step-back-crash-n3", Description: "clocks step back, and nodes crash and restart from disk",
		Cluster:  Cluster{Nodes: 3, Persist: Disk},
		Workload: Workload{RangeClients: 4, IDClients: 2},
		Faults:   []string{"clock-step-back", "crash-one", "clock-step-back+crash-one"}, Interval: 2 * time.Second,
	},

	// Buffering clients that crash: gaps, all explained.
	{
		Name: "Client/crash-leaves-gaps-n3", Description: "buffering clients crash and lose their buffers: gaps, and the checker tells them apart",
		Cluster:  Cluster{Nodes: 3},
		Workload: Workload{RangeClients: 2, IDClients: 4, IDRangeSize: 16, Rate: 20},
		Faults:   []string{"client-crash"}, Interval: time.Second, FaultFor: time.Millisecond,
		Expect: Expect{LostBuffers: true},
	},

	// Everything at once, on 5 nodes with 10 clients, two sequences.
	{
		Name: "Mixed/everything-n5", Description: "every fault in turn, range and ID clients, two sequences",
		Cluster:  Cluster{Nodes: 5, Persist: Disk, Jitter: time.Millisecond},
		Workload: Workload{RangeClients: 6, IDClients: 4, Sizes: []uint64{1, 2, 5, 50}, Names: []string{"orders", "users"}},
		Faults: []string{"partition-isolate", "partition-halves", "partition-ring", "partition-bridge", "partition-oneway",
			"crash-one", "crash-majority", "lose-unsynced", "pause", "slow", "slow-node", "reset", "loss", "client-crash"},
		Interval: time.Second, FaultFor: 1500 * time.Millisecond, InTurn: true, TimeLimit: time.Minute,
	},
	{
		Name: "Mixed/at-once-n5", Description: "faults together: a partition with a crash, a pause on slow links, a one-way cut with a power loss",
		Cluster: Cluster{Nodes: 5, Persist: Disk, Jitter: time.Millisecond},
		Faults:  []string{"partition-isolate+crash-one", "pause+slow", "partition-oneway+lose-unsynced"}, InTurn: true,
	},
	{
		Name: "Speed/healthy-n5-c10", Description: "no faults: 5 nodes, 10 clients, 30 simulated seconds (the speed benchmark)",
		Cluster:  Cluster{Nodes: 5},
		Workload: Workload{RangeClients: 10},
	},

	// Planted bugs: each must be caught.
	{
		Name: "Bug/set-if-greater", Description: "the original write rule: two coordinators with one base and different sizes both win",
		Systems:  []string{RRSeq},
		Cluster:  Cluster{Nodes: 3, WriteRule: rr_seq.SetIfGreater, Jitter: 2 * time.Millisecond},
		Workload: Workload{RangeClients: 8, Sizes: []uint64{1, 2, 5, 13}, Rate: 20},
		Expect:   Expect{Violates: []string{"unique"}},
	},
	{
		Name: "Bug/r-plus-w-le-n", Description: "R=1, W=1 on 3 nodes: reads miss writes, writes do not meet",
		Systems: []string{RRSeq},
		Cluster: Cluster{Nodes: 3, R: 1, W: 1, Unsafe: true},
		Expect:  Expect{Violates: []string{"unique"}},
	},
	{
		Name: "Bug/crash-all-in-memory", Description: "total crash of in-memory nodes: every sequence restarts at 1",
		Systems: []string{RRSeq, RaftSeq},
		Cluster: Cluster{Nodes: 3}, Faults: []string{"crash-all"},
		Expect: Expect{Violates: []string{"unique"}},
	},
	{
		Name: "Bug/ack-before-sync", Description: "nodes acknowledge writes they never fsynced; a power loss takes them back",
		Systems: []string{RRSeq, RaftSeq},
		Cluster: Cluster{Nodes: 3, Persist: Disk, AckBeforeSync: true}, Faults: []string{"power-loss-all"},
		Expect: Expect{Violates: []string{"unique"}},
	},
	{
		Name: "Bug/trust-cache", Description: "a coordinator writes from its cached value and counts refusals as acceptances",
		Systems:  []string{RRSeq},
		Cluster:  Cluster{Nodes: 3, Planted: rr_seq.Planted{TrustCache: true}},
		Workload: Workload{RangeClients: 4},
		Expect:   Expect{Violates: []string{"unique"}},
	},
	{
		Name: "Bug/rejoin-empty", Description: "an in-memory node restarts empty and votes at once, without recovering: rare, a few seeds in a thousand",
		Systems: []string{RRSeq},
		Cluster: Cluster{Nodes: 3, Planted: rr_seq.Planted{RejoinEmpty: true}}, Faults: []string{"crash-one"},
		// Rare: one run would miss it; hunts catch it (12 of seeds 1-3000
		// in the simulator, which alone replays a hit exactly).
		Expect: Expect{Violates: []string{"unique"}, Rare: true},
		Modes:  []string{ModeSim},
	},
	{
		Name: "Bug/raft-rejoin-empty", Description: "a raft node that lost its state rejoins without asking its peers: a forgetful majority overwrites what was committed",
		Systems: []string{RaftSeq},
		Cluster: Cluster{Nodes: 3, Planted: rr_seq.Planted{RejoinEmpty: true}}, Faults: []string{"crash-majority"},
		// One run may miss it (about 1 seed in 6 catches it); hunts
		// catch it.
		Expect: Expect{Violates: []string{"unique"}, Rare: true},
		// The gRPC node has no such flag: the simulator alone plants it.
		Modes: []string{ModeSim},
	},
	{
		Name: "Bug/raft-rejoin-empty-mixed", Description: "the same forgetful raft node, among six other faults that dilute the crashes it needs: what swarm testing is for",
		Systems: []string{RaftSeq},
		Cluster: Cluster{Nodes: 3, Planted: rr_seq.Planted{RejoinEmpty: true}},
		Faults:  []string{"crash-majority", "partition-halves", "partition-isolate", "pause", "slow", "reset", "loss"},
		Expect:  Expect{Violates: []string{"unique"}, Rare: true},
		Modes:   []string{ModeSim},
	},
	{
		Name: "Bug/shun-reset", Description: "a coordinator never asks a peer again after a connection to it failed: safe, but nodes stay unavailable after the faults heal",
		Systems: []string{RRSeq},
		Cluster: Cluster{Nodes: 3, Planted: rr_seq.Planted{ShunReset: true}}, Faults: []string{"crash-one", "reset"},
		Expect: Expect{Violates: []string{"live"}},
		// The simulator tells the core a reset or refusal as such; over
		// gRPC the failures read otherwise, and one run may miss it.
		Modes: []string{ModeSim},
	},
	{
		Name: "Bug/late-join", Description: "a request joins a batch after its write was sent: its IDs lie past what the write claimed",
		Systems:  []string{RRSeq},
		Cluster:  Cluster{Nodes: 3, Planted: rr_seq.Planted{LateJoin: true}},
		Workload: Workload{RangeClients: 6, Rate: 20, Names: []string{"one"}},
		Expect:   Expect{Violates: []string{"unique"}},
	},
}

func partition(shape string, nodes int, fault, what string) Scenario {
	return Scenario{
		Name:        "Partition/" + shape + "-n" + string(rune('0'+nodes)),
		Description: what,
		Cluster:     Cluster{Nodes: nodes, Jitter: time.Millisecond},
		Faults:      []string{fault},
	}
}
