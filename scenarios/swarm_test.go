package scenarios_test

import (
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/scenarios"
)

// TestSwarm: each seed draws its own faults and client mix, from the
// scenario's faults or from all; the draw is in the plan, and a swarm
// run replays bit-exactly from its plan alone.
func TestSwarm(t *testing.T) {
	sc, err := scenarios.Find("Mixed/everything-n5")
	require.NoError(t, err)
	shapes := map[string]bool{}
	for seed := int64(1); seed <= 20; seed++ {
		p, _, err := scenarios.SimConfig(sc, scenarios.Options{Seed: seed, HasSeed: true, Swarm: scenarios.SwarmScenario})
		require.NoError(t, err)
		require.NotNil(t, p.Swarm)
		require.NotEmpty(t, p.Swarm.Faults)
		for _, f := range p.Faults {
			assert.Contains(t, p.Swarm.Faults, f.Name, "only drawn faults run")
			assert.Contains(t, sc.Faults, f.Name, "drawn from the scenario's")
		}
		assert.Equal(t, p.Swarm.Clients, p.Clients)
		shapes[fmt.Sprint(p.Swarm.Faults, p.Clients, p.Rate)] = true
		again, _, err := scenarios.SimConfig(sc, scenarios.Options{Seed: seed, HasSeed: true, Swarm: scenarios.SwarmScenario})
		require.NoError(t, err)
		assert.Equal(t, p, again, "a seed draws the same shape every time")
	}
	assert.Greater(t, len(shapes), 15, "seeds draw different shapes")

	all, _, err := scenarios.SimConfig(sc, scenarios.Options{Seed: 3, HasSeed: true, Swarm: scenarios.SwarmAll})
	require.NoError(t, err)
	assert.Equal(t, scenarios.SwarmAll, all.Swarm.From)
	_, _, err = scenarios.SimConfig(sc, scenarios.Options{Seed: 3, HasSeed: true, Swarm: "some"})
	require.ErrorContains(t, err, `swarm "some"`)

	rep, err := scenarios.RunSim(sc, scenarios.Options{Seed: 4, HasSeed: true, Swarm: scenarios.SwarmScenario, Store: t.TempDir(), Out: io.Discard})
	require.NoError(t, err)
	_, plan, err := scenarios.ReadRun(rep.Dir)
	require.NoError(t, err)
	require.NotNil(t, plan.Swarm, "plan.json records the draw")
	again, exact, err := scenarios.ReplaySim(rep.Dir, scenarios.Options{Store: t.TempDir(), Out: io.Discard})
	require.NoError(t, err)
	assert.True(t, exact, "a swarm run replays bit-exactly from its plan")
	assert.Equal(t, rep.Info.Hash, again.Info.Hash)
}
