package sim

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A plan's fault can name its targets: the run acts on them, whatever
// its seed; a plan without targets reads and writes as before.
func TestFaultTargets(t *testing.T) {
	cfg := func(seed int64, targets ...string) Config {
		return Config{Seed: seed, Nodes: 3, Clients: 2, Sizes: []uint64{1}, TimeLimit: 3 * time.Second,
			Faults: []FaultSpec{{Name: "crash-one", At: time.Second, For: time.Second, Seed: 9, Targets: targets}}}
	}
	for seed := int64(1); seed <= 3; seed++ {
		r, err := Run(cfg(seed, "n3"), toy{}, false)
		require.NoError(t, err)
		require.Contains(t, string(r.History), `"nodes":["n3"]`, "seed %d: the named node crashes", seed)
		require.Contains(t, string(r.History), `"restarted":["n3"]`)
	}

	for _, tc := range []struct {
		targets []string
		want    string
	}{
		{[]string{"n4"}, "sim: fault crash-one at 1s: nemesis: crash-one: n4 names no node of the cluster (n1 n2 n3)"},
		{[]string{"n1", "n2"}, "sim: fault crash-one at 1s: nemesis: crash-one takes 1 target on 3 nodes (the nodes to crash), got 2: n1 n2"},
	} {
		_, err := Run(cfg(1, tc.targets...), toy{}, false)
		require.EqualError(t, err, tc.want)
	}
	c := cfg(1)
	c.Faults[0] = FaultSpec{Name: "client-crash", At: time.Second, Targets: []string{"k2"}}
	_, err := Run(c, toy{}, false)
	require.EqualError(t, err, "sim: fault client-crash at 1s: nemesis: client-crash: k2 names no buffering client of the cluster (there are none)")
	c.Faults[0].Name = "slow"
	_, err = Run(c, toy{}, false)
	require.EqualError(t, err, "nemesis: slow takes no targets")

	old := `{"name":"crash-one","at_ns":1000000000,"for_ns":1000000000,"seed":9}`
	var f FaultSpec
	require.NoError(t, json.Unmarshal([]byte(old), &f))
	require.Nil(t, f.Targets)
	b, err := json.Marshal(f)
	require.NoError(t, err)
	require.Equal(t, old, string(b), "a plan without targets is written as before")
	b, err = json.Marshal(FaultSpec{Name: "pause", Targets: []string{"n1"}})
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(string(b), `"targets":["n1"]}`), string(b))
}
