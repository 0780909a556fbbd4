// Package disk is a simulated disk under the systems' filesystem
// interface, fsys.FS. It fails the way a real disk with a page cache
// fails: what a process wrote is visible at once, but only what it made
// durable survives a crash. A file's content and size are durable as of
// its last Sync, and a
// directory's entries (files and directories created, removed or renamed
// in it) as of its last SyncDir. On Crash everything else is lost, or, in
// Torn mode, an unsynced file keeps a random prefix of what was written to
// it, as a crash in the middle of write-back would leave it.
//
// A process uses the disk through a Mount. When the process dies (Kill) or
// the power fails (Crash), its mount is fenced off: whatever its goroutines
// still try to do fails with ErrGone, because a dead process writes
// nothing more, however late its last request handler runs. Its locks go
// with it, as the kernel drops a dead process's flocks.
//
// It also injects I/O errors (FailIO) and can be small (SetCapacity), so
// that writes fail with ENOSPC. It holds everything in memory, never
// touches the real filesystem, and draws every random choice from its
// seed.
package disk

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"sync"
	"syscall"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/fsys"
)

// CrashMode says what a crash does to data that was not synced.
type CrashMode int

const (
	// LoseUnsynced drops every unsynced write, truncate and directory
	// change.
	LoseUnsynced CrashMode = iota
	// Torn is LoseUnsynced, except that a file whose directory entry is
	// durable and whose content changed since its last Sync keeps part of
	// the change. If it was only appended to, it keeps its synced content
	// and a random prefix of the rest. If it was truncated or rewritten,
	// it keeps, at random, either its synced content (the truncate was
	// lost) or the part it shares with that content and a random prefix
	// of what follows in the new content.
	Torn
)

func (m CrashMode) String() string {
	if m == Torn {
		return "torn"
	}
	return "lose-unsynced"
}

// ErrInjected is the error of injected I/O faults.
var ErrInjected = errors.New("disk: injected I/O error")

// ErrGone is what a fenced-off mount returns: its process is dead.
var ErrGone = errors.New("disk: the process that mounted the disk is gone")

type inode struct {
	data    []byte // what readers see (the page cache)
	durable []byte // content as of the last Sync
	synced  bool   // durable is meaningful
}

// Disk is a simulated disk. It is safe for concurrent use.
type Disk struct {
	mu          sync.Mutex
	rng         *rand.Rand
	names       map[string]*inode // the files as processes see them
	durable     map[string]*inode // the files as of the last SyncDir of each dir
	dirs        map[string]bool   // the directories as processes see them
	durableDirs map[string]bool   // the directories as of the last SyncDir of each parent
	locks       map[string]*lock  // held locks by path
	fail        error
	capacity    int64 // 0: unlimited
	crashes     int
	epoch       int // bumped when the process using the disk dies
}

var _ fsys.FS = (*Disk)(nil)

// New returns an empty disk whose torn writes are drawn from seed.
func New(seed int64) *Disk {
	return &Disk{
		rng:         rand.New(rand.NewPCG(uint64(seed), 0xd15c)),
		names:       map[string]*inode{},
		durable:     map[string]*inode{},
		dirs:        map[string]bool{},
		durableDirs: map[string]bool{},
		locks:       map[string]*lock{},
	}
}

// FailIO makes every later call that changes the disk (mkdir, create,
// open for append, write, sync, rename, remove, truncate, dir sync) fail
// with err (nil to stop). Reads and locks keep working.
func (d *Disk) FailIO(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fail = err
}

// SetCapacity limits the bytes the disk's files may hold (0: no limit).
// A write that would pass it writes what fits and fails with an error
// satisfying errors.Is(err, syscall.ENOSPC), as a full disk does; a
// truncate that would grow a file past it fails the same way.
func (d *Disk) SetCapacity(bytes int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.capacity = bytes
}

// Used returns the bytes the disk's files hold now.
func (d *Disk) Used() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.used()
}

// used, d.mu held, sums the visible files: replaced, removed and truncated
// content is freed at once, as a filesystem frees its blocks.
func (d *Disk) used() int64 {
	var n int64
	for _, ino := range d.names {
		n += int64(len(ino.data))
	}
	return n
}

// Crash simulates a power loss: every unsynced change is lost (or torn),
// and every lock is released. The caller must have stopped the process
// that used the disk.
func (d *Disk) Crash(mode CrashMode) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.crashes++
	d.epoch++
	d.locks = map[string]*lock{}
	names := make(map[string]*inode, len(d.durable))
	// Iterate in a fixed order so that torn prefixes follow the seed.
	for _, p := range sortedKeys(d.durable) {
		if !d.dirDurable(filepath.Dir(p)) {
			continue // its directory's entry was never made durable
		}
		ino := d.durable[p]
		var data []byte
		if ino.synced {
			data = ino.durable
		}
		if mode == Torn && !bytes.Equal(ino.data, data) {
			data = d.tear(data, ino.data)
		}
		names[p] = &inode{data: clone(data), durable: clone(data), synced: true}
	}
	d.names = names
	d.durable = make(map[string]*inode, len(names))
	for p, ino := range names {
		d.durable[p] = ino
	}
	d.dirs = make(map[string]bool, len(d.durableDirs))
	for p := range d.durableDirs {
		if d.dirDurable(p) {
			d.dirs[p] = true
		}
	}
	d.durableDirs = make(map[string]bool, len(d.dirs))
	for p := range d.dirs {
		d.durableDirs[p] = true
	}
	d.fail = nil
}

// tear, d.mu held, is what Torn mode leaves of a file whose synced content
// is old and whose content now is cur.
func (d *Disk) tear(old, cur []byte) []byte {
	c := 0
	for c < len(old) && c < len(cur) && old[c] == cur[c] {
		c++
	}
	if c < len(old) && d.rng.IntN(2) == 0 {
		return old // the truncate or rewrite did not reach the disk
	}
	return cur[:c+d.rng.IntN(len(cur)-c+1)]
}

// dirDurable, d.mu held, reports whether dir and all its parents survive
// a crash.
func (d *Disk) dirDurable(dir string) bool {
	for ; !isRoot(dir); dir = filepath.Dir(dir) {
		if !d.durableDirs[dir] {
			return false
		}
	}
	return true
}

func isRoot(dir string) bool { return dir == "." || dir == "/" || filepath.Dir(dir) == dir }

// Kill fences off the mounts of the process that used the disk, without a
// power loss: what it wrote stays, but it can write nothing more, and its
// locks are released.
func (d *Disk) Kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.epoch++
	d.locks = map[string]*lock{}
}

// Mount returns the disk as a new process sees it, until Kill or Crash.
func (d *Disk) Mount() fsys.FS {
	d.mu.Lock()
	defer d.mu.Unlock()
	return &mount{d: d, epoch: d.epoch}
}

// mount is one process's view of the disk.
type mount struct {
	d     *Disk
	epoch int
}

var _ fsys.FS = (*mount)(nil)

func (m *mount) MkdirAll(dir string, perm fs.FileMode) error { return m.d.mkdirAll(m.epoch, dir) }
func (m *mount) Mkdir(dir string, perm fs.FileMode) error    { return m.d.mkdir(m.epoch, dir) }
func (m *mount) Create(name string) (fsys.File, error)       { return m.d.create(m.epoch, name) }
func (m *mount) OpenAppend(name string) (fsys.File, error)   { return m.d.openAppend(m.epoch, name) }
func (m *mount) ReadFile(name string) ([]byte, error)        { return m.d.readFile(m.epoch, name) }
func (m *mount) Rename(oldpath, newpath string) error        { return m.d.rename(m.epoch, oldpath, newpath) }
func (m *mount) Remove(name string) error                    { return m.d.remove(m.epoch, name) }
func (m *mount) Truncate(name string, size int64) error      { return m.d.truncate(m.epoch, name, size) }
func (m *mount) SyncDir(dir string) error                    { return m.d.syncDir(m.epoch, dir) }
func (m *mount) Lock(name string) (io.Closer, error)         { return m.d.lock(m.epoch, name) }

// gone reports, d.mu held, whether a caller of the given epoch is fenced
// off (epoch -1: the disk used directly, never fenced).
func (d *Disk) gone(epoch int) bool { return epoch >= 0 && epoch != d.epoch }

// check, d.mu held, is the error of a call that changes the disk, if any.
func (d *Disk) check(epoch int, op, path string) error {
	if d.gone(epoch) {
		return &fs.PathError{Op: op, Path: path, Err: ErrGone}
	}
	if d.fail != nil {
		return &fs.PathError{Op: op, Path: path, Err: d.fail}
	}
	return nil
}

// Crashes returns how many times the disk crashed.
func (d *Disk) Crashes() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.crashes
}

// Files returns the paths of the files a process sees now.
func (d *Disk) Files() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return sortedKeys(d.names)
}

func sortedKeys(m map[string]*inode) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// MkdirAll implements fsys.FS. Each directory it makes is durable once
// its parent is synced.
func (d *Disk) MkdirAll(dir string, perm fs.FileMode) error { return d.mkdirAll(-1, dir) }

func (d *Disk) mkdirAll(epoch int, dir string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	dir = filepath.Clean(dir)
	if err := d.check(epoch, "mkdir", dir); err != nil {
		return err
	}
	for p := dir; !isRoot(p); p = filepath.Dir(p) {
		if d.names[p] != nil {
			return &fs.PathError{Op: "mkdir", Path: p, Err: syscall.ENOTDIR}
		}
		d.dirs[p] = true
	}
	return nil
}

// Mkdir implements fsys.FS. The directory is durable once its parent is
// synced.
func (d *Disk) Mkdir(dir string, perm fs.FileMode) error { return d.mkdir(-1, dir) }

func (d *Disk) mkdir(epoch int, dir string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	dir = filepath.Clean(dir)
	if d.gone(epoch) {
		return &fs.PathError{Op: "mkdir", Path: dir, Err: ErrGone}
	}
	switch {
	case isRoot(dir) || d.dirs[dir] || d.names[dir] != nil:
		return &fs.PathError{Op: "mkdir", Path: dir, Err: fs.ErrExist}
	case !d.dirExists(filepath.Dir(dir)):
		return &fs.PathError{Op: "mkdir", Path: dir, Err: fs.ErrNotExist}
	}
	if err := d.check(epoch, "mkdir", dir); err != nil {
		return err
	}
	d.dirs[dir] = true
	return nil
}

func (d *Disk) dirExists(dir string) bool { return isRoot(dir) || d.dirs[dir] }

// Create implements fsys.FS. The new (or truncated) file's entry is not
// durable until SyncDir, nor its truncation until the file's Sync.
func (d *Disk) Create(name string) (fsys.File, error) { return d.create(-1, name) }

func (d *Disk) create(epoch int, name string) (fsys.File, error) {
	return d.open(epoch, "create", name, true)
}

// OpenAppend implements fsys.FS. A file it creates is durable once its
// directory is synced.
func (d *Disk) OpenAppend(name string) (fsys.File, error) { return d.openAppend(-1, name) }

func (d *Disk) openAppend(epoch int, name string) (fsys.File, error) {
	return d.open(epoch, "open", name, false)
}

func (d *Disk) open(epoch int, op, name string, trunc bool) (fsys.File, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name = filepath.Clean(name)
	if err := d.check(epoch, op, name); err != nil {
		return nil, err
	}
	ino, err := d.inodeFor(op, name)
	if err != nil {
		return nil, err
	}
	if trunc {
		ino.data = nil
	}
	return &file{d: d, ino: ino, name: name, epoch: epoch}, nil
}

// inodeFor, d.mu held, returns name's inode, creating the file if needed.
func (d *Disk) inodeFor(op, name string) (*inode, error) {
	if d.dirs[name] {
		return nil, &fs.PathError{Op: op, Path: name, Err: syscall.EISDIR}
	}
	if !d.dirExists(filepath.Dir(name)) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	ino := d.names[name]
	if ino == nil {
		ino = &inode{}
		d.names[name] = ino
	}
	return ino, nil
}

// ReadFile implements fsys.FS.
func (d *Disk) ReadFile(name string) ([]byte, error) { return d.readFile(-1, name) }

func (d *Disk) readFile(epoch int, name string) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone(epoch) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: ErrGone}
	}
	ino := d.names[filepath.Clean(name)]
	if ino == nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return clone(ino.data), nil
}

// Rename implements fsys.FS. The rename is visible at once and durable
// after SyncDir.
func (d *Disk) Rename(oldpath, newpath string) error { return d.rename(-1, oldpath, newpath) }

func (d *Disk) rename(epoch int, oldpath, newpath string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(epoch, "rename", oldpath); err != nil {
		return err
	}
	oldpath, newpath = filepath.Clean(oldpath), filepath.Clean(newpath)
	ino := d.names[oldpath]
	if ino == nil {
		return &fs.PathError{Op: "rename", Path: oldpath, Err: fs.ErrNotExist}
	}
	if !d.dirExists(filepath.Dir(newpath)) {
		return &fs.PathError{Op: "rename", Path: newpath, Err: fs.ErrNotExist}
	}
	delete(d.names, oldpath)
	d.names[newpath] = ino
	return nil
}

// Remove implements fsys.FS. The removal is visible at once, and its
// space free, but it is durable only after SyncDir: until then a crash
// brings the file back.
func (d *Disk) Remove(name string) error { return d.remove(-1, name) }

func (d *Disk) remove(epoch int, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	name = filepath.Clean(name)
	if err := d.check(epoch, "remove", name); err != nil {
		return err
	}
	if d.names[name] == nil {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(d.names, name)
	return nil
}

// Truncate implements fsys.FS. The new size is visible at once and
// durable after the file's Sync: until then a crash keeps the old content.
func (d *Disk) Truncate(name string, size int64) error { return d.truncate(-1, name, size) }

func (d *Disk) truncate(epoch int, name string, size int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	name = filepath.Clean(name)
	if err := d.check(epoch, "truncate", name); err != nil {
		return err
	}
	ino := d.names[name]
	switch {
	case ino == nil:
		return &fs.PathError{Op: "truncate", Path: name, Err: fs.ErrNotExist}
	case size < 0:
		return &fs.PathError{Op: "truncate", Path: name, Err: syscall.EINVAL}
	case size <= int64(len(ino.data)):
		ino.data = ino.data[:size:size] // a later append must not write over durable's bytes
	default:
		grow := size - int64(len(ino.data))
		if d.capacity > 0 && d.used()+grow > d.capacity {
			return &fs.PathError{Op: "truncate", Path: name, Err: syscall.ENOSPC}
		}
		ino.data = append(ino.data, make([]byte, grow)...)
	}
	return nil
}

// SyncDir implements fsys.FS: the entries under dir (files and
// directories) become durable as they are now.
func (d *Disk) SyncDir(dir string) error { return d.syncDir(-1, dir) }

func (d *Disk) syncDir(epoch int, dir string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(epoch, "fsync", dir); err != nil {
		return err
	}
	dir = filepath.Clean(dir)
	if !d.dirExists(dir) {
		return &fs.PathError{Op: "fsync", Path: dir, Err: fs.ErrNotExist}
	}
	for p := range d.durable {
		if filepath.Dir(p) == dir {
			delete(d.durable, p)
		}
	}
	for p, ino := range d.names {
		if filepath.Dir(p) == dir {
			d.durable[p] = ino
		}
	}
	for p := range d.dirs {
		if filepath.Dir(p) == dir {
			d.durableDirs[p] = true
		}
	}
	return nil
}

// Lock implements fsys.FS. It creates the file if needed, like flock on
// a file opened with O_CREATE; locks take no part in FailIO.
func (d *Disk) Lock(name string) (io.Closer, error) { return d.lock(-1, name) }

func (d *Disk) lock(epoch int, name string) (io.Closer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name = filepath.Clean(name)
	if d.gone(epoch) {
		return nil, &fs.PathError{Op: "flock", Path: name, Err: ErrGone}
	}
	if _, err := d.inodeFor("flock", name); err != nil {
		return nil, err
	}
	if d.locks[name] != nil {
		return nil, &fs.PathError{Op: "flock", Path: name, Err: fsys.ErrLocked}
	}
	l := &lock{d: d, name: name, epoch: epoch}
	d.locks[name] = l
	return l, nil
}

// lock is a held lock; Kill and Crash drop every one.
type lock struct {
	d      *Disk
	name   string
	epoch  int
	closed bool
}

func (l *lock) Close() error {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	if l.closed {
		return fs.ErrClosed
	}
	l.closed = true
	if l.d.gone(l.epoch) {
		return &fs.PathError{Op: "close", Path: l.name, Err: ErrGone}
	}
	if l.d.locks[l.name] == l {
		delete(l.d.locks, l.name)
	}
	return nil
}

type file struct {
	d      *Disk
	ino    *inode
	name   string
	closed bool
	epoch  int
}

// Write appends p: a file is written from its start (Create) or appended
// to (OpenAppend), and both write at its end.
func (f *file) Write(p []byte) (int, error) {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	if f.closed {
		return 0, fs.ErrClosed
	}
	if err := f.d.check(f.epoch, "write", f.name); err != nil {
		return 0, err
	}
	if f.d.capacity > 0 {
		if room := max(f.d.capacity-f.d.used(), 0); int64(len(p)) > room {
			f.ino.data = append(f.ino.data, p[:room]...)
			return int(room), &fs.PathError{Op: "write", Path: f.name, Err: syscall.ENOSPC}
		}
	}
	f.ino.data = append(f.ino.data, p...)
	return len(p), nil
}

func (f *file) Sync() error {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	if f.closed {
		return fs.ErrClosed
	}
	if err := f.d.check(f.epoch, "fsync", f.name); err != nil {
		return err
	}
	// Sharing the bytes is safe: the disk never writes over a file's
	// bytes in place (appends go past its end, truncation drops the
	// capacity past the cut, Create starts afresh), so durable's bytes
	// stay as they were. It keeps a sync O(1), as the log needs.
	n := len(f.ino.data)
	f.ino.durable = f.ino.data[:n:n]
	f.ino.synced = true
	return nil
}

func (f *file) Close() error {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	if f.closed {
		return fs.ErrClosed
	}
	f.closed = true
	return nil
}

// String describes the disk for logs.
func (d *Disk) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return fmt.Sprintf("disk(files=%d, durable=%d, used=%d, crashes=%d)", len(d.names), len(d.durable), d.used(), d.crashes)
}
