package fsys

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pkg/errors"
)

// ErrLocked is the error of FS.Lock when someone holds the lock.
var ErrLocked = errors.New("locked by another process or open file")

// FS is all the file access a system under test does. The real one is
// OSFS; the lab swaps in a simulated disk (simnet/disk) that loses what
// was not synced when its node crashes, and that can run out of space.
//
// Durability follows POSIX: a file's content is durable once its File is
// synced, and a directory's entries (creations, removals, renames) once
// SyncDir of that directory returns.
type FS interface {
	// MkdirAll creates dir and its parents.
	MkdirAll(dir string, perm fs.FileMode) error
	// Mkdir creates one directory. It fails with an error satisfying
	// errors.Is(err, fs.ErrExist) when dir exists and fs.ErrNotExist when
	// its parent does not, so that a caller knows which entries it made.
	Mkdir(dir string, perm fs.FileMode) error
	// Create creates or truncates a file for writing.
	Create(name string) (File, error)
	// OpenAppend opens a file for appending, creating it if needed: every
	// Write goes to the end of the file as it is then.
	OpenAppend(name string) (File, error)
	// ReadFile returns a file's whole content; a missing file is an error
	// that satisfies errors.Is(err, fs.ErrNotExist).
	ReadFile(name string) ([]byte, error)
	// Rename atomically replaces newpath with oldpath.
	Rename(oldpath, newpath string) error
	// Remove removes a file; a missing file satisfies fs.ErrNotExist.
	Remove(name string) error
	// Truncate changes a file's size. It is durable once a File of that
	// file is synced.
	Truncate(name string, size int64) error
	// SyncDir makes the directory's entries (creations, removals,
	// renames) durable.
	SyncDir(dir string) error
	// Lock takes an exclusive lock on the file name, creating it if needed,
	// until the returned Closer is closed or the process dies. A lock held
	// by anyone else, this process included, makes it fail with an error
	// satisfying errors.Is(err, ErrLocked).
	Lock(name string) (io.Closer, error)
}

// File is a file open for writing.
type File interface {
	Write(p []byte) (int, error)
	// Sync makes everything written so far durable, and the file's size.
	Sync() error
	Close() error
}

// OSFS is the real filesystem.
type OSFS struct{}

var _ FS = OSFS{}

// MkdirAll implements FS.
func (OSFS) MkdirAll(dir string, perm fs.FileMode) error { return os.MkdirAll(dir, perm) }

// Mkdir implements FS.
func (OSFS) Mkdir(dir string, perm fs.FileMode) error { return os.Mkdir(dir, perm) }

// Create implements FS.
func (OSFS) Create(name string) (File, error) {
	return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
}

// OpenAppend implements FS.
func (OSFS) OpenAppend(name string) (File, error) {
	return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
}

// ReadFile implements FS.
func (OSFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

// Rename implements FS.
func (OSFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// Remove implements FS.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// Truncate implements FS.
func (OSFS) Truncate(name string, size int64) error { return os.Truncate(name, size) }

// SyncDir implements FS.
func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return errors.Wrapf(err, "fsync dir %s", dir)
	}
	return d.Close()
}

// Lock implements FS with flock(2) on a file of its own, so that a second
// Lock, even from this process, fails: flock locks belong to the open
// file, and the kernel drops them when the process dies.
func (OSFS) Lock(name string) (io.Closer, error) { return flockFile(name) }

// MakeDir creates dir and its missing parents on f, syncing the parent of
// each dir it creates, so that a power loss cannot take the dir away. A
// dir that exists already is left as it is.
func MakeDir(f FS, dir string) error {
	err := f.Mkdir(dir, 0o755)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrExist):
		return nil
	case errors.Is(err, fs.ErrNotExist) && filepath.Dir(dir) != dir:
		if err := MakeDir(f, filepath.Dir(dir)); err != nil {
			return err
		}
		if err := f.Mkdir(dir, 0o755); errors.Is(err, fs.ErrExist) {
			return nil
		} else if err != nil {
			return err
		}
	default:
		return err
	}
	return f.SyncDir(filepath.Dir(dir))
}
