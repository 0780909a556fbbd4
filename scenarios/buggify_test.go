package scenarios_test

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/scenarios"
)

// TestBuggifyPlan: --buggify draws the sites from the seed into the plan,
// stops them with the last fault, keeps them out of crash faults' way,
// and a replay of the run dir is bit-exact; without it, the plan has no
// sites.
func TestBuggifyPlan(t *testing.T) {
	sc, err := scenarios.Find("Bug/rejoin-empty")
	require.NoError(t, err)
	plain, _, err := scenarios.SimConfig(sc, scenarios.Options{Seed: 42, HasSeed: true})
	require.NoError(t, err)
	assert.Nil(t, plain.Buggify)
	p, _, err := scenarios.SimConfig(sc, scenarios.Options{Seed: 42, HasSeed: true, Buggify: true})
	require.NoError(t, err)
	require.NotNil(t, p.Buggify)
	again, _, err := scenarios.SimConfig(sc, scenarios.Options{Seed: 42, HasSeed: true, Buggify: true})
	require.NoError(t, err)
	assert.Equal(t, p.Buggify, again.Buggify, "the draw is the seed's")
	last := p.Faults[len(p.Faults)-1]
	assert.Equal(t, last.At+last.For, p.Buggify.Until)
	for _, c := range p.Buggify.Calm {
		for _, f := range p.Faults {
			assert.True(t, c.To <= f.At || c.From >= f.At+f.For, "calm %v clear of %s at %v", c, f.Name, f.At)
		}
	}

	store := t.TempDir()
	rep, err := scenarios.RunSim(sc, scenarios.Options{Seed: 42, HasSeed: true, Buggify: true, Store: store, Out: io.Discard})
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(rep.Dir, scenarios.PlanFile))
	require.NoError(t, err)
	assert.Contains(t, string(b), `"buggify": {`)
	_, replay, err := scenarios.ReadRun(rep.Dir)
	require.NoError(t, err)
	assert.Equal(t, p.Buggify, replay.Buggify)
	again2, exact, err := scenarios.ReplaySim(rep.Dir, scenarios.Options{Store: store, Out: io.Discard})
	require.NoError(t, err)
	assert.True(t, exact, "replay hash %s, want %s", again2.Info.Hash, rep.Info.Hash)

	flake := scenarios.Options{System: scenarios.FlakeSeq, Seed: 1, HasSeed: true, Buggify: true}
	for _, s := range scenarios.Catalogue() {
		if slices.Contains(s.Systems, scenarios.FlakeSeq) && s.Supports(scenarios.ModeSim) {
			_, _, err := scenarios.SimConfig(s, flake)
			assert.ErrorContains(t, err, "no seed-fired sites")
			break
		}
	}
}

// TestBuggifyFindsTheRareBug: a buggify hunt catches Bug/rejoin-empty
// within 200 seeds (the sweeps of the README: after 14 to 117), where a
// plain hunt needs hundreds (after 84 to 1,378).
func TestBuggifyFindsTheRareBug(t *testing.T) {
	sc, err := scenarios.Find("Bug/rejoin-empty")
	require.NoError(t, err)
	rep, err := scenarios.HuntSeeds(sc, scenarios.HuntPlan{From: 1, To: 200, Workers: 2, MaxFailures: 1},
		scenarios.Options{Buggify: true}, nil)
	require.NoError(t, err)
	require.Empty(t, rep.Errors)
	require.NotEmpty(t, rep.Hits, "the buggify hunt lost the rare bug")
	t.Logf("first failing seed %d", slices.Min(rep.Hits))
}

// TestBuggifyKeepsPromises: the sites are things a correct node may do,
// so scenarios that hold their promises hold them with the sites on.
func TestBuggifyKeepsPromises(t *testing.T) {
	for _, name := range []string{"Crash/restart-one-n3-memory", "Partition/halves-n3", "Disk/lose-unsynced-n3"} {
		sc, err := scenarios.Find(name)
		require.NoError(t, err)
		rep, err := scenarios.HuntSeeds(sc, scenarios.HuntPlan{From: 1, To: 40, Workers: 2}, scenarios.Options{Buggify: true}, nil)
		require.NoError(t, err)
		assert.Empty(t, rep.Errors, name)
		assert.Empty(t, rep.Hits, "%s: seeds that violate a promise with the sites on: %v", name, rep.Hits)
	}
}
