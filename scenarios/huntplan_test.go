package scenarios_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/scenarios"
)

// A hunt whose seeds do not all agree: a total crash after 3 simulated
// seconds catches the bug on some seeds of a 4-second run only.
func splitHunt(t *testing.T) (scenarios.Scenario, scenarios.Options) {
	sc, err := scenarios.Find("Bug/crash-all-in-memory")
	require.NoError(t, err)
	return sc, scenarios.Options{TimeLimit: 4 * time.Second}
}

// TestShardsMergeToTheWholeHunt: two shards and a merge find exactly the
// seeds one unsharded hunt finds.
func TestShardsMergeToTheWholeHunt(t *testing.T) {
	sc, opts := splitHunt(t)
	whole, err := scenarios.HuntSeeds(sc, scenarios.HuntPlan{From: 1, To: 40, Workers: 2}, opts, nil)
	require.NoError(t, err)
	require.NotEmpty(t, whole.Hits)
	require.Less(t, len(whole.Hits), 40, "a hunt whose seeds disagree")

	store := t.TempDir()
	var dirs []string
	var seen int64
	for i := range int64(2) {
		h, err := scenarios.HuntSeeds(sc, scenarios.HuntPlan{From: 1, To: 40, Workers: 2, Shard: i, Shards: 2, Store: store}, opts, nil)
		require.NoError(t, err)
		require.EqualValues(t, 20, h.Total)
		for _, s := range h.Hits {
			require.EqualValues(t, i, (s-1)%2, "shard %d ran seed %d", i, s)
		}
		seen += h.Done
		dirs = append(dirs, h.Dir)
	}
	require.EqualValues(t, 40, seen)
	m, err := scenarios.MergeHunts(store) // found at any depth
	require.NoError(t, err)
	assert.Equal(t, whole.Hits, m.Hits)
	assert.EqualValues(t, 40, m.Done)
	assert.Equal(t, dirs, m.Dirs)

	_, err = scenarios.MergeHunts(dirs[0])
	require.ErrorContains(t, err, "shard 1/2 of Bug/crash-all-in-memory seeds 1-40 is missing")
	_, err = scenarios.MergeHunts(dirs[0], dirs[0])
	require.ErrorContains(t, err, "shard 0/2 twice")
	other, err := scenarios.HuntSeeds(sc, scenarios.HuntPlan{From: 1, To: 41, Workers: 2, Shard: 1, Shards: 2, Store: t.TempDir()}, opts, nil)
	require.NoError(t, err)
	_, err = scenarios.MergeHunts(dirs[0], other.Dir)
	require.ErrorContains(t, err, "not one hunt")
	_, err = scenarios.MergeHunts(t.TempDir())
	require.ErrorContains(t, err, "no hunt journal")
}

// TestHuntResumes: a hunt interrupted and resumed runs every seed once and
// finds what an uninterrupted hunt finds; a torn last journal line is
// run again; without --resume a hunt starts afresh.
func TestHuntResumes(t *testing.T) {
	sc, opts := splitHunt(t)
	whole, err := scenarios.HuntSeeds(sc, scenarios.HuntPlan{From: 1, To: 30, Workers: 2}, opts, nil)
	require.NoError(t, err)

	store := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	o := opts
	o.Context = ctx
	first, err := scenarios.HuntSeeds(sc, scenarios.HuntPlan{From: 1, To: 30, Workers: 2, Store: store}, o, func(p scenarios.HuntProgress) {
		if p.Done == 10 {
			cancel()
		}
	})
	require.NoError(t, err)
	require.True(t, first.Interrupted)
	require.Less(t, first.Done, int64(30))

	// A machine lost mid-write leaves half a line.
	path := filepath.Join(first.Dir, scenarios.JournalFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString("29 h")
	require.NoError(t, err)
	require.NoError(t, f.Close())

	second, err := scenarios.HuntSeeds(sc, scenarios.HuntPlan{From: 1, To: 30, Workers: 2, Store: store, Resume: true}, opts, nil)
	require.NoError(t, err)
	assert.Equal(t, first.Dir, second.Dir, "the same journal")
	assert.Equal(t, first.Done, second.Resumed)
	assert.EqualValues(t, 30, second.Done)
	assert.Equal(t, whole.Hits, second.Hits)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Len(t, strings.Split(strings.TrimSpace(string(b)), "\n"), 31, "a header and one line per seed")

	m, err := scenarios.MergeHunts(second.Dir)
	require.NoError(t, err)
	assert.Equal(t, whole.Hits, m.Hits)

	// Finished: a resume runs nothing and reports what the hunt found.
	third, err := scenarios.HuntSeeds(sc, scenarios.HuntPlan{From: 1, To: 30, Workers: 2, Store: store, Resume: true}, opts, nil)
	require.NoError(t, err)
	assert.Equal(t, second.Dir, third.Dir)
	assert.EqualValues(t, 30, third.Resumed)
	assert.Equal(t, whole.Hits, third.Hits)
	// Without Resume, a hunt starts afresh in a directory of its own.
	fourth, err := scenarios.HuntSeeds(sc, scenarios.HuntPlan{From: 1, To: 30, Workers: 2, Store: store}, opts, nil)
	require.NoError(t, err)
	assert.NotEqual(t, second.Dir, fourth.Dir)
	assert.Zero(t, fourth.Resumed)
}

// TestHuntStopsAtMaxFailures: the hunt starts no seed after its K-th hit.
func TestHuntStopsAtMaxFailures(t *testing.T) {
	sc, err := scenarios.Find("Bug/r-plus-w-le-n")
	require.NoError(t, err)
	h, err := scenarios.HuntSeeds(sc, scenarios.HuntPlan{From: 1, To: 1000, Workers: 2, MaxFailures: 3},
		scenarios.Options{TimeLimit: 2 * time.Second}, nil)
	require.NoError(t, err)
	assert.True(t, h.Stopped)
	assert.GreaterOrEqual(t, len(h.Hits), 3)
	assert.Less(t, h.Done, int64(10), "no new seed after the third hit, bar one per worker")
	for _, bad := range []scenarios.HuntPlan{{From: 1, To: 5, Shard: 2, Shards: 2}, {From: 1, To: 5, Shard: 1}, {From: 1, To: 5, MaxFailures: -1}} {
		_, err := scenarios.HuntSeeds(sc, bad, scenarios.Options{}, nil)
		require.Error(t, err, "%+v", bad)
	}
}
