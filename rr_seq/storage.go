package rr_seq

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
	"strconv"

	"github.com/pkg/errors"
)

// Storage keeps a node's values durable in one state file in a directory.
// Every save writes the whole state to a new file, fsyncs it, renames it
// over the old one and fsyncs the directory, so a crash at any point leaves
// either the old state or the new one, never a torn mix; the live file is
// never truncated in place.
//
// The file is a JSON document followed by a line with its CRC-32C, so a
// truncated or corrupted file is detected on load instead of silently
// restarting every sequence at 1.
type Storage struct {
	fs  FS
	dir string
}

const (
	stateFile    = "state.json"
	stateTmpFile = "state.json.tmp"
	stateVersion = 1
	crcPrefix    = "crc32c:"
)

// ErrCorruptState is returned when a state file exists but cannot be
// trusted. The node refuses to start rather than reset its sequences.
var ErrCorruptState = errors.New("rr_seq: corrupt state file")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type stateDoc struct {
	Version int               `json:"version"`
	Values  map[string]uint64 `json:"values"`
}

// OpenStorage prepares dir (creating it if needed) on fsys.
func OpenStorage(fsys FS, dir string) (*Storage, error) {
	if fsys == nil {
		fsys = OSFS{}
	}
	if dir == "" {
		return nil, errors.New("rr_seq: storage needs a data dir")
	}
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return nil, errors.Wrapf(err, "create data dir %s", dir)
	}
	return &Storage{fs: fsys, dir: dir}, nil
}

// Path returns the state file's path.
func (s *Storage) Path() string { return filepath.Join(s.dir, stateFile) }

// Load returns the saved values; a missing file is an empty state.
func (s *Storage) Load() (map[string]uint64, error) {
	b, err := s.fs.ReadFile(s.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]uint64{}, nil
	}
	if err != nil {
		return nil, errors.Wrapf(err, "read state %s", s.Path())
	}
	vals, err := decodeState(b)
	if err != nil {
		return nil, errors.Wrapf(err, "load %s", s.Path())
	}
	return vals, nil
}

func decodeState(b []byte) (map[string]uint64, error) {
	body, trailer, ok := cutLastLine(b)
	if !ok || !bytes.HasPrefix(trailer, []byte(crcPrefix)) {
		return nil, errors.Wrap(ErrCorruptState, "missing checksum line (truncated?)")
	}
	want, err := strconv.ParseUint(string(trailer[len(crcPrefix):]), 16, 32)
	if err != nil {
		return nil, errors.Wrapf(ErrCorruptState, "bad checksum line %q", trailer)
	}
	if got := crc32.Checksum(body, castagnoli); got != uint32(want) {
		return nil, errors.Wrapf(ErrCorruptState, "checksum %08x, file says %08x", got, want)
	}
	var doc stateDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, errors.Wrapf(ErrCorruptState, "decode: %v", err)
	}
	if doc.Version != stateVersion {
		return nil, errors.Wrapf(ErrCorruptState, "version %d, want %d", doc.Version, stateVersion)
	}
	if doc.Values == nil {
		doc.Values = map[string]uint64{}
	}
	for name, v := range doc.Values {
		if err := ValidateName(name); err != nil || v == 0 {
			return nil, errors.Wrapf(ErrCorruptState, "bad entry %q=%d", name, v)
		}
	}
	return doc.Values, nil
}

// cutLastLine splits "body\ntrailer\n" into body (with its newline) and
// trailer.
func cutLastLine(b []byte) (body, trailer []byte, ok bool) {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, nil, false
	}
	i := bytes.LastIndexByte(b[:len(b)-1], '\n')
	if i < 0 {
		return nil, nil, false
	}
	return b[:i+1], b[i+1 : len(b)-1], true
}

func encodeState(values map[string]uint64) []byte {
	body, _ := json.Marshal(stateDoc{Version: stateVersion, Values: values}) // a map of strings to ints always encodes
	body = append(body, '\n')
	return fmt.Appendf(body, "%s%08x\n", crcPrefix, crc32.Checksum(body, castagnoli))
}

// Save makes values the durable state. When sync is false it skips every
// fsync: the data reaches the page cache only. That is a planted bug the
// lab must catch, never a production setting.
func (s *Storage) Save(values map[string]uint64, sync bool) error {
	tmp := filepath.Join(s.dir, stateTmpFile)
	f, err := s.fs.Create(tmp)
	if err != nil {
		return errors.Wrapf(err, "create %s", tmp)
	}
	if _, err := f.Write(encodeState(values)); err != nil {
		f.Close()
		return errors.Wrapf(err, "write %s", tmp)
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return errors.Wrapf(err, "fsync %s", tmp)
		}
	}
	if err := f.Close(); err != nil {
		return errors.Wrapf(err, "close %s", tmp)
	}
	if err := s.fs.Rename(tmp, s.Path()); err != nil {
		return errors.Wrapf(err, "rename %s", tmp)
	}
	if sync {
		if err := s.fs.SyncDir(s.dir); err != nil {
			return errors.Wrapf(err, "fsync dir %s", s.dir)
		}
	}
	return nil
}
