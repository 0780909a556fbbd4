package nodeflags

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPeers(t *testing.T) {
	got, err := Peers("", "127.0.0.1:7101")
	require.NoError(t, err)
	require.Equal(t, []string{"127.0.0.1:7101"}, got)
	got, err = Peers("a:1, b:2 ,c:3", "x:9")
	require.NoError(t, err)
	require.Equal(t, []string{"a:1", "b:2", "c:3"}, got, "trimmed")
	_, err = Peers("a:1,b", "x:9")
	require.ErrorContains(t, err, `"b" is not host:port`, "names the bad peer")
}

func TestSecret(t *testing.T) {
	t.Setenv(SecretEnv, "from-env")
	s, err := Secret("")
	require.NoError(t, err)
	require.Equal(t, "from-env", s)
	f := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(f, []byte("  s3cret\n"), 0o600))
	s, err = Secret(f)
	require.NoError(t, err)
	require.Equal(t, "s3cret", s)
	require.NoError(t, os.WriteFile(f, []byte(" \n"), 0o600))
	_, err = Secret(f)
	require.ErrorContains(t, err, "is empty")
	_, err = Secret(filepath.Join(t.TempDir(), "missing"))
	require.Error(t, err)
}
