package rr_seq

import (
	"io"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/fsys"
	"github.com/seqlab/seqlab/seq"
)

// Storage keeps a node's values durable in its data dir, and says whose
// they are. A save costs O(1) in the number of names: it appends one
// checksummed frame to a log, which is folded into a snapshot from time to
// time.
//
// # Files
//
//	LOCK          locked (flock) while a Storage has the dir open; empty
//	identity      the marker: cluster and node, as JSON and a CRC-32C line
//	snapshot      every value as of the last compaction
//	log           the frames appended since
//	snapshot.tmp  a compaction under way, or left by a crash; Load ignores it
//	state.json    the one state file of earlier versions, read to migrate
//
// Init writes the identity file last, once the snapshot and the empty log
// are durable, so its presence means the dir is initialised. A dir without
// it is fresh (whatever an Init that never returned left behind: nothing in
// it was acknowledged), or, if it holds a state.json, legacy. With the
// marker, a missing snapshot or log is ErrMissingState and a damaged file
// ErrCorruptState: the node refuses to start rather than run with fewer
// values than it acknowledged.
//
// # Frames
//
// A frame is
//
//	length   uint32, little-endian: bytes of payload, at least 1
//	crc      uint32, little-endian: CRC-32C of the 4 length bytes and the payload
//	payload  uvarint count, then count times: uvarint len(name), name, uvarint value
//
// The log is frames back to back; the snapshot is the 8 bytes "rrsnap1\n"
// and one frame that holds every name once. Values only go up, so loading
// keeps the largest value seen per name: replaying a frame twice, or a log
// over a snapshot that already holds it, changes nothing.
//
// # Torn tails
//
// Load reads frames from the start of the log while each is whole: its
// header complete, its length at least 1 and within the file, its CRC
// right. Call E the end of the last whole frame. If bytes follow E and no
// offset after E starts a whole frame, they are a write that a crash cut
// short: Load truncates the log to E and fsyncs it, as any write-ahead log
// does. Nothing acknowledged is lost that way, because Append writes one
// frame at a time and, with sync, returns only once it is durable. If some
// offset after E does start a whole frame, the damage is in the middle of
// the log and Load refuses with ErrCorruptState; so it does for a whole
// frame whose payload does not decode, since its CRC says it was written
// so. Load changes nothing else on disk. (Names may hold any bytes, so a
// torn frame could hold what parses as a whole frame; that takes crafted
// names, and then the node refuses to start rather than lose values.)
//
// # Compaction
//
// When the log reaches the threshold, the larger of CompactMin (1 MiB by
// default) and the last snapshot's size, the Append that crossed it writes
// its values to snapshot.tmp, fsyncs it, renames it over snapshot and
// fsyncs the dir; only then does it truncate the log to empty and fsync
// the log. A crash before the dir's fsync leaves the old snapshot or the
// new one, with the whole log either way. A crash after it leaves the new
// snapshot, which holds everything the log held, with the log whole, empty
// or torn: replay is idempotent, so every case loads to at least what was
// acknowledged. The log is never cut before the snapshot that covers it is
// durable.
//
// Since the threshold is at least the snapshot's size, a compaction writes
// at most about twice what the log took since the last one, so a save
// stays O(1) amortised. A compaction needs room for a second snapshot (old
// and new coexist until the rename); an Append only for its frame. A
// compaction that fails (a full disk) is not fatal: the Append that ran it has still succeeded, Stats
// records the error, the partial snapshot.tmp is removed to give its space
// back, and the next try comes once the log has grown by another threshold.
//
// A write or fsync of the log that fails leaves its tail in doubt (after a
// failed fsync, Linux may drop the dirty pages yet show them). Append then
// cuts a partly written frame off at once; after a failed fsync, or if that
// cut fails, every later Append first compacts, and fails while it cannot.
//
// A Storage is safe for concurrent use.
type Storage struct {
	// CompactMin is the least log size in bytes at which an Append
	// compacts; 0 means DefaultCompactMin. Set it before the first Append.
	CompactMin int64

	fs   FS
	dir  string
	lock io.Closer

	mu       sync.Mutex
	closed   bool
	ready    bool              // a marker was loaded or Init ran: Append may write
	values   map[string]uint64 // the snapshot, the log and every append since
	log      File              // open for appending; nil until needed
	logSize  int64             // bytes in the log, all whole frames unless damaged
	snapSize int64
	retryAt  int64 // after a failed compaction, the log size of the next try
	unsynced bool  // frames were written without an fsync
	damaged  error // why the log's tail is in doubt; compact before writing on
	stale    bool  // a migrated state.json is still there
	stats    StorageStats
}

// DefaultCompactMin is the default of Storage.CompactMin.
const DefaultCompactMin = 1 << 20

var (
	// ErrCorruptState is returned when a state file exists but cannot be
	// trusted. The node refuses to start rather than reset its sequences.
	ErrCorruptState = errors.New("rr_seq: corrupt state file")
	// ErrMissingState is returned when the data dir is marked initialised
	// but a file of its state is gone.
	ErrMissingState = errors.New("rr_seq: state file missing")
	// ErrForeignState is returned by Identity.Check when a data dir
	// belongs to another node or cluster.
	ErrForeignState = errors.New("rr_seq: data dir of another node or cluster")

	errClosed = errors.New("rr_seq: storage is closed")
)

// Loaded is what Load found in a data dir.
type Loaded struct {
	// Identity is the dir's marker; nil when it has none (a fresh or a
	// legacy dir), and then Append refuses until Init.
	Identity *Identity
	// Values are the durable values, never nil.
	Values map[string]uint64
	// Legacy is true for a dir of an earlier version (state.json without
	// a marker): Values are its state, and Init migrates it.
	Legacy bool
}

// StorageStats counts what a Storage did.
type StorageStats struct {
	// LogBytes and SnapshotBytes are the sizes of the log and the last
	// snapshot.
	LogBytes, SnapshotBytes int64
	// Compactions and CompactionFailures count compactions that succeeded
	// and failed.
	Compactions, CompactionFailures int
	// LastCompactionErr is why the last compaction failed; nil once one
	// succeeds.
	LastCompactionErr error
	// TornBytes is what Load cut off a torn log tail.
	TornBytes int64
}

// OpenStorage opens the data dir dir on fsys (the real filesystem when
// nil), creating it if needed, and locks it until Close. Creating it
// fsyncs its parent, so that the dir survives a power loss. A dir that is
// already open, in any process, is an error wrapping ErrLocked.
func OpenStorage(files FS, dir string) (*Storage, error) {
	if files == nil {
		files = OSFS{}
	}
	if dir == "" {
		return nil, errors.New("rr_seq: storage needs a data dir")
	}
	dir = filepath.Clean(dir)
	if err := fsys.MakeDir(files, dir); err != nil {
		return nil, errors.Wrapf(err, "create data dir %s", dir)
	}
	lock, err := files.Lock(filepath.Join(dir, lockFile))
	if errors.Is(err, ErrLocked) {
		return nil, errors.Wrapf(err, "open data dir %s: another process holds the data dir (is the node running already?)", dir)
	}
	if err != nil {
		return nil, errors.Wrapf(err, "lock data dir %s", dir)
	}
	return &Storage{fs: files, dir: dir, lock: lock}, nil
}

// Dir returns the data dir.
func (s *Storage) Dir() string { return s.dir }

// Path returns the snapshot's path.
func (s *Storage) Path() string { return s.path(snapshotFile) }

func (s *Storage) path(name string) string { return filepath.Join(s.dir, name) }

// refuse wraps why the node cannot start on a file.
func refuse(file string, err error) error {
	return errors.Wrapf(err, "the node refuses to start on %s (--recover rebuilds the data dir from its peers)", file)
}

// Load reads the data dir. Without a marker it is fresh (no values) or
// legacy; with one, its snapshot and log must be there and sound. Load
// changes nothing on disk but a torn log tail, which it cuts off.
func (s *Storage) Load() (Loaded, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Loaded{}, errClosed
	}
	s.ready = false
	s.closeLog()
	idPath := s.path(identityFile)
	idb, err := s.fs.ReadFile(idPath)
	if errors.Is(err, fs.ErrNotExist) {
		return s.loadUnmarked()
	}
	if err != nil {
		return Loaded{}, errors.Wrapf(err, "read %s", idPath)
	}
	id, err := decodeIdentity(idb)
	if err != nil {
		return Loaded{}, refuse(idPath, err)
	}
	snapPath, logPath := s.path(snapshotFile), s.path(logFile)
	snap, err := s.fs.ReadFile(snapPath)
	if errors.Is(err, fs.ErrNotExist) {
		return Loaded{}, refuse(snapPath, errors.Wrapf(ErrMissingState, "it is missing, though %s marks the dir initialised", idPath))
	}
	if err != nil {
		return Loaded{}, errors.Wrapf(err, "read %s", snapPath)
	}
	values, err := decodeSnapshot(snap)
	if err != nil {
		return Loaded{}, refuse(snapPath, err)
	}
	logb, err := s.fs.ReadFile(logPath)
	if errors.Is(err, fs.ErrNotExist) {
		return Loaded{}, refuse(logPath, errors.Wrapf(ErrMissingState, "it is missing, though %s marks the dir initialised", idPath))
	}
	if err != nil {
		return Loaded{}, errors.Wrapf(err, "read %s", logPath)
	}
	end, err := replayLog(logb, values)
	if err != nil {
		return Loaded{}, refuse(logPath, err)
	}
	if end < len(logb) {
		if err := s.fs.Truncate(logPath, int64(end)); err != nil {
			return Loaded{}, errors.Wrapf(err, "cut the torn tail off %s", logPath)
		}
		if err := s.syncLog(); err != nil {
			return Loaded{}, errors.Wrapf(err, "cut the torn tail off %s", logPath)
		}
		s.stats.TornBytes += int64(len(logb) - end)
	}
	_, err = s.fs.ReadFile(s.path(stateFile))
	s.stale = err == nil
	s.values, s.logSize, s.snapSize = values, int64(end), int64(len(snap))
	s.retryAt, s.unsynced, s.damaged = 0, false, nil
	s.ready = true
	return Loaded{Identity: &id, Values: maps.Clone(values)}, nil
}

// loadUnmarked loads a dir without a marker: fresh, or legacy.
func (s *Storage) loadUnmarked() (Loaded, error) {
	p := s.path(stateFile)
	b, err := s.fs.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Loaded{Values: map[string]uint64{}}, nil
	}
	if err != nil {
		return Loaded{}, errors.Wrapf(err, "read state %s", p)
	}
	values, err := decodeState(b)
	if err != nil {
		return Loaded{}, refuse(p, err)
	}
	return Loaded{Values: values, Legacy: true}, nil
}

// Init makes values the dir's state and id its identity: it writes the
// snapshot, then an empty log, then the marker, each durable before the
// next, and then removes a legacy state.json. Until it returns, a crash
// leaves the dir as it was, except that re-initialising an initialised dir
// may leave its old marker over the new values, merged with the old log.
func (s *Storage) Init(id Identity, values map[string]uint64) error {
	if err := id.validate(); err != nil {
		return err
	}
	for name, v := range values {
		if err := checkEntry(Entry{name, v}); err != nil {
			return errors.Wrap(err, "init")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	s.ready = false
	s.closeLog()
	snap := encodeSnapshot(values)
	if err := s.replace(snapshotTmpFile, snapshotFile, snap); err != nil {
		return err
	}
	if err := s.syncDir(); err != nil {
		return err
	}
	if err := s.writeSynced(s.path(logFile), nil); err != nil {
		return err
	}
	if err := s.syncDir(); err != nil {
		return err
	}
	if err := s.replace(identityTmpFile, identityFile, encodeIdentity(id)); err != nil {
		return err
	}
	if err := s.syncDir(); err != nil {
		return err
	}
	s.values = maps.Clone(values)
	if s.values == nil {
		s.values = map[string]uint64{}
	}
	s.logSize, s.snapSize = 0, int64(len(snap))
	s.retryAt, s.unsynced, s.damaged = 0, false, nil
	s.ready = true
	// The dir is initialised now; a state.json that outlives a crash here
	// is ignored, and the next compaction removes it.
	s.stale = true
	s.removeLegacy()
	return nil
}

func checkEntry(e Entry) error {
	if err := ValidateName(e.Name); err != nil {
		return err
	}
	if e.Value == 0 {
		return errors.Wrapf(seq.ErrInvalidArgument, "value of %q is 0", e.Name)
	}
	return nil
}

// Append writes entries to the log as one frame and, if sync, fsyncs it
// once: when it returns nil with sync, the entries are durable. Values
// below the stored ones are written but change nothing. An Append that
// takes the log past the threshold then compacts; that compaction's
// failure is not Append's (see Stats).
//
// With sync false nothing is fsynced: the data reaches the page cache
// only. That is a planted bug the lab must catch, never a production
// setting.
func (s *Storage) Append(entries []Entry, sync bool) error {
	for _, e := range entries {
		if err := checkEntry(e); err != nil {
			return errors.Wrap(err, "append")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	logPath := s.path(logFile)
	if s.damaged != nil {
		if err := s.compact(); err != nil {
			s.stats.CompactionFailures++
			s.stats.LastCompactionErr = err
			return errors.Wrapf(err, "rewrite the state after %s failed (%v)", logPath, s.damaged)
		}
	}
	if len(entries) == 0 {
		if sync && s.unsynced {
			return s.syncLog()
		}
		return nil
	}
	if err := s.openLog(); err != nil {
		return err
	}
	frame := appendFrame(nil, entries)
	if _, err := s.log.Write(frame); err != nil {
		// Cut off what part of the frame got in, or the next frame
		// would follow garbage.
		if terr := s.fs.Truncate(logPath, s.logSize); terr != nil {
			s.damaged = err
		}
		return errors.Wrapf(err, "append to %s", logPath)
	}
	s.logSize += int64(len(frame))
	for _, e := range entries {
		raise(s.values, e.Name, e.Value)
	}
	if sync {
		if err := s.syncLog(); err != nil {
			return err
		}
	} else {
		s.unsynced = true
	}
	if s.logSize >= s.nextCompaction() {
		if err := s.compact(); err != nil {
			s.stats.CompactionFailures++
			s.stats.LastCompactionErr = err
			s.retryAt = s.logSize + s.threshold()
		}
	}
	return nil
}

// Save appends, as one frame, every value of values above the stored one.
//
// Deprecated: it compares every name, O(len(values)); a caller that knows
// what changed calls Append.
func (s *Storage) Save(values map[string]uint64, sync bool) error {
	s.mu.Lock()
	var entries []Entry
	for name, v := range values {
		if v > s.values[name] {
			entries = append(entries, Entry{name, v})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return s.Append(entries, sync)
}

// Stats returns what the Storage did so far.
func (s *Storage) Stats() StorageStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.LogBytes, st.SnapshotBytes = s.logSize, s.snapSize
	return st
}

// Close releases the data dir. It does not fsync what Append left
// unsynced.
func (s *Storage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed, s.ready = true, false
	err := s.closeLog()
	if lerr := s.lock.Close(); err == nil {
		err = lerr
	}
	return err
}

func (s *Storage) writable() error {
	switch {
	case s.closed:
		return errClosed
	case !s.ready:
		return errors.Errorf("rr_seq: data dir %s is not initialised: Load found no marker, and Init has not run", s.dir)
	}
	return nil
}

func (s *Storage) threshold() int64 { return compactThreshold(s.CompactMin, s.snapSize) }

// compactThreshold is the log size at which to compact: the larger of
// compactMin (DefaultCompactMin if 0) and the snapshot's size, so that a
// compaction never writes much more than the log took since the last one.
func compactThreshold(compactMin, snapSize int64) int64 {
	if compactMin <= 0 {
		compactMin = DefaultCompactMin
	}
	return max(compactMin, snapSize)
}

func (s *Storage) nextCompaction() int64 {
	if s.retryAt > 0 {
		return s.retryAt
	}
	return s.threshold()
}

// compact makes a snapshot of s.values durable and then empties the log;
// Storage's comment argues why a crash anywhere in it is safe.
func (s *Storage) compact() error {
	snap := encodeSnapshot(s.values)
	if err := s.replace(snapshotTmpFile, snapshotFile, snap); err != nil {
		return err
	}
	if err := s.syncDir(); err != nil {
		return err
	}
	s.snapSize = int64(len(snap))
	logPath := s.path(logFile)
	if err := s.fs.Truncate(logPath, 0); err != nil {
		return errors.Wrapf(err, "empty %s", logPath)
	}
	s.logSize = 0
	if err := s.syncLog(); err != nil {
		return err
	}
	s.retryAt, s.unsynced, s.damaged = 0, false, nil
	s.stats.Compactions++
	s.stats.LastCompactionErr = nil
	if s.stale {
		s.removeLegacy()
	}
	return nil
}

// replace makes data the content of name through tmpName: written,
// fsynced and renamed, durable once the dir is fsynced. On failure it
// removes the temp file, whose space a nearly full disk needs back.
func (s *Storage) replace(tmpName, name string, data []byte) error {
	tmp := s.path(tmpName)
	err := s.writeSynced(tmp, data)
	if err == nil {
		if err = s.fs.Rename(tmp, s.path(name)); err != nil {
			err = errors.Wrapf(err, "rename %s", tmp)
		}
	}
	if err != nil {
		s.fs.Remove(tmp) // best effort; Load ignores it anyway
	}
	return err
}

// writeSynced creates (or truncates) name, writes data and fsyncs it.
func (s *Storage) writeSynced(name string, data []byte) error {
	f, err := s.fs.Create(name)
	if err != nil {
		return errors.Wrapf(err, "create %s", name)
	}
	if len(data) > 0 {
		if _, err := f.Write(data); err != nil {
			f.Close()
			return errors.Wrapf(err, "write %s", name)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return errors.Wrapf(err, "fsync %s", name)
	}
	if err := f.Close(); err != nil {
		return errors.Wrapf(err, "close %s", name)
	}
	return nil
}

func (s *Storage) syncDir() error {
	if err := s.fs.SyncDir(s.dir); err != nil {
		return errors.Wrapf(err, "fsync dir %s", s.dir)
	}
	return nil
}

func (s *Storage) openLog() error {
	if s.log != nil {
		return nil
	}
	p := s.path(logFile)
	f, err := s.fs.OpenAppend(p)
	if err != nil {
		return errors.Wrapf(err, "open %s", p)
	}
	s.log = f
	return nil
}

// syncLog fsyncs the log; a failure puts its content in doubt.
func (s *Storage) syncLog() error {
	err := s.openLog()
	if err == nil {
		if err = s.log.Sync(); err != nil {
			err = errors.Wrapf(err, "fsync %s", s.path(logFile))
		}
	}
	if err != nil {
		s.damaged = err
		return err
	}
	s.unsynced = false
	return nil
}

func (s *Storage) closeLog() error {
	if s.log == nil {
		return nil
	}
	err := s.log.Close()
	s.log = nil
	return err
}

// removeLegacy removes the files of an earlier version once the dir is
// initialised; a failure leaves them for the next compaction.
func (s *Storage) removeLegacy() {
	removed := false
	for _, name := range []string{stateFile, stateTmpFile} {
		err := s.fs.Remove(s.path(name))
		switch {
		case err == nil:
			removed = true
		case !errors.Is(err, fs.ErrNotExist):
			return
		}
	}
	if removed && s.syncDir() != nil {
		return
	}
	s.stale = false
}
