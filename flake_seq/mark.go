package flake_seq

import (
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/fsys"
)

// The high-water mark's file in a node's data dir, and its lock.
const (
	MarkFile = "flake.mark"
	LockFile = "flake.lock"
)

// markStore keeps a node's high-water mark in its data dir: one line,
// "flake_seq mark v1 node=<id> epoch=<unix ms> mark=<ts> crc=<hex>",
// replaced atomically (written to a temporary file, fsynced, renamed over
// the old one, and the dir fsynced). The node ID and epoch are in it so
// that a data dir is not reused by another node or with another epoch,
// either of which would make its mark meaningless.
type markStore struct {
	fs    fsys.FS
	dir   string
	node  int
	epoch int64
	lock  io.Closer
}

// openMarks locks dir and reads its mark (0 when there is none yet).
func openMarks(f fsys.FS, dir string, node int, epoch int64) (*markStore, int64, error) {
	if err := fsys.MakeDir(f, dir); err != nil {
		return nil, 0, errors.Wrapf(err, "flake_seq: data dir %s", dir)
	}
	lock, err := f.Lock(filepath.Join(dir, LockFile))
	if err != nil {
		return nil, 0, errors.Wrapf(err, "flake_seq: lock data dir %s", dir)
	}
	s := &markStore{fs: f, dir: dir, node: node, epoch: epoch, lock: lock}
	b, err := f.ReadFile(filepath.Join(dir, MarkFile))
	if errors.Is(err, fs.ErrNotExist) {
		return s, 0, nil
	}
	if err == nil {
		var mark int64
		mark, err = s.parse(string(b))
		if err == nil {
			return s, mark, nil
		}
	}
	lock.Close()
	return nil, 0, errors.Wrapf(err, "flake_seq: read %s", filepath.Join(dir, MarkFile))
}

func (s *markStore) line(mark int64) string {
	body := fmt.Sprintf("flake_seq mark v1 node=%d epoch=%d mark=%d", s.node, s.epoch, mark)
	return fmt.Sprintf("%s crc=%08x\n", body, crc32.ChecksumIEEE([]byte(body)))
}

func (s *markStore) parse(text string) (int64, error) {
	body, sum, ok := strings.Cut(strings.TrimSuffix(text, "\n"), " crc=")
	if !ok || fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(body))) != sum {
		return 0, errors.New("the mark file is corrupt (bad checksum)")
	}
	var node int
	var epoch, mark int64
	if _, err := fmt.Sscanf(body, "flake_seq mark v1 node=%d epoch=%d mark=%d", &node, &epoch, &mark); err != nil {
		return 0, errors.Wrap(err, "the mark file is not flake_seq's")
	}
	switch {
	case node != s.node:
		return 0, errors.Errorf("the data dir is node %d's, not node %d's", node, s.node)
	case epoch != s.epoch:
		return 0, errors.Errorf("the data dir's epoch is %d ms after the Unix epoch, not %d", epoch, s.epoch)
	case mark < 0 || mark > MaxTimestamp+1:
		return 0, errors.Errorf("mark %d outside the layout", mark)
	}
	return mark, nil
}

// save makes mark durable, replacing the old one.
func (s *markStore) save(mark int64) error {
	tmp := filepath.Join(s.dir, MarkFile+".tmp")
	f, err := s.fs.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, s.line(mark)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := s.fs.Rename(tmp, filepath.Join(s.dir, MarkFile)); err != nil {
		return err
	}
	return s.fs.SyncDir(s.dir)
}

func (s *markStore) close() error { return s.lock.Close() }
