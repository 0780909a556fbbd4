package scenarios_test

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/scenarios"
	"github.com/seqlab/seqlab/scenarios/script"
)

// The catalogue's scripts all parse, their names are new, and at least
// three of them have explicit timelines, one a shrunk planted bug.
func TestCatalogueScripts(t *testing.T) {
	for _, err := range scenarios.ScriptErrors() {
		t.Error(err)
	}
	seen := map[string]bool{}
	var timed []string
	for _, sc := range scenarios.Catalogue() {
		require.False(t, seen[sc.Name], "two scenarios are named %s", sc.Name)
		seen[sc.Name] = true
		if sc.Source != nil && len(sc.Timeline) > 0 {
			timed = append(timed, sc.Name)
		}
	}
	for _, name := range []string{"Bug/flake-clock-rollback", "Partition/scripted-isolate-then-crash-n3", "Bug/ack-before-sync-shrunk"} {
		assert.Contains(t, timed, name, "a script with an explicit timeline")
	}
}

// Every scenario of the catalogue, printed as a script (what seqlab list
// --script prints), reads back to a scenario that runs the same in the
// simulator, bit for bit, on every system it applies to there: the same
// plan at its own settings, the same trace hash.
func TestCatalogueRoundTrip(t *testing.T) {
	n := 0
	for _, sc := range scenarios.Catalogue() {
		text := scenarios.ToScript(sc).Format()
		back, err := scenarios.ParseScript(sc.Name+".scn", text)
		require.NoError(t, err, "%s as a script:\n%s", sc.Name, text)
		again := scenarios.ToScript(back).Format()
		require.Equal(t, string(text), string(again), "%s prints the same twice", sc.Name)
		for _, sys := range scenarios.Systems() {
			if !sc.RunsOn(sys.Name, scenarios.ModeSim) {
				continue
			}
			require.True(t, back.RunsOn(sys.Name, scenarios.ModeSim), "%s on %s", sc.Name, sys.Name)
			n++
			want, seed, err := scenarios.SimConfig(sc, scenarios.Options{System: sys.Name})
			require.NoError(t, err)
			got, seed2, err := scenarios.SimConfig(back, scenarios.Options{System: sys.Name})
			require.NoError(t, err)
			require.Equal(t, seed, seed2, "%s: the default seed", sc.Name)
			require.Equal(t, planJSON(t, want), planJSON(t, got), "%s on %s: the script's plan\n%s", sc.Name, sys.Name, text)

			opts := scenarios.Options{System: sys.Name, Seed: 3, HasSeed: true, TimeLimit: simLimit}
			want, _, err = scenarios.SimConfig(sc, opts)
			require.NoError(t, err)
			got, _, err = scenarios.SimConfig(back, opts)
			require.NoError(t, err)
			a, err := want.Run(false)
			require.NoError(t, err)
			b, err := got.Run(false)
			require.NoError(t, err)
			require.Equal(t, a.Hash, b.Hash, "%s on %s, seed 3: the script runs otherwise", sc.Name, sys.Name)
		}
	}
	require.Greater(t, n, 40, "scenarios and systems compared")
}

func planJSON(t *testing.T, p scenarios.SimPlan) string {
	b, err := json.MarshalIndent(p, "", " ")
	require.NoError(t, err)
	return string(b)
}

// Bug/flake-clock-rollback is caught in the simulator and over gRPC, and
// the same script without the planted bug keeps every promise in both.
func TestFlakeRollbackScript(t *testing.T) {
	sc, err := scenarios.Find("Bug/flake-clock-rollback")
	require.NoError(t, err)
	fixed := sc
	fixed.Cluster.FlakeClockRollback = false
	fixed.Expect = scenarios.Expect{}
	fixed.Name = "Clock/flake-clock-rollback-fixed"
	for _, c := range []struct {
		sc   scenarios.Scenario
		want string
	}{{sc, "CAUGHT"}, {fixed, "held"}} {
		opts := scenarios.Options{Store: t.TempDir(), Out: io.Discard}
		s, err := scenarios.RunSim(c.sc, opts)
		require.NoError(t, err)
		assert.True(t, s.Met(), relative(s).Block())
		assert.Contains(t, s.VerdictLine(), c.want)
		g, err := scenarios.Run(t, c.sc, opts)
		require.NoError(t, err)
		assert.True(t, g.Met(), relative(g).Block())
		assert.Contains(t, g.VerdictLine(), c.want)
	}
	// A plan, not a lucky seed: most seeds catch it.
	h, err := scenarios.Hunt(sc, 1, 20, 2, scenarios.Options{}, nil)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(h.Hits), 15, "seeds 1-20 that catch it: %v", h.Hits)
}

// The incident script runs on every system of the lab in the gRPC mode and keeps
// every promise, the explicit steps recorded in the history.
func TestIncidentScript(t *testing.T) {
	sc, err := scenarios.Find("Partition/scripted-isolate-then-crash-n3")
	require.NoError(t, err)
	for _, system := range sc.SystemNames() {
		if !slices.Contains(labSystems, system) || !sc.RunsOn(system, scenarios.ModeGRPC) {
			continue
		}
		t.Run(system, func(t *testing.T) {
			t.Parallel()
			rep, err := scenarios.Run(t, sc, scenarios.Options{System: system, Store: t.TempDir(), Out: io.Discard})
			require.NoError(t, err)
			assert.True(t, rep.Met(), relative(rep).Block())
			assert.Equal(t, []string{"5s start-partition-isolate", "9s start-crash-one", "12s stop-partition-isolate", "12s stop-crash-one"},
				rep.Faults, "heal-all stops every fault at once, in the order they started")
			assert.FileExists(t, filepath.Join(rep.Dir, scenarios.ScriptFile), "the run keeps its script")
		})
	}
}

// A shrunk planted bug becomes a script that runs, in the simulator, to
// the shrunk run bit for bit; its replay needs no file but its run
// directory's.
func TestShrunkScriptReplays(t *testing.T) {
	sc, err := scenarios.Find("Bug/set-if-greater")
	require.NoError(t, err)
	store := t.TempDir()
	rep, err := scenarios.RunSim(sc, scenarios.Options{Seed: 1, HasSeed: true, TimeLimit: simLimit, Store: store, Out: io.Discard})
	require.NoError(t, err)
	require.True(t, rep.Met())
	sh, err := scenarios.Shrink(rep.Dir, scenarios.Options{Store: store, Out: io.Discard})
	require.NoError(t, err)
	require.NotEmpty(t, sh.Script, sh.ScriptProblem)
	require.Equal(t, filepath.Join(sh.Report.Dir, scenarios.ShrunkFile), sh.Script)

	shrunk, err := scenarios.LoadScript(sh.Script)
	require.NoError(t, err)
	assert.Equal(t, "Bug/set-if-greater-shrunk", shrunk.Name)
	assert.Len(t, shrunk.Ops, sh.OpsAfter)
	assert.False(t, shrunk.Supports(scenarios.ModeGRPC), "spelt-out operations run in the simulator only")
	again, err := scenarios.RunSim(shrunk, scenarios.Options{Store: store, Out: io.Discard})
	require.NoError(t, err)
	assert.Equal(t, sh.Report.Info.Hash, again.Info.Hash, "the script replays the shrunk run bit for bit")
	assert.True(t, again.Met(), relative(again).Block())

	replay, exact, err := scenarios.ReplaySim(again.Dir, scenarios.Options{Store: store, Out: io.Discard})
	require.NoError(t, err)
	assert.True(t, exact, "a script's run replays from its run directory alone")
	assert.True(t, replay.Met())

	// Shrinking the script's run again starts from the script.
	sh2, err := scenarios.Shrink(again.Dir, scenarios.Options{Store: store, Out: io.Discard})
	require.NoError(t, err)
	assert.Equal(t, sh.OpsAfter, sh2.OpsAfter, "1-minimal already")
	require.NotEmpty(t, sh2.Script, sh2.ScriptProblem)
}

// The lab refuses, whole and at the line that says it, what the parser
// cannot know: a planted bug on a system that has no such bug.
func TestBadScriptForTheLab(t *testing.T) {
	src := []byte("name Bug/x\nsystems rr_seq\nplant flake-clock-rollback\n")
	_, err := scenarios.ParseScript("x.scn", src)
	require.Error(t, err)
	var es script.Errors
	require.True(t, errors.As(err, &es))
	require.Len(t, es, 1)
	assert.Equal(t, "x.scn", es[0].File)
	assert.Equal(t, 3, es[0].Line)
	assert.Contains(t, es[0].Error(), "x.scn:3: the scenario applies to no system under test: not rr_seq, as it plants flake_seq's bug")

	_, err = scenarios.ParseScript("y.scn", []byte("name A/b\nat 1s start crash-one n4\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "y.scn:2: crash-one: n4 names no node of the cluster")

	_, err = scenarios.LoadScript(filepath.Join(t.TempDir(), "missing.scn"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// A run directory of a script keeps the script, and a run directory whose
// script is not the run's scenario is refused.
func TestRunScenario(t *testing.T) {
	dir := t.TempDir()
	sc, err := scenarios.RunScenario(dir, "Bug/set-if-greater")
	require.NoError(t, err)
	assert.Nil(t, sc.Source, "no script: the catalogue's")
	require.NoError(t, os.WriteFile(filepath.Join(dir, scenarios.ScriptFile), []byte("name A/b\n"), 0o644))
	sc, err = scenarios.RunScenario(dir, "A/b")
	require.NoError(t, err)
	assert.Equal(t, "A/b", sc.Name)
	_, err = scenarios.RunScenario(dir, "Bug/set-if-greater")
	require.Error(t, err)
}

// Every script of the catalogue that runs in the simulator reaches its
// expected verdict there at its own seed; the regression scenarios are
// caught.
func TestCatalogueScriptsRun(t *testing.T) {
	for _, sc := range scenarios.Catalogue() {
		if sc.Source == nil {
			continue
		}
		for _, system := range sc.SystemNames() {
			if !slices.Contains(labSystems, system) || !sc.RunsOn(system, scenarios.ModeSim) {
				continue
			}
			cfg, _, err := scenarios.SimConfig(sc, scenarios.Options{System: system})
			require.NoError(t, err)
			out, err := scenarios.Simulate(sc, cfg)
			require.NoError(t, err)
			assert.True(t, out.Met(), "%s on %s: %v\n%s", sc.Name, system, out.Problems, out.Results.Summary())
		}
	}
}

// Whatever script the lab takes prints back (ToScript) as a script it
// takes, of the same scenario: the same plan in the simulator.
func FuzzScriptRoundTrip(f *testing.F) {
	for _, pattern := range []string{"testdata/*.scn", "script/testdata/ok/*.scn"} {
		paths, err := filepath.Glob(pattern)
		require.NoError(f, err)
		for _, p := range paths {
			b, err := os.ReadFile(p)
			require.NoError(f, err)
			f.Add(b)
		}
	}
	f.Add([]byte("name A/b\ntime-limit 5s\nat 1s start reset n1 n2\nat 1s stop reset\nat 2s start crash-one\nrandom 0s..4s faults=pause\nrandom 0s..4s faults=loss\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		sc, err := scenarios.ParseScript("fuzz.scn", src)
		if err != nil {
			var es script.Errors
			require.True(t, errors.As(err, &es), "%v", err)
			return
		}
		text := scenarios.ToScript(sc).Format()
		back, err := scenarios.ParseScript("printed.scn", text)
		require.NoError(t, err, "%s", text)
		for _, sys := range scenarios.Systems() {
			if !sc.RunsOn(sys.Name, scenarios.ModeSim) {
				continue
			}
			want, _, err := scenarios.SimConfig(sc, scenarios.Options{System: sys.Name})
			if err != nil {
				return // a plan the simulator refuses (a sequence name, say), in both
			}
			got, _, err := scenarios.SimConfig(back, scenarios.Options{System: sys.Name})
			require.NoError(t, err)
			require.Equal(t, planJSON(t, want), planJSON(t, got), "%s", text)
		}
	})
}
