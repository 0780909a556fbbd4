//go:build !unix

package fsys

import (
	"io"

	"github.com/pkg/errors"
)

func flockFile(name string) (io.Closer, error) {
	return nil, errors.Errorf("fsys: cannot lock %s: locks need flock(2), which this system lacks", name)
}
