package raft_seq

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"io/fs"
	"path/filepath"
	"sync"

	"github.com/pkg/errors"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/seqlab/seqlab/fsys"
	"github.com/seqlab/seqlab/seq"
)

// FS is the filesystem raft_seq writes through (see fsys.FS): the real
// one (OSFS) or the lab's simulated disk (simnet/disk).
type FS = fsys.FS

// File is a file open for writing, as FS hands it out.
type File = fsys.File

// OSFS is the real filesystem.
type OSFS = fsys.OSFS

// Errors of OpenWAL.
var (
	// ErrCorrupt: the log is damaged before its last frame, or a whole
	// frame does not decode. The node refuses to start rather than run
	// without state it acknowledged.
	ErrCorrupt = errors.New("raft_seq: write-ahead log is corrupt")
	// ErrIdentity: the data dir belongs to another node or cluster.
	ErrIdentity = errors.New("raft_seq: data dir belongs to another node or cluster")
	// ErrLocked: another WAL has the data dir open.
	ErrLocked = fsys.ErrLocked
)

// The files of a data dir.
const (
	walLockFile = "LOCK"
	walFile     = "wal"
	walTmpFile  = "wal.tmp"
)

const (
	walMagic       = "raftseq-wal-1"
	walHeader      = 8 // length and CRC, 4 bytes each
	walMaxFrame    = 1 << 30
	kindMeta       = 'M'
	kindWrite      = 'W'
	hasSnapshot    = 1
	hasEntries     = 2
	hasHardState   = 4
	defaultCompact = 4 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Identity says whose a data dir is.
type Identity struct {
	Cluster string
	Node    uint64
}

// WAL is a node's write-ahead log: its raft state (hard state, entries,
// snapshot) durable in one directory.
//
// # Files
//
//	LOCK     locked (flock) while a WAL has the dir open
//	wal      frames: the identity first, then one frame per Write
//	wal.tmp  a rewrite under way, or left by a crash; ignored and removed
//
// A frame is a little-endian uint32 length (at least 1), the CRC-32C of
// those 4 bytes and the payload, and the payload: a kind byte, then for the
// identity the magic, the cluster and the node ID, and for a write a flags
// byte and its snapshot, entries and hard state, each a raftpb message
// (entries counted first), each length-prefixed. One Write is one frame,
// so a crash keeps it whole or not at all.
//
// # Torn tails and corruption
//
// Opening reads frames while each is whole. If bytes follow the last whole
// frame and no later offset starts a whole frame, they are a write a crash
// cut short: the file is truncated to the last whole frame and synced.
// Nothing acknowledged is lost, because Append syncs before it returns and
// the core sends nothing that depends on a write before that. If a later
// offset does start a whole frame, the damage is in the middle and opening
// fails with ErrCorrupt; so does a whole frame that does not decode.
//
// # Compaction
//
// When a Write with a snapshot brings the file past the larger of
// CompactAt and twice its size after the last rewrite, Append rewrites it:
// the identity, and one frame of the snapshot, the entries after it and
// the hard state, to wal.tmp, synced, renamed over wal, and the dir synced.
// A crash before the rename leaves the old file, after it the new one;
// both hold everything acknowledged.
//
// A write or sync that fails leaves the tail in doubt; the next Append
// first rewrites the file from what is known durable, and fails while it
// cannot.
type WAL struct {
	// CompactAt is the least file size that a snapshot compacts; 0 means
	// 4 MiB. Set it before the first Append.
	CompactAt int64

	fs   FS
	dir  string
	id   Identity
	lock io.Closer

	mu       sync.Mutex
	closed   bool
	st       State // what the file holds
	f        File
	size     int64
	base     int64 // size after the last rewrite
	damaged  error
	syncs    int64
	appended int64
}

// OpenWAL locks dir (creating it if needed) and loads its log. A dir with
// no log is fresh: the State has no snapshot, and Init must write one. A
// log of another identity is ErrIdentity; a damaged one ErrCorrupt.
func OpenWAL(files FS, dir string, id Identity) (*WAL, State, error) {
	if files == nil {
		files = OSFS{}
	}
	if id.Node == 0 || id.Cluster == "" {
		return nil, State{}, errors.Wrap(seq.ErrInvalidArgument, "wal: identity needs a cluster and a node ID")
	}
	if err := fsys.MakeDir(files, dir); err != nil {
		return nil, State{}, errors.Wrapf(err, "wal: create data dir %s", dir)
	}
	lock, err := files.Lock(filepath.Join(dir, walLockFile))
	if err != nil {
		if errors.Is(err, ErrLocked) {
			return nil, State{}, errors.Wrapf(err, "wal: data dir %s is in use by another node", dir)
		}
		return nil, State{}, errors.Wrapf(err, "wal: lock data dir %s", dir)
	}
	w := &WAL{fs: files, dir: dir, id: id, lock: lock}
	st, err := w.load()
	if err != nil {
		lock.Close()
		return nil, State{}, err
	}
	return w, st, nil
}

func (w *WAL) path(name string) string { return filepath.Join(w.dir, name) }

func (w *WAL) load() (State, error) {
	if err := w.fs.Remove(w.path(walTmpFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return State{}, errors.Wrap(err, "wal: remove a leftover wal.tmp")
	}
	b, err := w.fs.ReadFile(w.path(walFile))
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, nil
	}
	if err != nil {
		return State{}, errors.Wrap(err, "wal: read")
	}
	corrupt := func(off int, format string, a ...any) (State, error) {
		return State{}, errors.Wrapf(ErrCorrupt, "%s at byte %d: %s", w.path(walFile), off, errors.Errorf(format, a...))
	}
	off := 0
	first := true
	var st State
	for {
		payload, next, ok := frameAt(b, off)
		if !ok {
			break
		}
		if first {
			id, err := decodeMeta(payload)
			if err != nil {
				return corrupt(off, "%v", err)
			}
			if id != w.id {
				return State{}, errors.Wrapf(ErrIdentity, "%s holds node %d of cluster %q, not node %d of %q",
					w.dir, id.Node, id.Cluster, w.id.Node, w.id.Cluster)
			}
			first = false
		} else {
			wr, err := decodeWrite(payload)
			if err != nil {
				return corrupt(off, "%v", err)
			}
			if err := applyWrite(&st, wr); err != nil {
				return corrupt(off, "%v", err)
			}
		}
		off = next
	}
	if first {
		if len(b) == 0 {
			return State{}, nil // created, never written: a crash during Init
		}
		return corrupt(0, "no whole identity frame")
	}
	if off < len(b) {
		for o := off + 1; o < len(b); o++ {
			if _, _, ok := frameAt(b, o); ok {
				return corrupt(off, "a damaged frame, with whole frames after it")
			}
		}
		if err := w.fs.Truncate(w.path(walFile), int64(off)); err != nil {
			return State{}, errors.Wrap(err, "wal: cut the torn tail")
		}
		f, err := w.fs.OpenAppend(w.path(walFile))
		if err != nil {
			return State{}, errors.Wrap(err, "wal: open")
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return State{}, errors.Wrap(err, "wal: sync the cut tail")
		}
		w.f = f
	}
	if st.Snapshot == nil {
		return corrupt(off, "no snapshot: every log starts with one")
	}
	w.st = st
	w.size, w.base = int64(off), int64(off)
	return cloneState(st), nil
}

// Init makes st the log's content (with the identity), durably: the first
// start of a new node writes Bootstrap's state.
func (w *WAL) Init(st State) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("wal: closed")
	}
	if st.Snapshot == nil {
		return errors.Wrap(seq.ErrInvalidArgument, "wal: Init needs a state with a snapshot")
	}
	w.st = cloneState(st)
	return w.rewrite()
}

// Append makes writes durable, in order: one frame each, one fsync for
// all (none when sync is false: a planted bug for the lab, never right).
func (w *WAL) Append(writes []Write, sync bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("wal: closed")
	}
	if w.st.Snapshot == nil {
		return errors.New("wal: not initialised")
	}
	if w.damaged != nil {
		if err := w.rewrite(); err != nil {
			return errors.Wrapf(err, "wal: recover from an earlier failure (%v)", w.damaged)
		}
	}
	var buf []byte
	snap := false
	for _, wr := range writes {
		p, err := encodeWrite(wr)
		if err != nil {
			return errors.Wrapf(err, "wal: encode write %d", wr.Seq)
		}
		buf = appendFrame(buf, p)
		snap = snap || wr.Snapshot != nil
	}
	if len(buf) == 0 {
		return nil
	}
	if w.f == nil {
		f, err := w.fs.OpenAppend(w.path(walFile))
		if err != nil {
			return errors.Wrap(err, "wal: open")
		}
		w.f = f
	}
	if _, err := w.f.Write(buf); err != nil {
		w.damaged = err
		return errors.Wrap(err, "wal: write")
	}
	if sync {
		if err := w.f.Sync(); err != nil {
			w.damaged = err
			return errors.Wrap(err, "wal: fsync")
		}
		w.syncs++
	}
	for _, wr := range writes {
		if err := applyWrite(&w.st, wr); err != nil {
			// Only a bug in the core gets here. The frame is on disk, so
			// the next Append rewrites the file from what came before it.
			w.damaged = errors.Wrapf(err, "write %d", wr.Seq)
			return errors.Wrapf(err, "wal: write %d does not fit the log", wr.Seq)
		}
	}
	w.size += int64(len(buf))
	w.appended += int64(len(writes))
	if snap && w.size >= max(w.compactAt(), 2*w.base) {
		if err := w.rewrite(); err != nil {
			// The appended frames are durable; the next Append retries.
			w.damaged = err
		}
	}
	return nil
}

func (w *WAL) compactAt() int64 {
	if w.CompactAt > 0 {
		return w.CompactAt
	}
	return defaultCompact
}

// rewrite replaces the file with the identity and one frame of w.st.
func (w *WAL) rewrite() error {
	p, err := encodeWrite(Write{Snapshot: w.st.Snapshot, Entries: w.st.Entries, HardState: w.st.HardState})
	if err != nil {
		return err
	}
	buf := appendFrame(appendFrame(nil, encodeMeta(w.id)), p)
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	tmp := w.path(walTmpFile)
	f, err := w.fs.Create(tmp)
	if err != nil {
		return errors.Wrap(err, "wal: create wal.tmp")
	}
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
		w.syncs++
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = w.fs.Rename(tmp, w.path(walFile))
	}
	if err == nil {
		err = w.fs.SyncDir(w.dir)
	}
	if err != nil {
		w.fs.Remove(tmp) // give the space back; a leftover is removed on open
		return errors.Wrap(err, "wal: rewrite")
	}
	w.size, w.base, w.damaged = int64(len(buf)), int64(len(buf)), nil
	return nil
}

// WALStats counts a WAL's work.
type WALStats struct {
	Syncs  int64 // fsyncs of the log, rewrites included
	Writes int64 // Writes appended
	Size   int64 // the file's size
}

// Stats returns the WAL's counters.
func (w *WAL) Stats() WALStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return WALStats{Syncs: w.syncs, Writes: w.appended, Size: w.size}
}

// Close closes the log and releases the data dir's lock.
func (w *WAL) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	var err error
	if w.f != nil {
		err = w.f.Close()
	}
	if lerr := w.lock.Close(); err == nil {
		err = lerr
	}
	return err
}

// applyWrite applies a write to a state as a durable log does. It checks
// the write before it changes anything.
func applyWrite(st *State, wr Write) error {
	snap, ents := st.Snapshot, st.Entries
	if s := wr.Snapshot; s != nil {
		if s.GetMetadata() == nil {
			return errors.New("snapshot without metadata")
		}
		idx, term := s.GetMetadata().GetIndex(), s.GetMetadata().GetTerm()
		if snap == nil || idx > snap.GetMetadata().GetIndex() {
			var keep []*raftpb.Entry
			for i, e := range ents {
				if e.GetIndex() == idx && e.GetTerm() == term {
					keep = ents[i+1:]
					break
				}
			}
			snap, ents = s, keep
		}
	}
	if add := wr.Entries; len(add) > 0 {
		if snap == nil {
			return errors.New("entries before any snapshot")
		}
		for i := 1; i < len(add); i++ {
			if add[i].GetIndex() != add[i-1].GetIndex()+1 {
				return errors.Errorf("entries %d and %d are not consecutive", add[i-1].GetIndex(), add[i].GetIndex())
			}
		}
		snapIdx := snap.GetMetadata().GetIndex()
		for len(add) > 0 && add[0].GetIndex() <= snapIdx {
			add = add[1:] // covered by the snapshot
		}
		if len(add) > 0 {
			first, last := add[0].GetIndex(), snapIdx
			if n := len(ents); n > 0 {
				last = ents[n-1].GetIndex()
			}
			if first > last+1 {
				return errors.Errorf("entry %d leaves a gap after %d", first, last)
			}
			if k := first - snapIdx - 1; k < uint64(len(ents)) {
				ents = ents[:k:k] // replaced: copy, never write over entries others hold
			}
			ents = append(ents, add...)
		}
	}
	st.Snapshot, st.Entries = snap, ents
	if wr.HardState != nil {
		st.HardState = wr.HardState
	}
	return nil
}

func cloneState(st State) State {
	return State{HardState: st.HardState, Snapshot: st.Snapshot, Entries: append([]*raftpb.Entry(nil), st.Entries...)}
}

func appendFrame(dst, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, walHeader)...)
	dst = append(dst, payload...)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Update(crc32.Checksum(dst[start:start+4], castagnoli), castagnoli, payload))
	return dst
}

// frameAt returns the payload of the whole frame at b[off:], and the
// offset after it; ok is false unless the header is complete, the length
// is 1 to walMaxFrame and within b, and the CRC matches.
func frameAt(b []byte, off int) (payload []byte, next int, ok bool) {
	if len(b)-off < walHeader {
		return nil, 0, false
	}
	n := binary.LittleEndian.Uint32(b[off:])
	if n == 0 || n > walMaxFrame || uint64(n) > uint64(len(b)-off-walHeader) {
		return nil, 0, false
	}
	end := off + walHeader + int(n)
	if crc32.Update(crc32.Checksum(b[off:off+4], castagnoli), castagnoli, b[off+walHeader:end]) != binary.LittleEndian.Uint32(b[off+4:]) {
		return nil, 0, false
	}
	return b[off+walHeader : end], end, true
}

func encodeMeta(id Identity) []byte {
	b := []byte{kindMeta}
	b = binary.AppendUvarint(b, uint64(len(walMagic)))
	b = append(b, walMagic...)
	b = binary.AppendUvarint(b, uint64(len(id.Cluster)))
	b = append(b, id.Cluster...)
	return binary.AppendUvarint(b, id.Node)
}

func decodeMeta(p []byte) (Identity, error) {
	if len(p) == 0 || p[0] != kindMeta {
		return Identity{}, errors.New("the first frame is not the identity")
	}
	r := reader{b: p[1:]}
	magic := r.bytes()
	cluster := r.bytes()
	node := r.uvarint()
	if r.err != nil || string(magic) != walMagic || len(r.b) != 0 {
		return Identity{}, errors.New("bad identity frame (not a raft_seq log, or another version)")
	}
	return Identity{Cluster: string(cluster), Node: node}, nil
}

func encodeWrite(wr Write) ([]byte, error) {
	flags := byte(0)
	if wr.Snapshot != nil {
		flags |= hasSnapshot
	}
	if len(wr.Entries) > 0 {
		flags |= hasEntries
	}
	if wr.HardState != nil {
		flags |= hasHardState
	}
	b := []byte{kindWrite, flags}
	add := func(m proto.Message) error {
		p, err := proto.Marshal(m)
		if err != nil {
			return err
		}
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
		return nil
	}
	if wr.Snapshot != nil {
		if err := add(wr.Snapshot); err != nil {
			return nil, err
		}
	}
	if len(wr.Entries) > 0 {
		b = binary.AppendUvarint(b, uint64(len(wr.Entries)))
		for _, e := range wr.Entries {
			if err := add(e); err != nil {
				return nil, err
			}
		}
	}
	if wr.HardState != nil {
		if err := add(wr.HardState); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func decodeWrite(p []byte) (Write, error) {
	if len(p) < 2 || p[0] != kindWrite || p[1]&^(hasSnapshot|hasEntries|hasHardState) != 0 {
		return Write{}, errors.New("not a write frame")
	}
	flags := p[1]
	r := reader{b: p[2:]}
	var wr Write
	if flags&hasSnapshot != 0 {
		wr.Snapshot = &raftpb.Snapshot{}
		r.message(wr.Snapshot)
		if r.err == nil && wr.Snapshot.GetMetadata() == nil {
			r.err = errors.New("snapshot without metadata")
		}
	}
	if flags&hasEntries != 0 {
		n := r.uvarint()
		if r.err == nil && (n == 0 || n > uint64(len(r.b))) {
			r.err = errors.Errorf("bad entry count %d", n)
		}
		for i := uint64(0); i < n && r.err == nil; i++ {
			e := &raftpb.Entry{}
			r.message(e)
			wr.Entries = append(wr.Entries, e)
		}
	}
	if flags&hasHardState != 0 {
		wr.HardState = &raftpb.HardState{}
		r.message(wr.HardState)
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errors.Errorf("%d bytes after the write", len(r.b))
	}
	return wr, r.err
}

// reader decodes length-prefixed fields, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, k := binary.Uvarint(r.b)
	if k <= 0 {
		r.err = errors.New("truncated number")
		return 0
	}
	r.b = r.b[k:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errors.New("truncated field")
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) message(m proto.Message) {
	p := r.bytes()
	if r.err != nil {
		return
	}
	if err := proto.Unmarshal(p, m); err != nil {
		r.err = err
	}
}
