package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain runs the command itself when SEQLAB_MAIN=1, so that a test
// can run it as a process and send it a real signal.
func TestMain(m *testing.M) {
	if os.Getenv("SEQLAB_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

// seqlab runs the command and returns its exit status and output.
func seqlab(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// golden copies a checker golden history into a fresh run directory.
func golden(t *testing.T, name string) string {
	b, err := os.ReadFile(filepath.Join("..", "..", "checker", "testdata", name+".jsonl"))
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "history.jsonl"), b, 0o644))
	return dir
}

func TestCheckGolden(t *testing.T) {
	cases := map[string]int{
		"valid": 0, "concurrent-reordered": 0, "gaps-explained": 0, "gaps-unexplained": 0, "gaps-late-info": 0, "truncated": 0,
		"overlap": 1, "realtime": 1, "nonmonotonic": 1, "id-in-range": 1,
		"malformed": 2, "empty": 2, "nemesis-only": 2,
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			dir := golden(t, name)
			code, out, errOut := seqlab("check", dir)
			assert.Equal(t, want, code, out+errOut)
			assert.Contains(t, out, "verdict")
			assert.NoFileExists(t, filepath.Join(dir, "results.json"), "check writes nothing")
		})
	}
}

func TestCheckOutputs(t *testing.T) {
	dir := golden(t, "malformed")
	_, out, _ := seqlab("check", dir)
	assert.Contains(t, out, "line 3: not valid JSON")

	dir = golden(t, "truncated")
	_, out, _ = seqlab("check", filepath.Join(dir, "history.jsonl"))
	assert.Contains(t, out, "line 5: truncated last line")

	dir = golden(t, "overlap")
	code, out, _ := seqlab("check", dir, "--json")
	assert.Equal(t, 1, code)
	var res struct {
		Valid  any                       `json:"valid"`
		Checks map[string]map[string]any `json:"checks"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	assert.Equal(t, false, res.Valid)
	assert.Equal(t, false, res.Checks["unique"]["valid"])
	assert.Equal(t, []any{2.0, 3.0}, res.Checks["unique"]["ops"])
	assert.Contains(t, res.Checks["gap-free"], "unexplained_ids")
	assert.Contains(t, res.Checks, "stats")

	// A bare file gets nothing beside it; --out writes the results, and
	// porcupine's view, to a new file named for it.
	dir = t.TempDir()
	b, err := os.ReadFile(filepath.Join("..", "..", "checker", "testdata", "realtime.jsonl"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "realtime.jsonl"), b, 0o644))
	code, out, _ = seqlab("check", filepath.Join(dir, "realtime.jsonl"))
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "--out FILE writes the results")
	assert.Equal(t, []string{"realtime.jsonl"}, dirNames(t, dir))
	outDir := t.TempDir()
	res1 := filepath.Join(outDir, "recheck.json")
	code, out, _ = seqlab("check", filepath.Join(dir, "realtime.jsonl"), "--out", res1)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "porcupine: "+filepath.Join(outDir, "recheck.linearizable-default.html"))
	assert.Contains(t, out, "results in "+res1)
	assert.Equal(t, []string{"recheck.json", "recheck.linearizable-default.html"}, dirNames(t, outDir))
	var written struct {
		Valid any `json:"valid"`
	}
	rb, err := os.ReadFile(res1)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(rb, &written))
	assert.Equal(t, false, written.Valid)
	code, _, errOut := seqlab("check", filepath.Join(dir, "realtime.jsonl"), "--out", res1)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "exists: name a new file")
	assert.Equal(t, []string{"realtime.jsonl"}, dirNames(t, dir))

	// Gaps fail only when promised.
	dir = golden(t, "gaps-unexplained")
	code, _, _ = seqlab("check", "--promise", "unique,gap-free", dir)
	assert.Equal(t, 1, code)
}

// TestCheckNothingToCheck: a history without a client operation cannot
// be vouched for: exit 2, saying why, in the summary and in the JSON.
func TestCheckNothingToCheck(t *testing.T) {
	for _, name := range []string{"empty", "nemesis-only"} {
		t.Run(name, func(t *testing.T) {
			dir := golden(t, name)
			code, out, errOut := seqlab("check", dir)
			assert.Equal(t, 2, code, out+errOut)
			assert.Contains(t, out, "verdict       unknown")
			assert.Contains(t, out, "no client operations: nothing to check")

			code, out, _ = seqlab("check", dir, "--json", "--promise", "unique")
			assert.Equal(t, 2, code)
			var res struct {
				Valid  any    `json:"valid"`
				Reason string `json:"reason"`
			}
			require.NoError(t, json.Unmarshal([]byte(out), &res), out)
			assert.Equal(t, "unknown", res.Valid)
			assert.Equal(t, "no client operations: nothing to check", res.Reason)
		})
	}
}

func TestCheckBadInput(t *testing.T) {
	dir := golden(t, "valid")
	for _, args := range [][]string{
		{"check"},
		{"check", dir, "--promise", "fast"},
		{"check", dir, "--timeout", "-1s"},
		{"check", dir, "--nope"},
		{"check", dir, "extra"},
		{"check", filepath.Join(dir, "missing")},
		{"frobnicate"},
		{},
	} {
		code, _, errOut := seqlab(args...)
		assert.Equal(t, 2, code, "%q", args)
		assert.NotEmpty(t, errOut, "%q", args)
	}
	assert.NoFileExists(t, filepath.Join(dir, "results.json"), "bad flags must change nothing")
}

// inTest makes run and replay use t for their synctest bubble, instead of
// starting testing.Main.
func inTest(t *testing.T) {
	old := bubble
	bubble = func(f func(t *testing.T) int) int { return f(t) }
	t.Cleanup(func() { bubble = old })
}

// TestRunReplayCheck runs a scenario, replays it from its directory, and
// re-checks the recording: the workflow of the README.
func TestRunReplayCheck(t *testing.T) {
	inTest(t)
	store := t.TempDir()

	code, out, errOut := seqlab("run", "Bug/r-plus-w-le-n", "--seed", "11", "--time-limit", "5s", "--store", store)
	require.Equal(t, 0, code, out+errOut) // the planted bug was caught, as expected
	assert.Contains(t, out, "seed      11")
	assert.Contains(t, out, "seqlab replay ")
	runs, err := filepath.Glob(filepath.Join(store, "Bug", "r-plus-w-le-n", "*"))
	require.NoError(t, err)
	require.Len(t, runs, 1)
	var info struct {
		Seed     int64  `json:"seed"`
		Scenario string `json:"scenario"`
	}
	b, err := os.ReadFile(filepath.Join(runs[0], "run.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &info))
	assert.Equal(t, int64(11), info.Seed)

	// A replay says how its build differs from the recording's.
	var raw map[string]any
	require.NoError(t, json.Unmarshal(b, &raw))
	build := raw["build"].(map[string]any)
	assert.NotEmpty(t, build["commit"], "run.json records the commit")
	assert.Equal(t, runtime.Version(), build["go"], "and the Go version")
	raw["build"] = map[string]any{"commit": "0123456789abcdef0123", "dirty": false, "go": "go1.0"}
	b, err = json.Marshal(raw)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(runs[0], "run.json"), b, 0o644))

	// Without --store, the replay goes beside the recording.
	code, out, errOut = seqlab("replay", runs[0])
	require.Equal(t, 0, code, out+errOut)
	assert.Contains(t, out, "warning   recorded by commit 0123456789ab, go1.0; replaying with ")
	assert.Contains(t, out, "warning   recorded with go1.0, replayed with "+runtime.Version()+": the replay may differ for that reason")
	assert.Contains(t, out, "replaying Bug/r-plus-w-le-n with seed 11")
	assert.Contains(t, out, "verdicts  the same: recorded violations [linearizable unique], replayed [linearizable unique]")
	runs, err = filepath.Glob(filepath.Join(store, "Bug", "r-plus-w-le-n", "*"))
	require.NoError(t, err)
	assert.Len(t, runs, 2, "the replay's run directory is in the recording's store")

	// The recorded history violates uniqueness: check says so, exit 1.
	code, out, _ = seqlab("check", runs[0])
	assert.Equal(t, 1, code)
	assert.True(t, strings.Contains(out, "unique        violated"), out)

	for _, args := range [][]string{
		{"run"}, {"run", "No/such"}, {"run", "Bug/r-plus-w-le-n", "--concurrency", "-3"},
		{"run", "Bug/r-plus-w-le-n", "--time-limit", "2h"}, {"replay"}, {"replay", t.TempDir()},
	} {
		code, _, errOut := seqlab(args...)
		assert.Equal(t, 2, code, "%q", args)
		assert.NotEmpty(t, errOut, "%q", args)
	}
}

// TestSimHuntShrinkReplay: the deterministic mode from the command line.
func TestSimHuntShrinkReplay(t *testing.T) {
	inTest(t)
	store := t.TempDir()
	code, out, errOut := seqlab("hunt", "Bug/crash-all-in-memory", "--seeds", "1-20", "--time-limit", "10s", "--store", store)
	require.Equal(t, 0, code, out+errOut)
	assert.Contains(t, out, "seeds a minute")
	runs, err := filepath.Glob(filepath.Join(store, "Bug", "crash-all-in-memory", "*-sim-seed*"))
	require.NoError(t, err)
	require.Len(t, runs, 1)

	code, out, errOut = seqlab("shrink", runs[0], "--store", store)
	require.Equal(t, 0, code, out+errOut)
	assert.Contains(t, out, "keeping unique violated")
	_, shrunk, ok := strings.Cut(out, "shrunk run: ")
	require.True(t, ok)
	shrunk = strings.TrimSpace(shrunk)

	code, out, errOut = seqlab("replay", shrunk, "--store", store)
	require.Equal(t, 0, code, out+errOut)
	assert.Contains(t, out, "bit-exact: hash")

	code, out, _ = seqlab("run", "Partition/halves-n5", "--mode", "sim", "--seed", "4", "--store", store)
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "(sim mode)")

	for _, args := range [][]string{
		{"hunt"}, {"hunt", "Bug/crash-all-in-memory", "--seeds", "9-1"}, {"hunt", "No/such"},
		{"hunt", "Bug/crash-all-in-memory", "--workers", "0"}, {"shrink"}, {"shrink", t.TempDir()},
		{"run", "Bug/crash-all-in-memory", "--mode", "quantum"},
	} {
		code, _, errOut := seqlab(args...)
		assert.Equal(t, 2, code, "%q", args)
		assert.NotEmpty(t, errOut, "%q", args)
	}
	// A healthy scenario has nothing to shrink.
	runs, err = filepath.Glob(filepath.Join(store, "Partition", "halves-n5", "*"))
	require.NoError(t, err)
	require.Len(t, runs, 1)
	code, _, errOut = seqlab("shrink", runs[0], "--store", store)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "nothing to shrink")
}
