package rr_seq

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStorageRoundTrip(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenStorage(OSFS{}, dir)
	require.NoError(t, err)
	vals, err := st.Load()
	require.NoError(t, err)
	require.Empty(t, vals, "no file is an empty state")
	want := map[string]uint64{"a": 11, "b b": 3, "ünï": 99}
	require.NoError(t, st.Save(want, true))
	got, err := st.Load()
	require.NoError(t, err)
	require.Equal(t, want, got)
	_, err = os.Stat(filepath.Join(dir, stateTmpFile))
	require.ErrorIs(t, err, os.ErrNotExist, "the temp file was renamed away")
}

func TestStorageRejectsCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenStorage(OSFS{}, dir)
	require.NoError(t, err)
	require.NoError(t, st.Save(map[string]uint64{"a": 12345}, true))
	good, err := os.ReadFile(st.Path())
	require.NoError(t, err)
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/3] ^= 0x01
	for name, content := range map[string][]byte{
		"empty":         {},
		"truncated":     good[:len(good)-5],
		"no trailer":    good[:len(good)/2],
		"bit flip":      flipped,
		"garbage":       []byte("hello\nworld\n"),
		"bad crc digit": append(good[:len(good)-3:len(good)-3], 'z', 'z', '\n'),
	} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(st.Path(), content, 0o644))
			_, err := st.Load()
			require.ErrorIs(t, err, ErrCorruptState)
		})
	}
}

func FuzzDecodeState(f *testing.F) {
	f.Add(encodeState(map[string]uint64{"a": 3}))
	f.Add([]byte("{}\ncrc32c:00000000\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		vals, err := decodeState(b)
		if err != nil {
			return
		}
		// Whatever decodes must encode back to something that decodes the same.
		again, err := decodeState(encodeState(vals))
		require.NoError(t, err)
		require.Equal(t, vals, again)
	})
}
