package rr_seq

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pkg/errors"
)

// The encodings of a data dir's files; Storage's comment describes them.

// The files of a data dir.
const (
	lockFile        = "LOCK"
	identityFile    = "identity"
	identityTmpFile = "identity.tmp"
	snapshotFile    = "snapshot"
	snapshotTmpFile = "snapshot.tmp"
	logFile         = "log"
	// The single state file of earlier versions, read only to migrate.
	stateFile    = "state.json"
	stateTmpFile = "state.json.tmp"
)

const (
	stateVersion    = 1
	identityVersion = 1
	crcPrefix       = "crc32c:"
	snapshotMagic   = "rrsnap1\n"
	frameHeader     = 8 // length and CRC, 4 bytes each
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Entry is one value of a log frame or a snapshot.
type Entry struct {
	Name  string
	Value uint64
}

// appendFrame appends one frame holding entries to dst.
func appendFrame(dst []byte, entries []Entry) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, frameHeader)...)
	dst = binary.AppendUvarint(dst, uint64(len(entries)))
	for _, e := range entries {
		dst = binary.AppendUvarint(dst, uint64(len(e.Name)))
		dst = append(dst, e.Name...)
		dst = binary.AppendUvarint(dst, e.Value)
	}
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start-frameHeader))
	binary.LittleEndian.PutUint32(dst[start+4:], frameCRC(dst[start:start+4], dst[start+frameHeader:]))
	return dst
}

func frameCRC(length, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(length, castagnoli), castagnoli, payload)
}

// frameAt returns the payload of the whole frame that starts at b[off:]
// and the offset after it; ok is false unless the header is complete, the
// length is at least 1 and within b, and the CRC matches.
func frameAt(b []byte, off int) (payload []byte, next int, ok bool) {
	if len(b)-off < frameHeader {
		return nil, 0, false
	}
	n := binary.LittleEndian.Uint32(b[off:])
	if n == 0 || uint64(n) > uint64(len(b)-off-frameHeader) {
		return nil, 0, false
	}
	end := off + frameHeader + int(n)
	if frameCRC(b[off:off+4], b[off+frameHeader:end]) != binary.LittleEndian.Uint32(b[off+4:]) {
		return nil, 0, false
	}
	return b[off+frameHeader : end], end, true
}

// decodeEntries calls f with every entry of a whole frame's payload. A
// payload that does not decode is an error: its CRC matched, so it is no
// torn write.
func decodeEntries(p []byte, f func(name string, v uint64) error) error {
	count, k := binary.Uvarint(p)
	if k <= 0 {
		return errors.New("bad entry count")
	}
	p = p[k:]
	if count > uint64(len(p))/3 { // an entry takes at least 3 bytes
		return errors.Errorf("%d entries cannot fit in %d bytes", count, len(p))
	}
	for i := range count {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return errors.Errorf("entry %d: bad name length", i)
		}
		name := string(p[k : k+int(n)])
		p = p[k+int(n):]
		v, k := binary.Uvarint(p)
		if k <= 0 {
			return errors.Errorf("entry %d (%q): bad value", i, name)
		}
		p = p[k:]
		if err := ValidateName(name); err != nil || v == 0 {
			return errors.Errorf("bad entry %q=%d", name, v)
		}
		if err := f(name, v); err != nil {
			return err
		}
	}
	if len(p) != 0 {
		return errors.Errorf("%d bytes after the last entry", len(p))
	}
	return nil
}

// raise keeps the larger value: values only go up, so replay is
// idempotent.
func raise(values map[string]uint64, name string, v uint64) {
	if v > values[name] {
		values[name] = v
	}
}

// replayLog applies the log's whole frames to values and returns where
// they end. Bytes after that end are a torn tail unless a whole frame
// starts somewhere in them, which is corruption in the middle.
func replayLog(b []byte, values map[string]uint64) (end int, err error) {
	for end < len(b) {
		p, next, ok := frameAt(b, end)
		if !ok {
			break
		}
		if err := decodeEntries(p, func(name string, v uint64) error {
			raise(values, name, v)
			return nil
		}); err != nil {
			return 0, errors.Wrapf(ErrCorruptState, "frame at offset %d: %v", end, err)
		}
		end = next
	}
	for off := end + 1; off+frameHeader <= len(b); off++ {
		if _, _, ok := frameAt(b, off); ok {
			return 0, errors.Wrapf(ErrCorruptState,
				"the frame at offset %d is damaged but a whole frame follows at offset %d: not a torn write", end, off)
		}
	}
	return end, nil
}

// encodeSnapshot is the snapshot file of values: the magic and one frame,
// names sorted so that equal states give equal files.
func encodeSnapshot(values map[string]uint64) []byte {
	entries := make([]Entry, 0, len(values))
	for name, v := range values {
		entries = append(entries, Entry{name, v})
	}
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return appendFrame([]byte(snapshotMagic), entries)
}

func decodeSnapshot(b []byte) (map[string]uint64, error) {
	if !bytes.HasPrefix(b, []byte(snapshotMagic)) {
		return nil, errors.Wrap(ErrCorruptState, "not a snapshot (bad magic; truncated?)")
	}
	p, next, ok := frameAt(b, len(snapshotMagic))
	if !ok {
		return nil, errors.Wrap(ErrCorruptState, "truncated or checksum mismatch")
	}
	if next != len(b) {
		return nil, errors.Wrapf(ErrCorruptState, "%d bytes after the frame", len(b)-next)
	}
	values := map[string]uint64{}
	if err := decodeEntries(p, func(name string, v uint64) error {
		if _, dup := values[name]; dup {
			return errors.Errorf("%q twice", name)
		}
		values[name] = v
		return nil
	}); err != nil {
		return nil, errors.Wrap(ErrCorruptState, err.Error())
	}
	return values, nil
}

// Identity says whose a data dir is.
type Identity struct {
	Cluster, Node string
}

// Check returns an error wrapping ErrForeignState unless id is want.
func (id Identity) Check(want Identity) error {
	if id == want {
		return nil
	}
	return errors.Wrapf(ErrForeignState, "the data dir belongs to node %q of cluster %q, not to node %q of cluster %q",
		id.Node, id.Cluster, want.Node, want.Cluster)
}

func (id Identity) validate() error {
	if !utf8.ValidString(id.Cluster) || !utf8.ValidString(id.Node) {
		return errors.Errorf("rr_seq: identity %q/%q is not valid UTF-8", id.Cluster, id.Node)
	}
	return nil
}

type identityDoc struct {
	Version int    `json:"version"`
	Cluster string `json:"cluster"`
	Node    string `json:"node"`
}

func encodeIdentity(id Identity) []byte {
	body, _ := json.Marshal(identityDoc{Version: identityVersion, Cluster: id.Cluster, Node: id.Node}) // strings always encode
	return withTrailer(body)
}

func decodeIdentity(b []byte) (Identity, error) {
	body, err := checkTrailer(b)
	if err != nil {
		return Identity{}, err
	}
	var doc identityDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return Identity{}, errors.Wrapf(ErrCorruptState, "decode: %v", err)
	}
	if doc.Version != identityVersion {
		return Identity{}, errors.Wrapf(ErrCorruptState, "version %d, want %d", doc.Version, identityVersion)
	}
	return Identity{Cluster: doc.Cluster, Node: doc.Node}, nil
}

// withTrailer appends a newline and a line with the CRC-32C of body and
// the newline: the text files' checksum.
func withTrailer(body []byte) []byte {
	body = append(body, '\n')
	return fmt.Appendf(body, "%s%08x\n", crcPrefix, crc32.Checksum(body, castagnoli))
}

// checkTrailer returns the body of a file made by withTrailer, or an error
// wrapping ErrCorruptState.
func checkTrailer(b []byte) ([]byte, error) {
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
	return body, nil
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

// stateDoc is the legacy state file: every value, rewritten on each save.
type stateDoc struct {
	Version int               `json:"version"`
	Values  map[string]uint64 `json:"values"`
}

// encodeState is the legacy state file of values. Only tests write it now,
// to make data dirs of earlier versions.
func encodeState(values map[string]uint64) []byte {
	body, _ := json.Marshal(stateDoc{Version: stateVersion, Values: values}) // a map of strings to ints always encodes
	return withTrailer(body)
}

func decodeState(b []byte) (map[string]uint64, error) {
	body, err := checkTrailer(b)
	if err != nil {
		return nil, err
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
