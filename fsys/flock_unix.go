//go:build unix

package fsys

import (
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/pkg/errors"
)

func flockFile(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &fs.PathError{Op: "flock", Path: name, Err: ErrLocked}
		}
		return nil, &fs.PathError{Op: "flock", Path: name, Err: err}
	}
	return f, nil // closing the file drops the lock
}
