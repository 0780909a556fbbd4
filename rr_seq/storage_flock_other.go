//go:build !unix

package rr_seq

import (
	"io"

	"github.com/pkg/errors"
)

func flockFile(name string) (io.Closer, error) {
	return nil, errors.Errorf("rr_seq: cannot lock %s: data dir locks need flock(2), which this system lacks", name)
}
