package script

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/checker"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with the file, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./scenarios/script -update to write it")
	require.Equal(t, string(want), string(got), "%s (go test ./scenarios/script -update rewrites it; review the diff)", path)
}

func parseFile(t *testing.T, path string) (*Script, error) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	return Parse(filepath.Base(path), f)
}

// Each good script parses, prints as its .golden file, and reads back
// from that to the same Script.
func TestGoodScripts(t *testing.T) {
	paths, _ := filepath.Glob("testdata/ok/*.scn")
	require.NotEmpty(t, paths)
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".scn"), func(t *testing.T) {
			s, err := parseFile(t, path)
			require.NoError(t, err)
			out := s.Format()
			golden(t, strings.TrimSuffix(path, ".scn")+".golden", out)
			back, err := Parse("formatted", bytes.NewReader(out))
			require.NoError(t, err)
			require.Equal(t, s, back)
		})
	}
}

// Each bad script is refused whole, with every error its golden .err
// lists, each at its line.
func TestBadScripts(t *testing.T) {
	paths, _ := filepath.Glob("testdata/errors/*.scn")
	require.NotEmpty(t, paths)
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".scn"), func(t *testing.T) {
			s, err := parseFile(t, path)
			require.Error(t, err)
			require.Nil(t, s, "never a half-parsed script")
			var es Errors
			require.True(t, errors.As(err, &es))
			for _, e := range es {
				require.Equal(t, filepath.Base(path), e.File)
			}
			golden(t, strings.TrimSuffix(path, ".scn")+".err", []byte(err.Error()+"\n"))
		})
	}
}

func seed(n uint64) *uint64 { return &n }

// A Script built in Go, every field set, prints and reads back the same.
func TestRoundTrip(t *testing.T) {
	s := &Script{
		Name: "Group/all", Description: "every field: set # and all",
		Systems: []string{"raft_seq"},
		Cluster: Cluster{Nodes: 4, R: 2, W: 3, Unsafe: true, WriteRule: "set-if-unchanged", Persist: "memory",
			Planted: []string{"late-join", "shun-reset"}, ReadFirst: true, NoBootstrapOnRestart: true,
			Latency: 3 * time.Millisecond, Jitter: time.Microsecond},
		Workload: Workload{RangeClients: 2, Sizes: []uint64{7, 1 << 40}, IDClients: 3, IDRangeSize: 4, Rate: 0.25,
			OpTimeout: 250 * time.Millisecond, Names: []string{"a", "b-c"}},
		TimeLimit: 90 * time.Second, Recovery: 15 * time.Second,
		Promises: []string{"gap-free"},
		Expect:   Expect{Violates: []string{"monotonic"}, LostBuffers: true},
		Modes:    []string{"process"},
		Steps: []Step{
			{At: 0, Verb: Start, Fault: "partition-ring", Targets: []string{"n4", "n3", "n2", "n1"}},
			{At: time.Second, Verb: Start, Fault: "slow-node", Seed: seed(0), For: time.Second},
			{At: time.Second, Verb: Stop, Fault: "partition-ring", Targets: []string{"n4", "n3", "n2", "n1"}},
			{At: 2 * time.Second, Verb: Start, Fault: "client-crash", Targets: []string{"k3"}},
			{At: 3 * time.Second, Verb: HealAll},
			{At: 3 * time.Second, Verb: Random, Until: 75 * time.Second, Faults: []string{"crash-all"}},
		},
		Ops: []Op{{At: 0, Client: 1, Node: 3, Name: "b-c"}, {At: time.Millisecond, Client: 4}},
	}
	back, err := Parse("s", bytes.NewReader(s.Format()))
	require.NoError(t, err, "%s", s.Format())
	require.Equal(t, s, back)
	require.Equal(t, s.String(), back.String())
}

// Windows pairs each start with what stops it.
func TestWindows(t *testing.T) {
	src := `name W/w
time-limit 20s
recovery 4s
at 1s start crash-one n1
at 1s start crash-one n2 for=2s
at 2s start pause n3
at 3s start crash-one n2
at 4s stop crash-one n1
at 5s heal-all
at 6s start loss
at 7s start reset n1 n2 for=20ms
random 8s..12s faults=pause
at 9s start reset n1 n2 seed=5
`
	s, err := Parse("w.scn", strings.NewReader(src))
	require.NoError(t, err)
	require.Equal(t, []Window{
		{At: 1 * time.Second, For: 3 * time.Second, Fault: "crash-one", Targets: []string{"n1"}},
		{At: 1 * time.Second, For: 2 * time.Second, Fault: "crash-one", Targets: []string{"n2"}},
		{At: 2 * time.Second, For: 3 * time.Second, Fault: "pause", Targets: []string{"n3"}},
		{At: 3 * time.Second, For: 2 * time.Second, Fault: "crash-one", Targets: []string{"n2"}},
		{At: 6 * time.Second, For: 10 * time.Second, Fault: "loss"},
		{At: 7 * time.Second, For: 20 * time.Millisecond, Fault: "reset", Targets: []string{"n1", "n2"}},
		{At: 9 * time.Second, For: 7 * time.Second, Fault: "reset", Targets: []string{"n1", "n2"}, Seed: seed(5)},
	}, s.Windows())
	limit, recovery := s.Times()
	require.Equal(t, 20*time.Second, limit)
	require.Equal(t, 4*time.Second, recovery)

	var empty Script
	limit, recovery = empty.Times()
	require.Equal(t, []time.Duration{30 * time.Second, 6 * time.Second}, []time.Duration{limit, recovery})
}

// Whatever parses prints, and reads back to the same Script and the
// same text; nothing panics.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/ok", "testdata/errors"} {
		paths, _ := filepath.Glob(dir + "/*.scn")
		for _, p := range paths {
			b, err := os.ReadFile(p)
			require.NoError(f, err)
			f.Add(b)
		}
	}
	f.Add([]byte("name a\nop 0s c1 n1 default\nop 0s k1\n"))
	f.Add([]byte("name a\ndescription \t x\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz", bytes.NewReader(data))
		if err != nil {
			require.Nil(t, s)
			var es Errors
			require.True(t, errors.As(err, &es))
			require.NotEmpty(t, es)
			return
		}
		out := s.Format()
		back, err := Parse("formatted", bytes.NewReader(out))
		require.NoError(t, err, "%s", out)
		require.Equal(t, s, back, "%s", out)
		require.Equal(t, string(out), string(back.Format()))
	})
}

// The sample script in the package doc parses, and prints back as it is
// written there (the doc would go stale otherwise).
func TestDocSample(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(src), "nothing is clever:\n//\n")
	require.True(t, ok)
	var lines []string
	for _, l := range strings.Split(rest, "\n") {
		if l == "//" {
			lines = append(lines, "")
			continue
		}
		body, ok := strings.CutPrefix(l, "//\t")
		if !ok {
			break
		}
		lines = append(lines, body)
	}
	sample := strings.Join(lines, "\n")
	s, err := Parse("doc.go", strings.NewReader(sample))
	require.NoError(t, err)
	var noComments []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "#") {
			noComments = append(noComments, l)
		}
	}
	require.Equal(t, strings.TrimSpace(strings.Join(noComments, "\n")), strings.TrimSpace(string(s.Format())))
}

// The properties a script may name are the checker's.
func TestKnownProperties(t *testing.T) {
	require.Equal(t, checker.Properties, KnownProperties)
}
