package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/scenarios"
)

// A bad script is refused whole: every error with its file and line, exit
// 2, and nothing run or written.
func TestRunBadScript(t *testing.T) {
	inTest(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.scn")
	require.NoError(t, os.WriteFile(bad, []byte("name A/b\ncluster nodes=3\nat 2s start crash-one n4\nat 1s heal-all\nfrobnicate\n"), 0o644))
	store := filepath.Join(dir, "store")
	for _, args := range [][]string{
		{"run", bad, "--store", store},
		{"run", bad, "--mode", "sim", "--store", store},
		{"hunt", bad, "--seeds", "1-2", "--store", store},
		{"check", bad},
	} {
		code, out, errOut := seqlab(args...)
		assert.Equal(t, 2, code, "%q", args)
		assert.Empty(t, out, "%q", args)
		assert.Contains(t, errOut, bad+":3: crash-one: n4 names no node of the cluster (n1 n2 n3)\n", "%q", args)
		assert.Contains(t, errOut, bad+":4: at 1s: time goes backwards (line 3 is at 2s)\n", "%q", args)
		assert.Contains(t, errOut, bad+":5: unknown command \"frobnicate\"", "%q", args)
		assert.Contains(t, errOut, "is not a script the lab can run (3 errors); nothing ran", "%q", args)
	}
	assert.NoDirExists(t, store, "nothing written")

	code, _, errOut := seqlab("run", filepath.Join(dir, "missing.scn"))
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "missing.scn")
}

// writeScript writes a scenario of the catalogue as a script of its own
// name, where the catalogue does not have it: what a run of a file is.
func writeScript(t *testing.T, dir, from, name string) string {
	code, out, errOut := seqlab("list", "--script", from)
	require.Equal(t, 0, code, errOut)
	text := regexp.MustCompile(`(?m)^name .*$`).ReplaceAllString(out, "name "+name)
	path := filepath.Join(dir, strings.ReplaceAll(name, "/", "-")+".scn")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

// seqlab run FILE.scn runs a script in the simulator and in the gRPC
// mode; its run directories keep the script, and replay and check from
// them alone, after the file is gone; hunt takes the file too.
func TestRunScript(t *testing.T) {
	inTest(t)
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	path := writeScript(t, dir, "Partition/scripted-isolate-then-crash-n3", "Mine/incident")

	code, out, errOut := seqlab("check", path)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "scenario Mine/incident, a script the lab can run")
	assert.Contains(t, out, "faults    2 timed")

	runDir := func(out string) string {
		m := regexp.MustCompile(`(?m)^run dir   (\S+)$`).FindStringSubmatch(out)
		require.NotNil(t, m, out)
		return m[1]
	}
	code, out, errOut = seqlab("run", path, "--mode", "sim", "--store", store)
	require.Equal(t, 0, code, out+errOut)
	assert.Contains(t, out, "=== PASS Mine/incident")
	simDir := runDir(out)
	code, out, errOut = seqlab("run", path, "--store", store)
	require.Equal(t, 0, code, out+errOut)
	assert.Contains(t, out, "(grpc mode)")
	assert.Contains(t, out, "faults    4 events")
	grpcDir := runDir(out)
	for _, d := range []string{simDir, grpcDir} {
		assert.FileExists(t, filepath.Join(d, scenarios.ScriptFile))
	}

	require.NoError(t, os.Remove(path))
	code, out, errOut = seqlab("replay", simDir, "--store", store)
	require.Equal(t, 0, code, out+errOut)
	assert.Contains(t, out, "bit-exact: hash")
	code, out, errOut = seqlab("replay", grpcDir, "--store", store)
	require.Equal(t, 0, code, out+errOut)
	assert.Contains(t, out, "verdicts  the same")
	code, out, errOut = seqlab("check", grpcDir)
	require.Equal(t, 0, code, out+errOut)

	path = writeScript(t, dir, "Bug/flake-clock-rollback", "Mine/rollback")
	code, out, errOut = seqlab("hunt", path, "--seeds", "1-4", "--workers", "2", "--store", store)
	require.Equal(t, 0, code, out+errOut)
	assert.Contains(t, out, "hunted Mine/rollback on flake_seq")
	assert.Contains(t, out, "catch the planted bug")
	assert.Contains(t, out, "=== PASS Mine/rollback")
}

// seqlab list --script prints a scenario as a script that seqlab run
// takes and runs to the same run: the same hash in the simulator.
func TestListScript(t *testing.T) {
	inTest(t)
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	code, out, _ := seqlab("list", "--script", "Mixed/at-once-n5")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "name Mixed/at-once-n5\n")
	assert.Contains(t, out, "random 0s..24s faults=partition-isolate+crash-one,pause+slow,partition-oneway+lose-unsynced in-turn\n")
	path := filepath.Join(dir, "at-once.scn")
	require.NoError(t, os.WriteFile(path, []byte(out), 0o644))

	hash := func(args ...string) string {
		code, out, errOut := seqlab(append(args, "--mode", "sim", "--seed", "4", "--time-limit", "10s", "--store", store)...)
		require.Equal(t, 0, code, out+errOut)
		m := regexp.MustCompile(`(?m)^hash      (\S+)$`).FindStringSubmatch(out)
		require.NotNil(t, m, out)
		return m[1]
	}
	assert.Equal(t, hash("run", "Mixed/at-once-n5"), hash("run", path))

	code, _, errOut := seqlab("list", "--script", "Mixed/nothing")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "no scenario")
}

// TestReadmeScripts follows the README's "Scenario scripts" as a reader
// would, in a fresh directory: it runs the planted bug, shrinks it,
// reads the script, runs it (bit for bit the shrunk run), runs it
// without its fault step (the bug needs it), and finds the script the
// section saves as a regression scenario to be that script, comments
// aside.
func TestReadmeScripts(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	sec := readmeSection(string(readme), "### Scenario scripts")
	require.NotEmpty(t, sec, `README.md has a section "### Scenario scripts"`)
	_, block, ok := strings.Cut(sec, "<!-- walkthrough: scripts -->\n```\n")
	require.True(t, ok, "the section marks its commands with <!-- walkthrough: scripts -->")
	block, _, _ = strings.Cut(block, "```")
	var cmds []string
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		line, _, _ = strings.Cut(line, "   #")
		cmds = append(cmds, strings.TrimSpace(line))
	}
	require.Len(t, cmds, 6, "run, shrink, cat, run, grep, run")
	shown := regexp.MustCompile("(?s)<!-- walkthrough: shrunk.scn -->\n```\n(.*?)```").FindStringSubmatch(sec)
	require.NotNil(t, shown, "the section shows the shrunk script, marked <!-- walkthrough: shrunk.scn -->")

	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	inTest(t)
	t.Chdir(t.TempDir())
	var runDir, shrunkDir string
	sh := func(line string) (int, string) {
		line = strings.ReplaceAll(strings.ReplaceAll(line, "SHRUNK_DIR", shrunkDir), "RUN_DIR", runDir)
		if strings.HasPrefix(line, "seqlab ") {
			code, out, errOut := seqlab(strings.Fields(line)[1:]...)
			return code, out + errOut
		}
		out, err := exec.Command("sh", "-c", line).CombinedOutput()
		require.NoError(t, err, "%s: %s", line, out)
		return 0, string(out)
	}
	code, out := sh(cmds[0])
	require.Equal(t, 0, code, out)
	runDir = regexp.MustCompile(`(?m)^run dir   (\S+)$`).FindStringSubmatch(out)[1]
	code, out = sh(cmds[1])
	require.Equal(t, 0, code, out)
	shrunkDir = regexp.MustCompile(`(?m)^shrunk run: (\S+)$`).FindStringSubmatch(out)[1]
	_, script := sh(cmds[2])
	assert.Equal(t, body(shown[1]), body(script), "the section shows the script seqlab shrink writes")

	code, out = sh(cmds[3])
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "CAUGHT")
	info, err := os.ReadFile(filepath.Join(shrunkDir, "run.json"))
	require.NoError(t, err)
	hash := regexp.MustCompile(`(?m)^hash      (\S+)$`).FindStringSubmatch(out)[1]
	assert.Contains(t, string(info), `"hash": "`+hash+`"`, "the script runs the shrunk run, bit for bit")

	sh(cmds[4])
	code, out = sh(cmds[5])
	assert.Equal(t, 1, code, "without the power loss the bug does not show: %s", out)
	assert.Contains(t, out, "NOT CAUGHT")

	incident := regexp.MustCompile("(?s)<!-- walkthrough: incident -->\n```\n(.*?)```").FindStringSubmatch(sec)
	require.NotNil(t, incident, "the section shows the incident script, marked <!-- walkthrough: incident -->")
	kept, err := os.ReadFile(filepath.Join(root, "scenarios", "testdata", "scripted-isolate-then-crash.scn"))
	require.NoError(t, err)
	assert.Equal(t, body(string(kept)), body(incident[1]), "the incident the section shows is the catalogue's")

	saved := regexp.MustCompile("`(scenarios/testdata/[^`*]+\\.scn)`").FindStringSubmatch(sec)
	require.NotNil(t, saved, "the section names the regression scenario it saves")
	kept, err = os.ReadFile(filepath.Join(root, filepath.FromSlash(saved[1])))
	require.NoError(t, err)
	assert.Equal(t, body(script), body(string(kept)), "%s is the shrunk script", saved[1])
}

// body is a script without its comments.
func body(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}

// The process mode runs a script's explicit timeline on real processes.
func TestProcessScript(t *testing.T) {
	needProcessMode(t)
	dir := t.TempDir()
	path := writeScript(t, dir, "Partition/scripted-isolate-then-crash-n3", "Mine/incident")
	store := filepath.Join(dir, "store")
	cmd, out := labProcess(t, "run", path, "--mode", "process", "--store", store)
	require.NoError(t, cmd.Wait(), out.String())
	assert.Contains(t, out.String(), "=== PASS Mine/incident")
	assert.Contains(t, out.String(), "(process mode)")
	assert.Contains(t, out.String(), "faults    4 events: crash-one x1, partition-isolate x1")
	dirs := runDirs(t, store)
	require.Len(t, dirs, 1)
	assert.FileExists(t, filepath.Join(dirs[0], scenarios.ScriptFile))
	nothingLeft(t, dirs[0])
}
