// Package disk is a simulated disk under rr_seq's filesystem interface. It
// fails the way a real disk with a page cache fails: what a process wrote
// is visible at once, but only what it made durable survives a crash. A
// file's content is durable as of its last Sync, and a directory's entries
// (creations, renames) as of its last SyncDir. On Crash everything else is
// lost, or, in Torn mode, an unsynced file keeps a random prefix of what
// was written to it, as a crash in the middle of write-back would leave it.
//
// A process uses the disk through a Mount. When the process dies (Kill) or
// the power fails (Crash), its mount is fenced off: whatever its goroutines
// still try to do fails with ErrGone, because a dead process writes
// nothing more, however late its last request handler runs.
//
// It also injects I/O errors (a failing or full disk) on demand. It holds
// everything in memory and never touches the real filesystem.
package disk

import (
	"bytes"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"sync"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/rr_seq"
)

// CrashMode says what a crash does to data that was not synced.
type CrashMode int

const (
	// LoseUnsynced drops every unsynced write and directory change.
	LoseUnsynced CrashMode = iota
	// Torn is LoseUnsynced, except that an unsynced file whose directory
	// entry is durable keeps a random prefix of its unsynced content.
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
	mu      sync.Mutex
	rng     *rand.Rand
	names   map[string]*inode // the directory tree as processes see it
	durable map[string]*inode // the tree as of the last SyncDir of each dir
	dirs    map[string]bool
	fail    error
	crashes int
	epoch   int // bumped when the process using the disk dies
}

var _ rr_seq.FS = (*Disk)(nil)

// New returns an empty disk whose torn writes are drawn from seed.
func New(seed int64) *Disk {
	return &Disk{
		rng:     rand.New(rand.NewPCG(uint64(seed), 0xd15c)),
		names:   map[string]*inode{},
		durable: map[string]*inode{},
		dirs:    map[string]bool{},
	}
}

// FailIO makes every later write, sync and rename fail with err (nil to
// stop). Reads keep working.
func (d *Disk) FailIO(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fail = err
}

// Crash simulates a power loss: every unsynced change is lost (or torn).
// The caller must have stopped the process that used the disk.
func (d *Disk) Crash(mode CrashMode) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.crashes++
	d.epoch++
	names := make(map[string]*inode, len(d.durable))
	// Iterate in a fixed order so that torn prefixes follow the seed.
	for _, p := range sortedKeys(d.durable) {
		ino := d.durable[p]
		var data []byte
		if ino.synced {
			data = ino.durable
		}
		if mode == Torn && !bytes.Equal(ino.data, data) && len(ino.data) > 0 {
			data = ino.data[:d.rng.IntN(len(ino.data)+1)]
		}
		fresh := &inode{data: clone(data), durable: clone(data), synced: true}
		names[p] = fresh
	}
	d.names = names
	d.durable = make(map[string]*inode, len(names))
	for p, ino := range names {
		d.durable[p] = ino
	}
	d.fail = nil
}

// Kill fences off the mounts of the process that used the disk, without a
// power loss: what it wrote stays, but it can write nothing more.
func (d *Disk) Kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.epoch++
}

// Mount returns the disk as a new process sees it, until Kill or Crash.
func (d *Disk) Mount() rr_seq.FS {
	d.mu.Lock()
	defer d.mu.Unlock()
	return &mount{d: d, epoch: d.epoch}
}

// mount is one process's view of the disk.
type mount struct {
	d     *Disk
	epoch int
}

var _ rr_seq.FS = (*mount)(nil)

func (m *mount) MkdirAll(dir string, perm fs.FileMode) error { return m.d.mkdirAll(m.epoch, dir) }
func (m *mount) Create(name string) (rr_seq.File, error)     { return m.d.create(m.epoch, name) }
func (m *mount) ReadFile(name string) ([]byte, error)        { return m.d.readFile(m.epoch, name) }
func (m *mount) Rename(oldpath, newpath string) error        { return m.d.rename(m.epoch, oldpath, newpath) }
func (m *mount) SyncDir(dir string) error                    { return m.d.syncDir(m.epoch, dir) }

// gone reports, d.mu held, whether a caller of the given epoch is fenced
// off (epoch -1: the disk used directly, never fenced).
func (d *Disk) gone(epoch int) bool { return epoch >= 0 && epoch != d.epoch }

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

// MkdirAll implements rr_seq.FS. Directories are implicit and always
// durable: the lab's state lives in one directory made at startup.
func (d *Disk) MkdirAll(dir string, perm fs.FileMode) error { return d.mkdirAll(-1, dir) }

func (d *Disk) mkdirAll(epoch int, dir string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone(epoch) {
		return &fs.PathError{Op: "mkdir", Path: dir, Err: ErrGone}
	}
	d.dirs[filepath.Clean(dir)] = true
	return nil
}

// Create implements rr_seq.FS. The new (or truncated) file's entry is not
// durable until SyncDir.
func (d *Disk) Create(name string) (rr_seq.File, error) { return d.create(-1, name) }

func (d *Disk) create(epoch int, name string) (rr_seq.File, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone(epoch) {
		return nil, &fs.PathError{Op: "create", Path: name, Err: ErrGone}
	}
	if d.fail != nil {
		return nil, &fs.PathError{Op: "create", Path: name, Err: d.fail}
	}
	name = filepath.Clean(name)
	if !d.dirs[filepath.Dir(name)] {
		return nil, &fs.PathError{Op: "create", Path: name, Err: fs.ErrNotExist}
	}
	ino := d.names[name]
	if ino == nil {
		ino = &inode{}
		d.names[name] = ino
	}
	ino.data = nil // O_TRUNC
	return &file{d: d, ino: ino, name: name, epoch: epoch}, nil
}

// ReadFile implements rr_seq.FS.
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

// Rename implements rr_seq.FS. The rename is visible at once and durable
// after SyncDir.
func (d *Disk) Rename(oldpath, newpath string) error { return d.rename(-1, oldpath, newpath) }

func (d *Disk) rename(epoch int, oldpath, newpath string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone(epoch) {
		return &fs.PathError{Op: "rename", Path: oldpath, Err: ErrGone}
	}
	if d.fail != nil {
		return &fs.PathError{Op: "rename", Path: oldpath, Err: d.fail}
	}
	oldpath, newpath = filepath.Clean(oldpath), filepath.Clean(newpath)
	ino := d.names[oldpath]
	if ino == nil {
		return &fs.PathError{Op: "rename", Path: oldpath, Err: fs.ErrNotExist}
	}
	delete(d.names, oldpath)
	d.names[newpath] = ino
	return nil
}

// SyncDir implements rr_seq.FS: the entries under dir become durable as
// they are now.
func (d *Disk) SyncDir(dir string) error { return d.syncDir(-1, dir) }

func (d *Disk) syncDir(epoch int, dir string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone(epoch) {
		return &fs.PathError{Op: "fsync", Path: dir, Err: ErrGone}
	}
	if d.fail != nil {
		return &fs.PathError{Op: "fsync", Path: dir, Err: d.fail}
	}
	dir = filepath.Clean(dir)
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
	return nil
}

type file struct {
	d      *Disk
	ino    *inode
	name   string
	closed bool
	epoch  int
}

func (f *file) Write(p []byte) (int, error) {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	if f.closed {
		return 0, fs.ErrClosed
	}
	if f.d.gone(f.epoch) {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: ErrGone}
	}
	if f.d.fail != nil {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: f.d.fail}
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
	if f.d.gone(f.epoch) {
		return &fs.PathError{Op: "fsync", Path: f.name, Err: ErrGone}
	}
	if f.d.fail != nil {
		return &fs.PathError{Op: "fsync", Path: f.name, Err: f.d.fail}
	}
	f.ino.durable = clone(f.ino.data)
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
	return fmt.Sprintf("disk(files=%d, durable=%d, crashes=%d)", len(d.names), len(d.durable), d.crashes)
}
