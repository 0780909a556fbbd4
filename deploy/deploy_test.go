// Package deploy holds the files that run seqlab beyond one machine; its
// test checks them as far as a machine without a cluster can.
package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

type container struct {
	Name         string
	Args         []string
	Env          []struct{ Name, Value string }
	VolumeMounts []struct {
		Name      string
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type job struct {
	Kind     string
	Metadata struct{ Name string }
	Spec     struct {
		CompletionMode string `yaml:"completionMode"`
		Completions    int
		Parallelism    int
		Template       struct {
			Spec struct {
				RestartPolicy string `yaml:"restartPolicy"`
				Containers    []container
			}
		}
	}
}

func readJobs(t *testing.T) map[string]job {
	f, err := os.Open("hunt-job.yaml")
	require.NoError(t, err)
	defer f.Close()
	jobs := map[string]job{}
	dec := yaml.NewDecoder(f)
	for {
		var j job
		err := dec.Decode(&j)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		require.Equal(t, "Job", j.Kind)
		require.Len(t, j.Spec.Template.Spec.Containers, 1)
		jobs[j.Metadata.Name] = j
	}
	return jobs
}

func env(c container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expand does what Kubernetes does to a container's args: $(VAR) becomes
// the variable's value, and the volume's mount path becomes dir.
func expand(args []string, vars map[string]string, mount, dir string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		a = varRef.ReplaceAllStringFunc(a, func(ref string) string { return vars[ref[2:len(ref)-1]] })
		out[i] = strings.Replace(a, mount, dir, 1)
	}
	return out
}

// TestHuntJob: the manifest parses, its shard count matches its
// completions, and its command lines, run here with JOB_COMPLETION_INDEX
// set for two shards and then the merge, find what one hunt finds.
func TestHuntJob(t *testing.T) {
	jobs := readJobs(t)
	hunt, merge := jobs["seqlab-hunt"], jobs["seqlab-hunt-merge"]
	require.Equal(t, "Indexed", hunt.Spec.CompletionMode)
	hc := hunt.Spec.Template.Spec.Containers[0]
	vars := env(hc)
	require.Equal(t, vars["SHARDS"], strconv.Itoa(hunt.Spec.Completions), "SHARDS must equal completions")
	require.Equal(t, "Never", hunt.Spec.Template.Spec.RestartPolicy, "podFailurePolicy needs it")
	require.Contains(t, strings.Join(hc.Args, " "), "--shard $(JOB_COMPLETION_INDEX)/$(SHARDS)")
	require.Contains(t, hc.Args, "--resume", "a restarted pod resumes its shard")
	mc := merge.Spec.Template.Spec.Containers[0]
	require.Equal(t, vars["SCENARIO"], env(mc)["SCENARIO"], "the merge reads the hunt's scenario")
	mount := hc.VolumeMounts[0].MountPath
	require.Equal(t, mount, mc.VolumeMounts[0].MountPath)

	if testing.Short() {
		t.Skip("builds seqlab and runs the Job's command lines")
	}
	bin := filepath.Join(t.TempDir(), "seqlab")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/seqlab/seqlab/cmd/seqlab").CombinedOutput()
	require.NoError(t, err, "%s", out)
	run := func(args ...string) (string, int) {
		var b bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &b, io.Discard
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err)
		}
		return b.String(), code
	}
	// The same Job, made small: a scenario of quick runs, 30 seeds, 2 shards.
	vars["SCENARIO"], vars["SEEDS"], vars["SHARDS"], vars["WORKERS"] = "Bug/crash-all-in-memory", "1-30", "2", "2"
	results := t.TempDir()
	for _, index := range []string{"0", "1"} {
		vars["JOB_COMPLETION_INDEX"] = index
		args := append(expand(hc.Args, vars, mount, results), "--time-limit", "4s")
		out, code := run(args...)
		require.Contains(t, []int{0, 1}, code, "%s", out)
		require.Contains(t, out, "shard "+index+"/2 (15 seeds)")
	}
	mvars := env(mc)
	mvars["SCENARIO"] = vars["SCENARIO"]
	merged, code := run(expand(mc.Args, mvars, mount, results)...)
	require.Equal(t, 0, code, "%s", merged)
	whole, code := run("hunt", vars["SCENARIO"], "--seeds", "1-30", "--time-limit", "4s", "--store", t.TempDir())
	require.Equal(t, 0, code, "%s", whole)
	verdict := func(s string) string {
		for _, l := range strings.Split(s, "\n") {
			if strings.Contains(l, "seeds run") || strings.Contains(l, "no seed of") {
				return l
			}
		}
		t.Fatalf("no verdict in:\n%s", s)
		return ""
	}
	require.Equal(t, verdict(whole), verdict(merged))
}
