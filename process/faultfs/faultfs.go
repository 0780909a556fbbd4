package faultfs

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/pkg/errors"
)

// CrashMode says what a power loss does to data that was not synced.
type CrashMode int

const (
	// LoseUnsynced drops every unsynced write, truncate and directory
	// change.
	LoseUnsynced CrashMode = iota
	// Torn is LoseUnsynced, except that a file whose directory entry is
	// durable and whose content changed since its last fsync keeps part
	// of the change, as simnet/disk's Torn does.
	Torn
)

func (m CrashMode) String() string {
	if m == Torn {
		return "torn"
	}
	return "lose-unsynced"
}

// ErrNoFUSE is returned where this process cannot mount FUSE
// filesystems (it needs root and /dev/fuse).
var ErrNoFUSE = errors.New("faultfs: mounting FUSE needs root and /dev/fuse")

// Config is a filesystem to mount.
type Config struct {
	// Dir is the real directory the filesystem passes through to. It must
	// exist. Whatever it holds when mounted counts as durable.
	Dir string
	// Mountpoint is where the filesystem appears. It must exist.
	Mountpoint string
	// Seed drives the torn writes.
	Seed uint64
}

// FS is one mounted filesystem. Its methods are safe for concurrent use.
type FS struct {
	cfg    Config
	dev    uint64
	server *fuse.Server
	conn   uint64 // the mount's device number: its FUSE connection

	mu     sync.Mutex
	rng    *rand.Rand
	fail   syscall.Errno
	ids    map[uint64]uint64 // real inode number -> file id
	next   uint64
	files  map[uint64]*fileState
	dirs   map[uint64]*dirState
	rootID uint64
	losses int
	closed bool
}

type kind int

const (
	kindFile kind = iota
	kindDir
	kindSymlink
)

// fileState is what survives of a file.
type fileState struct {
	durable   []byte // content as of the last fsync (or the mount)
	rewritten bool   // changed below len(durable) since then
}

// dirState is what survives of a directory's entries.
type dirState struct {
	entries map[string]entry
}

type entry struct {
	id     uint64
	kind   kind
	mode   fs.FileMode // permission bits
	target string      // a symlink's
}

// Mount mounts a filesystem over cfg.Dir at cfg.Mountpoint.
func Mount(cfg Config) (*FS, error) {
	if cfg.Dir == "" || cfg.Mountpoint == "" {
		return nil, errors.New("faultfs: need a directory and a mount point")
	}
	for _, p := range []string{cfg.Dir, cfg.Mountpoint} {
		st, err := os.Stat(p)
		if err != nil {
			return nil, errors.Wrap(err, "faultfs")
		}
		if !st.IsDir() {
			return nil, errors.Errorf("faultfs: %s is not a directory", p)
		}
	}
	var err error
	if cfg.Dir, err = filepath.Abs(cfg.Dir); err != nil {
		return nil, errors.Wrap(err, "faultfs")
	}
	if cfg.Mountpoint, err = filepath.Abs(cfg.Mountpoint); err != nil {
		return nil, errors.Wrap(err, "faultfs")
	}
	if os.Geteuid() != 0 {
		return nil, ErrNoFUSE
	}
	var st syscall.Stat_t
	if err := syscall.Stat(cfg.Dir, &st); err != nil {
		return nil, errors.Wrap(err, "faultfs")
	}
	f := &FS{cfg: cfg, dev: uint64(st.Dev), rng: rand.New(rand.NewPCG(cfg.Seed, 0xfa17f5))}
	if err := f.scan(); err != nil {
		return nil, err
	}
	if err := f.mount(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *FS) mount() error {
	root := &gofs.LoopbackRoot{Path: f.cfg.Dir, Dev: f.dev}
	root.NewNode = func(r *gofs.LoopbackRoot, _ *gofs.Inode, _ string, _ *syscall.Stat_t) gofs.InodeEmbedder {
		return &node{LoopbackNode: gofs.LoopbackNode{RootData: r}, ffs: f}
	}
	rootNode := root.NewNode(root, nil, "", nil)
	root.RootNode = rootNode
	zero := time.Duration(0)
	// go-fuse's direct mount opens /dev/fuse without O_CLOEXEC (its
	// fusermount path sets it; the direct one returns first), so every
	// node started afterwards would inherit the connection. A node that
	// holds it keeps the connection alive when the lab dies: exiting, it
	// flushes its files through a server that is gone and waits forever,
	// a zombie that keeps its network namespace. So no process starts
	// while the descriptor is open without the flag: the mount holds
	// ForkLock, which os/exec takes to fork, until closeOnExecFUSE is done.
	syscall.ForkLock.Lock()
	defer syscall.ForkLock.Unlock()
	server, err := gofs.Mount(f.cfg.Mountpoint, rootNode, &gofs.Options{
		MountOptions: fuse.MountOptions{
			DirectMount: true, DirectMountStrict: true,
			FsName: "faultfs", Name: "faultfs",
			AllowOther: true, // the node processes may run as another user
		},
		// The kernel asks again rather than trust a cache across a
		// change made underneath (PowerLoss rewrites the directory).
		EntryTimeout: &zero, AttrTimeout: &zero, NegativeTimeout: &zero,
	})
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOENT) {
			return errors.Wrapf(ErrNoFUSE, "mount %s: %v", f.cfg.Mountpoint, err)
		}
		return errors.Wrapf(err, "faultfs: mount %s", f.cfg.Mountpoint)
	}
	f.server = server
	var st syscall.Stat_t
	if err := syscall.Stat(f.cfg.Mountpoint, &st); err != nil {
		return errors.Wrap(err, "faultfs: stat the mount")
	}
	f.conn = uint64(st.Dev)
	return closeOnExecFUSE()
}

// closeOnExecFUSE marks every descriptor of this process on /dev/fuse
// close-on-exec: they are all the lab's disks' connections, and no child
// needs one. The caller holds syscall.ForkLock.
func closeOnExecFUSE() error {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return errors.Wrap(err, "faultfs: list descriptors")
	}
	for _, e := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err != nil || target != "/dev/fuse" {
			continue
		}
		var fd int
		if _, err := fmt.Sscan(e.Name(), &fd); err == nil {
			syscall.CloseOnExec(fd)
		}
	}
	return nil
}

// Mountpoint is where the filesystem appears.
func (f *FS) Mountpoint() string { return f.cfg.Mountpoint }

// Dir is the real directory.
func (f *FS) Dir() string { return f.cfg.Dir }

// Losses returns how many power losses the filesystem went through.
func (f *FS) Losses() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.losses
}

// FailIO makes every later call that changes the filesystem (create,
// mkdir, write, truncate, rename, unlink, fsync, ...) fail with errno:
// syscall.EIO, syscall.ENOSPC. Zero stops it. Reads keep working.
func (f *FS) FailIO(errno syscall.Errno) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = errno
}

func (f *FS) failing() syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail
}

// PowerLoss drops whatever was not durable (or tears it) and mounts the
// filesystem again. Every process that used it must be dead: a mount in
// use cannot be unmounted, and PowerLoss then fails and changes nothing.
// FailIO ends with it, as a disk comes back from a power cycle.
func (f *FS) PowerLoss(mode CrashMode) error {
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return errors.New("faultfs: power loss after Close")
	}
	if err := f.unmount(); err != nil {
		return err
	}
	f.mu.Lock()
	err := f.restoreLocked(mode)
	f.losses++
	f.fail = 0
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if err := f.scan(); err != nil {
		return err
	}
	return f.mount()
}

// Close unmounts the filesystem; the real directory keeps what processes
// saw last. The processes that used it must be dead. A second Close does
// nothing.
func (f *FS) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.mu.Unlock()
	return f.unmount()
}

// unmount unmounts and waits for the server, retrying a busy mount for a
// second: a process killed just now may not have released it yet.
func (f *FS) unmount() error {
	var err error
	for deadline := time.Now().Add(time.Second); ; time.Sleep(20 * time.Millisecond) {
		done := make(chan error, 1)
		go func() { done <- f.server.Unmount() }()
		if err = f.awaitUnmount(done); err == nil {
			f.server.Wait()
			return nil
		}
		if time.Now().After(deadline) {
			return errors.Wrapf(err, "faultfs: unmount %s (is a process still using it?)", f.cfg.Mountpoint)
		}
	}
}

// awaitUnmount waits for go-fuse's Unmount. Once the mount is gone from
// this namespace, Unmount waits for the kernel to end the connection,
// which it does only when no mount namespace holds the filesystem any
// more, and a namespace copied from this one while the disk was mounted
// (anyone's unshare -m, a service's PrivateTmp, an isolated lab started
// beside a test) holds it until that namespace dies: a power loss would
// wait for it. So once the mount is gone here, the connection is
// aborted, as echo 1 > /sys/fs/fuse/connections/N/abort does; the copies
// are left a dead mount, as a disk that lost power.
func (f *FS) awaitUnmount(done <-chan error) error {
	for {
		select {
		case err := <-done:
			return err
		case <-time.After(50 * time.Millisecond):
		}
		var st syscall.Stat_t
		if syscall.Stat(f.cfg.Mountpoint, &st) == nil && uint64(st.Dev) != f.conn {
			if err := abortConnection(f.conn); err != nil {
				return errors.Wrapf(err, "faultfs: unmount %s: its connection lives on in another mount namespace", f.cfg.Mountpoint)
			}
			return <-done
		}
	}
}

// abortConnection aborts the FUSE connection of device dev through the
// fusectl filesystem, mounted for the purpose in a directory of its own.
func abortConnection(dev uint64) error {
	dir, err := os.MkdirTemp("", "faultfs-fusectl")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	if err := syscall.Mount("fusectl", dir, "fusectl", 0, ""); err != nil {
		return errors.Wrap(err, "mount fusectl")
	}
	defer syscall.Unmount(dir, 0)
	// fusectl names a connection by the device's number in the kernel's
	// encoding, which for FUSE's anonymous devices (major 0) is the minor.
	minor := (dev & 0xff) | ((dev >> 12) & 0xfff00)
	err = os.WriteFile(filepath.Join(dir, fmt.Sprint(minor), "abort"), []byte("1"), 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil // ended meanwhile
	}
	return err
}

// scan takes the real directory as it is now as the durable state.
func (f *FS) scan() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ids, f.files, f.dirs = map[uint64]uint64{}, map[uint64]*fileState{}, map[uint64]*dirState{}
	root, err := f.snapshotDirLocked(f.cfg.Dir, true)
	if err != nil {
		return errors.Wrap(err, "faultfs: scan")
	}
	f.rootID = root
	return nil
}

// snapshotDirLocked, f.mu held, records dir's entries as durable. With
// deep (a mount), it records every file's content and every directory
// below too.
func (f *FS) snapshotDirLocked(dir string, deep bool) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(dir, &st); err != nil {
		return 0, err
	}
	id := f.idLocked(st.Ino, kindDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	ds := &dirState{entries: map[string]entry{}}
	for _, de := range ents {
		p := filepath.Join(dir, de.Name())
		var cst syscall.Stat_t
		if err := syscall.Lstat(p, &cst); err != nil {
			return 0, err
		}
		e := entry{mode: fs.FileMode(cst.Mode) & fs.ModePerm}
		switch cst.Mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			e.kind = kindDir
			if deep {
				if e.id, err = f.snapshotDirLocked(p, true); err != nil {
					return 0, err
				}
			} else {
				e.id = f.idLocked(cst.Ino, kindDir)
			}
		case syscall.S_IFLNK:
			e.kind = kindSymlink
			e.id = f.idLocked(cst.Ino, kindSymlink)
			if e.target, err = os.Readlink(p); err != nil {
				return 0, err
			}
		case syscall.S_IFREG:
			e.kind = kindFile
			e.id = f.idLocked(cst.Ino, kindFile)
			if deep {
				b, err := os.ReadFile(p)
				if err != nil {
					return 0, err
				}
				f.files[e.id].durable = b
			}
		default:
			continue // sockets, fifos, devices: not kept across a power loss
		}
		ds.entries[de.Name()] = e
	}
	f.dirs[id] = ds
	return id, nil
}

// idLocked, f.mu held, is the id of the file with real inode ino, made
// if it has none.
func (f *FS) idLocked(ino uint64, k kind) uint64 {
	if id, ok := f.ids[ino]; ok {
		return id
	}
	return f.freshLocked(ino, k)
}

// freshLocked, f.mu held, gives ino a new id: a file just made, whatever
// its inode number held before. Nothing of it is durable yet.
func (f *FS) freshLocked(ino uint64, k kind) uint64 {
	f.next++
	id := f.next
	f.ids[ino] = id
	switch k {
	case kindFile:
		f.files[id] = &fileState{}
	case kindDir:
		f.dirs[id] = &dirState{entries: map[string]entry{}}
	}
	return id
}

func (f *FS) fresh(ino uint64, k kind) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.freshLocked(ino, k)
}

// wrote notes a change of the file at ino from offset off on.
func (f *FS) wrote(ino uint64, off int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fst := f.files[f.idLocked(ino, kindFile)]; off < int64(len(fst.durable)) {
		fst.rewritten = true
	}
}

// syncFile makes the content of the file at path (real inode ino)
// durable as it is now.
func (f *FS) syncFile(ino uint64, path string) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != 0 {
		return f.fail
	}
	fst := f.files[f.idLocked(ino, kindFile)]
	r, err := os.Open(path)
	if err != nil {
		return 0 // no name any more: see the package doc
	}
	defer r.Close()
	var cur []byte
	if st, err := r.Stat(); err == nil && !fst.rewritten && st.Size() >= int64(len(fst.durable)) {
		// Appended only: read what was appended.
		tail := make([]byte, st.Size()-int64(len(fst.durable)))
		if _, err := r.ReadAt(tail, int64(len(fst.durable))); err != nil && err != io.EOF {
			return gofs.ToErrno(err)
		}
		cur = append(fst.durable[:len(fst.durable):len(fst.durable)], tail...)
	} else if cur, err = io.ReadAll(r); err != nil {
		return gofs.ToErrno(err)
	}
	fst.durable, fst.rewritten = cur, false
	return 0
}

// syncDir makes the entries of the directory at path durable as they
// are now.
func (f *FS) syncDir(path string) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != 0 {
		return f.fail
	}
	if _, err := f.snapshotDirLocked(path, false); err != nil {
		return gofs.ToErrno(err)
	}
	return 0
}

// item is one thing the durable tree holds.
type item struct {
	path    string
	kind    kind
	mode    fs.FileMode
	data    []byte
	target  string
	visible uint64 // the file's id, to find what processes saw of it
}

// restoreLocked, f.mu held and the filesystem unmounted, rewrites the
// real directory to the durable state.
func (f *FS) restoreLocked(mode CrashMode) error {
	var items []item
	seen := map[uint64]bool{}
	var walk func(id uint64, dir string)
	walk = func(id uint64, dir string) {
		if seen[id] { // stale snapshots can make a loop; keep the first
			return
		}
		seen[id] = true
		ds := f.dirs[id]
		if ds == nil {
			return
		}
		names := make([]string, 0, len(ds.entries))
		for n := range ds.entries {
			names = append(names, n)
		}
		sort.Strings(names) // a fixed order, so that tears follow the seed
		for _, n := range names {
			e := ds.entries[n]
			it := item{path: filepath.Join(dir, n), kind: e.kind, mode: e.mode, target: e.target, visible: e.id}
			if e.kind == kindFile {
				if fst := f.files[e.id]; fst != nil {
					it.data = fst.durable
				}
			}
			items = append(items, it)
			if e.kind == kindDir {
				walk(e.id, it.path)
			}
		}
	}
	walk(f.rootID, "")

	if mode == Torn {
		visible := f.visibleLocked()
		for i := range items {
			it := &items[i]
			if p, ok := visible[it.visible]; ok && it.kind == kindFile {
				if cur, err := os.ReadFile(p); err == nil && !bytes.Equal(cur, it.data) {
					it.data = tear(f.rng, it.data, cur)
				}
			}
		}
	}

	ents, err := os.ReadDir(f.cfg.Dir)
	if err != nil {
		return errors.Wrap(err, "faultfs: power loss")
	}
	for _, de := range ents {
		if err := os.RemoveAll(filepath.Join(f.cfg.Dir, de.Name())); err != nil {
			return errors.Wrap(err, "faultfs: power loss")
		}
	}
	for _, it := range items {
		p := filepath.Join(f.cfg.Dir, it.path)
		switch it.kind {
		case kindDir:
			err = os.Mkdir(p, it.mode)
		case kindSymlink:
			err = os.Symlink(it.target, p)
		default:
			err = os.WriteFile(p, it.data, it.mode)
		}
		if err != nil {
			return errors.Wrap(err, "faultfs: power loss")
		}
	}
	return nil
}

// visibleLocked maps the ids of the files processes see now to their
// real paths.
func (f *FS) visibleLocked() map[uint64]string {
	out := map[uint64]string{}
	filepath.WalkDir(f.cfg.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		var st syscall.Stat_t
		if syscall.Lstat(p, &st) == nil {
			if id, ok := f.ids[st.Ino]; ok {
				out[id] = p
			}
		}
		return nil
	})
	return out
}

// tear is what Torn leaves of a file whose synced content is old and
// whose content now is cur, as simnet/disk tears it: an append keeps a
// random prefix of what was appended; a truncate or rewrite is either
// lost, or kept up to a random point past what the two share.
func tear(r *rand.Rand, old, cur []byte) []byte {
	c := 0
	for c < len(old) && c < len(cur) && old[c] == cur[c] {
		c++
	}
	if c < len(old) && r.IntN(2) == 0 {
		return old
	}
	return bytes.Clone(cur[:c+r.IntN(len(cur)-c+1)])
}
