package rr_seq

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

var testID = Identity{Cluster: "c1", Node: "n1"}

func openOS(t *testing.T, dir string) *Storage {
	t.Helper()
	st, err := OpenStorage(OSFS{}, dir)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return st
}

func appendOne(t *testing.T, st *Storage, name string, v uint64) {
	t.Helper()
	require.NoError(t, st.Append([]Entry{{name, v}}, true))
}

func TestStorageRoundTrip(t *testing.T) {
	dir := t.TempDir()
	st := openOS(t, dir)
	l, err := st.Load()
	require.NoError(t, err)
	require.Equal(t, Loaded{Values: map[string]uint64{}}, l, "no files is a fresh dir")
	require.Error(t, st.Append([]Entry{{"a", 1}}, true), "a fresh dir takes no appends before Init")

	require.NoError(t, st.Init(testID, map[string]uint64{"a": 11, "b b": 3}))
	require.NoError(t, st.Append([]Entry{{"ünï", 99}, {"a", 12}}, true))
	require.NoError(t, st.Append([]Entry{{"b b", 2}}, true), "a lower value changes nothing")
	require.NoError(t, st.Append(nil, true))
	want := map[string]uint64{"a": 12, "b b": 3, "ünï": 99}
	require.NoError(t, st.Close())

	st = openOS(t, dir)
	l, err = st.Load()
	require.NoError(t, err)
	require.Equal(t, Loaded{Identity: &testID, Values: want}, l)
	for _, name := range []string{lockFile, identityFile, snapshotFile, logFile} {
		require.FileExists(t, filepath.Join(dir, name))
	}
	require.NoFileExists(t, filepath.Join(dir, snapshotTmpFile), "the temp file was renamed away")
	require.NoFileExists(t, filepath.Join(dir, identityTmpFile))
}

func TestIdentityCheck(t *testing.T) {
	require.NoError(t, testID.Check(Identity{Cluster: "c1", Node: "n1"}))
	err := testID.Check(Identity{Cluster: "c1", Node: "n2"})
	require.ErrorIs(t, err, ErrForeignState)
	require.EqualError(t, err, `the data dir belongs to node "n1" of cluster "c1", not to node "n2" of cluster "c1": rr_seq: data dir of another node or cluster`)
	require.ErrorIs(t, testID.Check(Identity{Cluster: "c2", Node: "n1"}), ErrForeignState)
}

// logWithFrames makes an initialised dir whose log holds frames, and
// returns the log's bytes and where each frame starts.
func logWithFrames(t *testing.T, dir string, frames ...[]Entry) ([]byte, []int) {
	t.Helper()
	st, err := OpenStorage(OSFS{}, dir)
	require.NoError(t, err)
	require.NoError(t, st.Init(testID, map[string]uint64{"a": 1}))
	var starts []int
	for _, f := range frames {
		starts = append(starts, int(st.Stats().LogBytes))
		require.NoError(t, st.Append(f, true))
	}
	require.NoError(t, st.Close())
	b, err := os.ReadFile(filepath.Join(dir, logFile))
	require.NoError(t, err)
	return b, starts
}

var threeFrames = [][]Entry{{{"a", 2}}, {{"b", 5}, {"c", 1}}, {{"a", 9}, {"c", 3}}}

// TestStorageCutsATornTail: whatever a crash leaves of the last frame (any
// prefix, a bad CRC, zeros after it) is cut off and the rest loads.
func TestStorageCutsATornTail(t *testing.T) {
	good, starts := logWithFrames(t, t.TempDir(), threeFrames...)
	last := starts[2]
	before := map[string]uint64{"a": 2, "b": 5, "c": 1}
	badCRC := bytes.Clone(good)
	badCRC[last+5] ^= 0x40
	badPayload := bytes.Clone(good)
	badPayload[len(good)-1] ^= 0x01
	tails := map[string][]byte{
		"bad crc":                badCRC,
		"bad payload byte":       badPayload,
		"zeros after":            append(bytes.Clone(good), make([]byte, 64)...),
		"length past the end":    append(bytes.Clone(good[:last]), 0xff, 0xff, 0, 0, 1, 2, 3, 4, 5),
		"zeros instead of frame": append(bytes.Clone(good[:last]), make([]byte, len(good)-last)...),
	}
	for cut := last + 1; cut < len(good); cut++ {
		tails[fmt.Sprintf("cut at %d of %d", cut-last, len(good)-last)] = good[:cut]
	}
	for name, content := range tails {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			logWithFrames(t, dir, threeFrames...)
			logPath := filepath.Join(dir, logFile)
			require.NoError(t, os.WriteFile(logPath, content, 0o644))
			st := openOS(t, dir)
			l, err := st.Load()
			require.NoError(t, err)
			wantAfter := maps.Clone(before)
			if bytes.HasPrefix(content, good) {
				wantAfter = map[string]uint64{"a": 9, "b": 5, "c": 3} // the tail was after the last frame
			}
			require.Equal(t, wantAfter, l.Values)
			b, err := os.ReadFile(logPath)
			require.NoError(t, err)
			require.Equal(t, content[:len(b)], b, "cut, not rewritten")
			require.Contains(t, []int{last, len(good)}, len(b), "cut to the end of the last whole frame")
			require.Equal(t, int64(len(content)-len(b)), st.Stats().TornBytes)

			// The log goes on from the cut, and loads again.
			appendOne(t, st, "d", 4)
			require.NoError(t, st.Close())
			st = openOS(t, dir)
			l, err = st.Load()
			require.NoError(t, err)
			wantAfter["d"] = 4
			require.Equal(t, wantAfter, l.Values)
			require.Zero(t, st.Stats().TornBytes)
		})
	}
}

// TestStorageRefusesCorruptionInTheMiddle: a damaged frame with a whole
// frame after it is no torn write; Load refuses and changes nothing.
func TestStorageRefusesCorruptionInTheMiddle(t *testing.T) {
	good, starts := logWithFrames(t, t.TempDir(), threeFrames...)
	flipped := bytes.Clone(good)
	flipped[starts[1]+9] ^= 0x01
	zeroed := bytes.Clone(good)
	copy(zeroed[starts[1]:starts[2]], make([]byte, starts[2]-starts[1]))
	bogus := appendFrame(bytes.Clone(good[:starts[2]]), []Entry{{"", 7}}) // whole, but no valid entry
	for name, content := range map[string][]byte{
		"bit flip in frame 2":          flipped,
		"frame 2 zeroed":               zeroed,
		"frame 1 cut short":            append(bytes.Clone(good[:starts[1]-1]), good[starts[1]:]...),
		"a whole frame that is no log": bogus,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			logWithFrames(t, dir, threeFrames...)
			logPath := filepath.Join(dir, logFile)
			require.NoError(t, os.WriteFile(logPath, content, 0o644))
			_, err := openOS(t, dir).Load()
			require.ErrorIs(t, err, ErrCorruptState)
			require.ErrorContains(t, err, "the node refuses to start on "+logPath)
			b, rerr := os.ReadFile(logPath)
			require.NoError(t, rerr)
			require.Equal(t, content, b, "Load changed nothing")
		})
	}
}

// TestStorageRefusesMissingOrDamagedFiles: with the marker there, every
// other file must be there and sound.
func TestStorageRefusesMissingOrDamagedFiles(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		damage     func(b []byte) []byte // nil: remove the file
		want       error
	}{
		{"snapshot deleted", snapshotFile, nil, ErrMissingState},
		{"log deleted", logFile, nil, ErrMissingState},
		{"snapshot truncated", snapshotFile, func(b []byte) []byte { return b[:len(b)-3] }, ErrCorruptState},
		{"snapshot bit flip", snapshotFile, func(b []byte) []byte { b[len(b)/2] ^= 1; return b }, ErrCorruptState},
		{"snapshot trailing bytes", snapshotFile, func(b []byte) []byte { return append(b, 0) }, ErrCorruptState},
		{"snapshot empty", snapshotFile, func([]byte) []byte { return nil }, ErrCorruptState},
		{"identity bit flip", identityFile, func(b []byte) []byte { b[3] ^= 1; return b }, ErrCorruptState},
		{"identity truncated", identityFile, func(b []byte) []byte { return b[:len(b)-4] }, ErrCorruptState},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			logWithFrames(t, dir, threeFrames...)
			p := filepath.Join(dir, tc.file)
			if tc.damage == nil {
				require.NoError(t, os.Remove(p))
			} else {
				b, err := os.ReadFile(p)
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(p, tc.damage(b), 0o644))
			}
			before := dirContent(t, dir)
			_, err := openOS(t, dir).Load()
			require.ErrorIs(t, err, tc.want)
			require.ErrorContains(t, err, "the node refuses to start on "+p)
			require.ErrorContains(t, err, "--recover")
			require.Equal(t, before, dirContent(t, dir), "Load changed nothing")
		})
	}
}

func dirContent(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		out[e.Name()] = string(b)
	}
	return out
}

// TestStorageIgnoresLeftovers: temp files a crash left, and the files of
// an Init that never returned, are not the state.
func TestStorageIgnoresLeftovers(t *testing.T) {
	dir := t.TempDir()
	logWithFrames(t, dir, threeFrames...)
	require.NoError(t, os.WriteFile(filepath.Join(dir, snapshotTmpFile), []byte("half a snap"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, identityTmpFile), []byte("half an id"), 0o644))
	before := dirContent(t, dir)
	l, err := openOS(t, dir).Load()
	require.NoError(t, err)
	require.Equal(t, map[string]uint64{"a": 9, "b": 5, "c": 3}, l.Values)
	require.Equal(t, before, dirContent(t, dir), "Load removes nothing")

	// An Init that stopped before its marker: fresh, whatever it wrote.
	dir = t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, snapshotFile), encodeSnapshot(map[string]uint64{"x": 5}), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, logFile), nil, 0o644))
	l, err = openOS(t, dir).Load()
	require.NoError(t, err)
	require.Equal(t, Loaded{Values: map[string]uint64{}}, l)
}

// TestStorageMigratesLegacyState: a dir of the earlier version (one
// state.json, no marker) loads as legacy, and Init migrates it.
func TestStorageMigratesLegacyState(t *testing.T) {
	dir := t.TempDir()
	old := map[string]uint64{"a": 12345, "b": 7}
	require.NoError(t, os.WriteFile(filepath.Join(dir, stateFile), encodeState(old), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, stateTmpFile), []byte("{\"vers"), 0o644))
	st := openOS(t, dir)
	l, err := st.Load()
	require.NoError(t, err)
	require.Equal(t, Loaded{Values: old, Legacy: true}, l)
	require.Error(t, st.Append([]Entry{{"a", 20000}}, true), "no appends before Init")

	require.NoError(t, st.Init(testID, l.Values))
	require.NoFileExists(t, filepath.Join(dir, stateFile))
	require.NoFileExists(t, filepath.Join(dir, stateTmpFile))
	appendOne(t, st, "a", 20000)
	require.NoError(t, st.Close())
	l, err = openOS(t, dir).Load()
	require.NoError(t, err)
	require.Equal(t, Loaded{Identity: &testID, Values: map[string]uint64{"a": 20000, "b": 7}}, l)

	// A leftover state.json.tmp alone is a fresh dir.
	dir = t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, stateTmpFile), encodeState(old), 0o644))
	l, err = openOS(t, dir).Load()
	require.NoError(t, err)
	require.Equal(t, Loaded{Values: map[string]uint64{}}, l)
}

// TestStorageRemovesAStaleLegacyFile: a crash between Init's marker and
// its removal of state.json leaves that file; Load ignores it, and the next
// compaction removes it.
func TestStorageRemovesAStaleLegacyFile(t *testing.T) {
	dir := t.TempDir()
	logWithFrames(t, dir, threeFrames...)
	stale := filepath.Join(dir, stateFile)
	require.NoError(t, os.WriteFile(stale, encodeState(map[string]uint64{"a": 99999}), 0o644))
	st := openOS(t, dir)
	st.CompactMin = 1
	l, err := st.Load()
	require.NoError(t, err)
	require.Equal(t, uint64(9), l.Values["a"], "the marker's state wins")
	require.FileExists(t, stale)
	appendOne(t, st, "a", 10)
	require.Equal(t, 1, st.Stats().Compactions)
	require.NoFileExists(t, stale)
}

func TestStorageRejectsCorruptLegacyFiles(t *testing.T) {
	good := encodeState(map[string]uint64{"a": 12345})
	flipped := bytes.Clone(good)
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
			dir := t.TempDir()
			p := filepath.Join(dir, stateFile)
			require.NoError(t, os.WriteFile(p, content, 0o644))
			_, err := openOS(t, dir).Load()
			require.ErrorIs(t, err, ErrCorruptState)
			require.ErrorContains(t, err, "the node refuses to start on "+p)
		})
	}
}

func TestStorageLocksItsDir(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenStorage(OSFS{}, dir)
	require.NoError(t, err)
	_, err = OpenStorage(OSFS{}, dir)
	require.ErrorIs(t, err, ErrLocked, "a second open in the same process fails too")
	require.ErrorContains(t, err, "another process holds the data dir")
	require.NoError(t, st.Close())
	st, err = OpenStorage(OSFS{}, dir)
	require.NoError(t, err, "free after Close")
	require.NoError(t, st.Close())
}

// TestNodeOnItsDataDir: a node refuses a damaged or locked data dir,
// migrates a legacy one, and releases its dir on Close.
func TestNodeOnItsDataDir(t *testing.T) {
	start := func(dir string) (*Node, error) {
		return NewNode(Config{Self: "a", Peers: []string{"a"}, DataDir: dir, PeerSecret: "s"})
	}
	for _, tc := range []struct {
		name   string
		damage func(dir string) error
		want   error
	}{
		{"snapshot corrupt", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, snapshotFile), []byte("rrsnap1\n\x05"), 0o644)
		}, ErrCorruptState},
		{"snapshot deleted", func(dir string) error { return os.Remove(filepath.Join(dir, snapshotFile)) }, ErrMissingState},
		{"legacy file corrupt", func(dir string) error {
			if err := os.Remove(filepath.Join(dir, identityFile)); err != nil {
				return err
			}
			b := encodeState(map[string]uint64{"s": 9})
			return os.WriteFile(filepath.Join(dir, stateFile), b[:len(b)-4], 0o644)
		}, ErrCorruptState},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			logWithFrames(t, dir, threeFrames...)
			require.NoError(t, tc.damage(dir))
			_, err := start(dir)
			require.ErrorIs(t, err, tc.want)
			require.NoError(t, openOS(t, dir).Close(), "the failed start released the dir")
		})
	}

	t.Run("locked", func(t *testing.T) {
		dir := t.TempDir()
		st := openOS(t, dir)
		_, err := start(dir)
		require.ErrorIs(t, err, ErrLocked)
		require.NoError(t, st.Close())
	})

	t.Run("legacy is migrated", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, stateFile), encodeState(map[string]uint64{"s": 9}), 0o644))
		n, err := start(dir)
		require.NoError(t, err)
		require.Equal(t, map[string]uint64{"s": 9}, n.Values())
		require.NoError(t, n.Close())
		require.NoFileExists(t, filepath.Join(dir, stateFile))
		l, err := openOS(t, dir).Load()
		require.NoError(t, err, "Close released the dir")
		require.Equal(t, Loaded{Identity: &Identity{Cluster: DefaultClusterID([]string{"a"}), Node: "a"}, Values: map[string]uint64{"s": 9}}, l)
	})
}

func TestCompactThreshold(t *testing.T) {
	require.Equal(t, int64(DefaultCompactMin), compactThreshold(0, 100))
	require.Equal(t, int64(3<<20), compactThreshold(0, 3<<20), "never below the snapshot's size")
	require.Equal(t, int64(500), compactThreshold(500, 100))
	require.Equal(t, int64(800), compactThreshold(500, 800))
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

// FuzzReplayLog: whatever replayLog accepts, its whole frames replay to
// the same values with nothing torn; and a torn tail never hides a whole
// frame.
func FuzzReplayLog(f *testing.F) {
	good := appendFrame(appendFrame(nil, []Entry{{"a", 3}}), []Entry{{"b", 1}, {"a", 9}})
	f.Add(good)
	f.Add(good[:len(good)-2])
	f.Add(append(bytes.Clone(good), 0, 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		vals := map[string]uint64{}
		end, err := replayLog(b, vals)
		if err != nil {
			return
		}
		again := map[string]uint64{}
		end2, err := replayLog(b[:end], again)
		require.NoError(t, err)
		require.Equal(t, end, end2)
		require.Equal(t, vals, again)
		for off := end + 1; off < len(b); off++ {
			_, _, ok := frameAt(b, off)
			require.False(t, ok, "a whole frame at %d after the cut at %d", off, end)
		}
		snap, err := decodeSnapshot(encodeSnapshot(vals))
		require.NoError(t, err)
		require.Equal(t, maps.Clone(vals), snap)
	})
}
