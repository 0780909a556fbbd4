package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/scenarios"
)

// TestCompare: seqlab compare runs every system a scenario applies to on
// the same seeds, prints a row each, and writes the table as JSON; a
// planted bug's row says caught; bad input changes nothing.
func TestCompare(t *testing.T) {
	inTest(t)
	store := t.TempDir()
	code, out, errOut := seqlab("compare", "Partition/halves-n3", "--seeds", "1-2", "--time-limit", "5s", "--store", store)
	require.Equal(t, 0, code, out+errOut)
	for _, system := range []string{scenarios.RRSeq, scenarios.RaftSeq, scenarios.FlakeSeq} {
		assert.Regexp(t, "\n"+system+" +2 +2/2 +held 2/2 ", out, "a row for %s", system)
	}
	assert.Contains(t, out, "not promised", "flake_seq promises no global order")
	assert.Contains(t, out, "n/a (sparse)", "flake_seq's gaps are n/a")
	b, err := os.ReadFile(filepath.Join(store, "compare", "Partition-halves-n3-sim-seeds-1-2.json"))
	require.NoError(t, err)
	var c scenarios.Comparison
	require.NoError(t, json.Unmarshal(b, &c))
	require.Len(t, c.Rows, 3)
	for _, r := range c.Rows {
		assert.Equal(t, 2, r.Seeds, r.System)
		assert.Greater(t, r.IDs, uint64(0), r.System)
		assert.Greater(t, r.MessagesPerID, 0.0, "the simulator counts %s's messages", r.System)
	}

	code, out, errOut = seqlab("compare", "Bug/ack-before-sync", "--seeds", "1-1", "--time-limit", "5s", "--store", store)
	require.Equal(t, 0, code, out+errOut)
	assert.Equal(t, 2, strings.Count(out, "caught 1/1"), "rr_seq and raft_seq both plant it:\n%s", out)

	code, out, errOut = seqlab("compare", "Partition/halves-n3", "--seeds", "1-1", "--systems", "rr_seq", "--mode", "grpc", "--time-limit", "3s", "--store", store)
	require.Equal(t, 0, code, out+errOut)
	assert.Regexp(t, "\nrr_seq +1 +1/1 +held 1/1 ", out)
	assert.NotContains(t, out, "raft_seq")

	before, err := os.ReadDir(filepath.Join(store, "compare"))
	require.NoError(t, err)
	for _, args := range [][]string{
		{"compare"},
		{"compare", "Partition/halves-n3", "--seeds", "5-1"},
		{"compare", "Partition/halves-n3", "--mode", "fast"},
		{"compare", "Partition/halves-n3", "--systems", "paxos"},
		{"compare", "Partition/nope"},
		{"compare", "Bug/set-if-greater", "--systems", "flake_seq"},
	} {
		code, _, errOut := seqlab(append(args, "--store", store)...)
		assert.Equal(t, 2, code, "%q", args)
		assert.NotEmpty(t, errOut, "%q", args)
	}
	after, err := os.ReadDir(filepath.Join(store, "compare"))
	require.NoError(t, err)
	assert.Len(t, after, len(before), "bad input writes nothing")
}
