package scenarios_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/internal/leftover"
	"github.com/seqlab/seqlab/process/netns"
	"github.com/seqlab/seqlab/scenarios"
)

// Which scenarios the process mode runs, and why not the others: it has
// no loss fault and no flag for the planted coordinator bugs, and a
// program of one's own takes no rrseq-node flag.
func TestProcessSupport(t *testing.T) {
	for _, tc := range []struct {
		name string
		own  bool
		want string
	}{
		{"Partition/halves-n3", false, ""},
		{"Disk/lose-unsynced-n3", false, ""},
		{"Bug/ack-before-sync", false, ""},
		{"Bug/set-if-greater", false, ""},
		{"Partition/halves-n3", true, ""},
		{"Net/reset-loss-n3", false, "fault loss: the process mode has no loss fault"},
		{"Mixed/everything-n5", false, "fault loss"},
		{"Bug/trust-cache", false, "plants a coordinator bug"},
		{"Bug/raft-rejoin-empty", false, "rejoins without its state, which no node binary has a flag for"},
		{"Crash/all-in-memory-no-bootstrap-n3", false, "cannot drop --bootstrap"},
		{"Bug/ack-before-sync", true, "a bug planted in rrseq-node"},
	} {
		sc, err := scenarios.Find(tc.name)
		require.NoError(t, err)
		got := sc.WhyNotProcess(tc.own)
		if tc.want == "" {
			assert.Empty(t, got, "%s (own %v)", tc.name, tc.own)
			assert.True(t, tc.own || sc.Supports(scenarios.ModeProcess), tc.name)
			continue
		}
		assert.Contains(t, got, tc.want, "%s (own %v)", tc.name, tc.own)
		if !tc.own {
			assert.False(t, sc.Supports(scenarios.ModeProcess), tc.name)
		}
	}

	sc, err := scenarios.Find("Partition/halves-n3")
	require.NoError(t, err)
	_, _, err = scenarios.PrepareProcess(sc, scenarios.Options{}, scenarios.Process{Bin: "x", Promises: []string{"unique", "fast"}})
	assert.ErrorContains(t, err, `promise: unknown property "fast" (known: unique,linearizable,`)
	_, _, err = scenarios.PrepareProcess(sc, scenarios.Options{}, scenarios.Process{})
	assert.ErrorContains(t, err, "no node command and no rr_seq binary")
	got, _, err := scenarios.PrepareProcess(sc, scenarios.Options{System: scenarios.RaftSeq}, scenarios.Process{BinDir: "bin"})
	require.NoError(t, err)
	assert.Equal(t, scenarios.RaftSeq, got.System(), "raft_seq runs its own binary")
	got, _, err = scenarios.PrepareProcess(sc, scenarios.Options{}, scenarios.Process{Command: "x {listen}", Promises: []string{"unique"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"unique"}, got.Promises, "a program's own promises decide its verdict")
	for cmd, want := range map[string]string{
		"prog {port}":        "unknown placeholder {port}",
		"prog --name {name}": "it must take {listen}",
		"prog 'unclosed":     "node command",
	} {
		_, _, err = scenarios.PrepareProcess(sc, scenarios.Options{}, scenarios.Process{Command: cmd})
		assert.ErrorContains(t, err, want, cmd)
	}
	disk, err := scenarios.Find("Disk/lose-unsynced-n3")
	require.NoError(t, err)
	_, _, err = scenarios.PrepareProcess(disk, scenarios.Options{}, scenarios.Process{Command: "prog {listen}"})
	assert.ErrorContains(t, err, "Disk/lose-unsynced-n3 keeps its nodes on disk, and the command must take {data_dir}")
	grpcOnly := sc
	grpcOnly.Modes = []string{scenarios.ModeGRPC}
	_, _, err = scenarios.PrepareProcess(grpcOnly, scenarios.Options{}, scenarios.Process{Bin: "x"})
	assert.ErrorContains(t, err, "does not run in process mode")

	assert.Equal(t, `seqlab run Partition/halves-n3 --mode process --seed 3 --system raft_seq`,
		scenarios.ProcessReplayCommand(sc.Name, 3, scenarios.Options{System: scenarios.RaftSeq}, scenarios.Process{}))
	assert.Equal(t, `seqlab run Partition/halves-n3 --mode process --seed 3 --time-limit 10s --node-cmd 'prog --listen {listen}' --promise unique`,
		scenarios.ProcessReplayCommand(sc.Name, 3, scenarios.Options{TimeLimit: 10 * time.Second},
			scenarios.Process{Command: "prog --listen {listen}", Promises: []string{"unique"}}))
}

// One short run through RunProcess: rrseq-node built by the lab, on the
// FUSE disk, a power loss of a majority; the run directory records what
// the mode promises to record, and nothing is left on the machine.
func TestProcessRun(t *testing.T) {
	if os.Getenv("SEQLAB_PROCESS") != "1" {
		t.Skip("runs rrseq-node processes in wall time: set SEQLAB_PROCESS=1")
	}
	if err := netns.Check(); err != nil {
		t.Skipf("the process mode needs root (network namespaces, nftables): %v", err)
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("the process mode needs /dev/fuse: %v", err)
	}
	bin, err := scenarios.BuildRRSeqNode(t.TempDir())
	require.NoError(t, err)
	sc, err := scenarios.Find("Disk/lose-unsynced-n3")
	require.NoError(t, err)
	store := t.TempDir()
	before := leftover.Take()
	rep, err := scenarios.RunProcess(sc, scenarios.Options{TimeLimit: 8 * time.Second, Store: store, Out: io.Discard}, scenarios.Process{Bin: bin})
	require.NoError(t, err)
	show(t, rep)
	rec, err := scenarios.ReadProcessRecord(rep.Dir)
	require.NoError(t, err)
	require.NoError(t, leftover.Since(before, leftover.Mine{NetNS: rec.Namespaces, Under: store}))
	assert.True(t, rep.Met(), rep.Problems)
	assert.Equal(t, scenarios.ModeProcess, rep.Info.Mode)
	assert.Greater(t, rep.Verdict.Ops["ok"], 100)
	assert.Positive(t, rep.Info.Setup)
	assert.Positive(t, rep.Info.Cleanup)
	assert.GreaterOrEqual(t, rep.Info.SimTime, 8*time.Second, "the run's own time is wall time")
	assert.Contains(t, rep.Block(), "time      8.0s of real time")
	assert.Equal(t, 1, rep.Verdict.Faults["lose-unsynced-majority"], rep.Faults)

	require.Len(t, rec.Commands, 3)
	assert.Contains(t, rec.Commands[0], " --data-dir "+filepath.Join(rep.Dir, "nodes", "n1", "data"))
	assert.Contains(t, rec.Template, "--peer-timeout 250ms --round-life 500ms", "the grpc mode's timers")
	assert.Len(t, rec.Namespaces, 5, "the hub's, one per node, and the clients'")
	log, err := os.ReadFile(filepath.Join(rep.Dir, "nodes", "n1.log"))
	require.NoError(t, err)
	assert.Contains(t, string(log), "=== start 1 of n1")
	assert.False(t, strings.Contains(rep.Info.Replay, "go test"), rep.Info.Replay)
}

// raft_seq and flake_seq in the process mode, as rr_seq: each system's
// own binary, built by the lab, run with the scenario's settings and the
// grpc mode's timers, one short run each. raft_seq's nodes start
// milliseconds apart and must form one cluster (they once did not: see
// raft_seq's package doc), then survive a partition; flake_seq's keep
// their high-water marks on the FUSE disk through a power loss.
func TestProcessSystems(t *testing.T) {
	if os.Getenv("SEQLAB_PROCESS") != "1" {
		t.Skip("runs node processes in wall time: set SEQLAB_PROCESS=1")
	}
	if err := netns.Check(); err != nil {
		t.Skipf("the process mode needs root (network namespaces, nftables): %v", err)
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("the process mode needs /dev/fuse: %v", err)
	}
	bins := t.TempDir()
	for _, tc := range []struct {
		system, scenario string
		template         []string
	}{
		{scenarios.RaftSeq, "Partition/halves-n3", []string{"raftseq-node ", " --in-memory", " --election-timeout 250ms --tick 50ms --request-timeout 980ms"}},
		{scenarios.FlakeSeq, "Disk/lose-unsynced-n3", []string{"flakeseq-node ", " --node-id {index}", " --data-dir {data_dir}"}},
	} {
		t.Run(tc.system, func(t *testing.T) {
			sc, err := scenarios.Find(tc.scenario)
			require.NoError(t, err)
			store := t.TempDir()
			before := leftover.Take()
			rep, err := scenarios.RunProcess(sc, scenarios.Options{System: tc.system, TimeLimit: 10 * time.Second, Store: store, Out: io.Discard},
				scenarios.Process{BinDir: bins})
			require.NoError(t, err)
			show(t, rep)
			rec, err := scenarios.ReadProcessRecord(rep.Dir)
			require.NoError(t, err)
			require.NoError(t, leftover.Since(before, leftover.Mine{NetNS: rec.Namespaces, Under: store}))
			assert.True(t, rep.Met(), rep.Problems)
			assert.Equal(t, tc.system, rep.Info.System)
			assert.Greater(t, rep.Verdict.Ops["ok"], 100)
			for _, want := range tc.template {
				assert.Contains(t, rec.Template, want)
			}
			assert.Contains(t, rep.Info.Replay, "--system "+tc.system)
		})
	}
}
