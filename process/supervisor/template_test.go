package supervisor

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTemplateExpands(t *testing.T) {
	v := Vars{
		Listen: "198.18.0.1:7001", PeerListen: "198.18.0.1:7101",
		Peers: "198.18.0.1:7101,198.18.0.2:7101", Name: "n1", Index: 0, N: 2, DataDir: "data/n 1",
	}
	for _, tc := range []struct {
		tmpl string
		want []string
	}{
		{"rrseq-node --listen {listen} --peer-listen {peer_listen} --peers {peers} --name {name} --data-dir {data_dir}",
			[]string{"rrseq-node", "--listen", "198.18.0.1:7001", "--peer-listen", "198.18.0.1:7101",
				"--peers", "198.18.0.1:7101,198.18.0.2:7101", "--name", "n1", "--data-dir", "data/n 1"}},
		{"node --id={index}/{n}", []string{"node", "--id=0/2"}},
		{`sh -c 'echo {name} > x'`, []string{"sh", "-c", "echo n1 > x"}},
		{`a "b {name} c" d\ e`, []string{"a", "b n1 c", "d e"}},
		{`a '' "" {{literal}}`, []string{"a", "", "", "{literal}"}},
		{"  a\t\tb  ", []string{"a", "b"}},
		{`a "x\"y"`, []string{"a", `x"y`}},
	} {
		tm, err := ParseTemplate(tc.tmpl)
		require.NoError(t, err, tc.tmpl)
		require.Equal(t, tc.want, tm.Expand(v), tc.tmpl)
	}
	tm, _ := ParseTemplate("x {peers}")
	require.True(t, tm.Uses("peers"))
	require.False(t, tm.Uses("listen"))
}

func TestBadTemplatesAreRefused(t *testing.T) {
	for _, tc := range []struct{ tmpl, want string }{
		{"", "supervisor: empty command template"},
		{"   ", "supervisor: empty command template"},
		{"node {port}", "unknown placeholder {port} (known: {listen} {peer_listen} {peers} {name} {index} {n} {data_dir})"},
		{"node {listen", "unclosed {"},
		{"node listen}", "a } without its {"},
		{"node 'abc", "unclosed '"},
		{`node "abc`, `unclosed "`},
		{`node abc\`, "ends in a backslash"},
	} {
		_, err := ParseTemplate(tc.tmpl)
		require.ErrorContains(t, err, tc.want, tc.tmpl)
	}
}

func TestQuoteRoundTrips(t *testing.T) {
	args := []string{"rrseq-node", "--name", "n1", "a b", "it's", "", "x=1,2"}
	q := Quote(args)
	require.Equal(t, `rrseq-node --name n1 'a b' 'it'\''s' '' x=1,2`, q)
	tm, err := ParseTemplate(q)
	require.NoError(t, err)
	require.Equal(t, args, tm.Expand(Vars{}))
}
