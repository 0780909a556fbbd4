package rrsim_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/rr_seq/rrsim"
	"github.com/seqlab/seqlab/simnet/sim"
)

// fired counts the trace's firings of each site.
func fired(r *sim.Result) map[string]int {
	out := map[string]int{}
	for _, l := range r.Trace {
		f := strings.Fields(l)
		if len(f) > 1 && strings.HasPrefix(f[1], "buggify-") {
			out[strings.TrimPrefix(f[1], "buggify-")]++
		}
	}
	return out
}

// busy is a run that reaches every site: disks (fsync), five nodes with
// quorums of three (hedges), clients that contend (retries), and a
// crash.
func busy(seed int64) plan {
	return plan{Config: sim.Config{Seed: seed, Nodes: 5, Clients: 8, Rate: 40, TimeLimit: 5 * time.Second,
		Faults: sim.Plan(seed, sim.Schedule{Faults: []string{"crash-one"}, Interval: time.Second, Duration: time.Second}, 4*time.Second)},
		rr: rrsim.Config{Persist: true}}
}

// TestSitesFireOnlyWhenEnabled: with no site enabled the run is the run
// without Buggify, bit for bit; with one enabled, that site and no other
// fires, and a share of the times it is reached.
func TestSitesFireOnlyWhenEnabled(t *testing.T) {
	plain, err := Run(busy(1), true)
	require.NoError(t, err)
	assert.Empty(t, fired(plain))
	for _, none := range []*rrsim.Buggify{{Seed: 7}, {Seed: 7, Sites: []rrsim.Site{}}} {
		cfg := busy(1)
		cfg.rr.Buggify = none
		r, err := Run(cfg, false)
		require.NoError(t, err)
		assert.Equal(t, plain.Hash, r.Hash, "no site enabled: the same run")
	}
	for _, site := range rrsim.Sites {
		t.Run(site, func(t *testing.T) {
			cfg := busy(1)
			cfg.rr.Buggify = &rrsim.Buggify{Seed: 7, Sites: []rrsim.Site{{Name: site, P: 0.2}}}
			r, err := Run(cfg, true)
			require.NoError(t, err)
			got := fired(r)
			assert.Greater(t, got[site], 0, "%s fires", site)
			assert.Len(t, got, 1, "only %s fires: %v", site, got)
			assert.NotEqual(t, plain.Hash, r.Hash)
		})
	}
}

// TestBuggifyReplays: the same sites and seed fire at the same places
// (the same hash), through the plan's JSON too; another seed fires
// elsewhere.
func TestBuggifyReplays(t *testing.T) {
	cfg := busy(2)
	cfg.rr.Buggify = rrsim.DrawBuggify(2, 0)
	require.NotEmpty(t, cfg.rr.Buggify.Sites, "seed 2 draws some sites")
	a, err := Run(cfg, false)
	require.NoError(t, err)
	b, err := json.Marshal(cfg.rr)
	require.NoError(t, err)
	var back rrsim.Config
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, cfg.rr, back)
	cfg.rr = back
	again, err := Run(cfg, false)
	require.NoError(t, err)
	assert.Equal(t, a.Hash, again.Hash, "a replay of the plan is bit-exact")
	cfg.rr.Buggify = &rrsim.Buggify{Seed: cfg.rr.Buggify.Seed + 1, Sites: cfg.rr.Buggify.Sites}
	other, err := Run(cfg, false)
	require.NoError(t, err)
	assert.NotEqual(t, a.Hash, other.Hash, "another source fires elsewhere")
}

// TestDrawBuggify: the draw depends on the seed only, names known sites
// with shares in (0, 1], and over many seeds enables every site.
func TestDrawBuggify(t *testing.T) {
	seen := map[string]bool{}
	for seed := int64(1); seed <= 50; seed++ {
		b := rrsim.DrawBuggify(seed, 0)
		assert.Equal(t, b, rrsim.DrawBuggify(seed, 0))
		require.NoError(t, b.Validate())
		for _, s := range b.Sites {
			seen[s.Name] = true
		}
	}
	assert.Len(t, seen, len(rrsim.Sites))
	bad := rrsim.Config{Buggify: &rrsim.Buggify{Sites: []rrsim.Site{{Name: "no-such-site", P: 0.5}}}}.WithDefaults(3)
	assert.ErrorContains(t, bad.Validate(3), "unknown buggify site")
	bad.Buggify.Sites[0] = rrsim.Site{Name: rrsim.SiteRefuse, P: 0}
	assert.ErrorContains(t, bad.Validate(3), "p=0")
}

// TestSitesKeepPromises: the correct rr_seq holds its promises with every
// site firing often, in memory and on disk: the sites are things a node
// may legally do.
func TestSitesKeepPromises(t *testing.T) {
	var all []rrsim.Site
	for _, s := range rrsim.Sites {
		all = append(all, rrsim.Site{Name: s, P: 0.05})
	}
	for seed := int64(1); seed <= 6; seed++ {
		for _, persist := range []bool{false, true} {
			cfg := mixed(seed)
			cfg.rr.Persist = persist
			cfg.rr.Buggify = &rrsim.Buggify{Seed: uint64(seed), Sites: all}
			r, err := Run(cfg, false)
			require.NoError(t, err)
			res := check(t, r)
			require.Equal(t, checker.ValidTrue, res.Valid, "seed %d persist %v:\n%s", seed, persist, res.Summary())
		}
	}
}
