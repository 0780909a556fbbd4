package faultfs

import (
	"context"
	"os"
	"path/filepath"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// node is a loopback node that tells the FS what it changes, refuses
// changes while FailIO holds, and takes fsyncs for itself.
type node struct {
	gofs.LoopbackNode
	ffs *FS
}

var (
	_ gofs.NodeCreater         = (*node)(nil)
	_ gofs.NodeOpener          = (*node)(nil)
	_ gofs.NodeOpendirHandler  = (*node)(nil)
	_ gofs.NodeFsyncer         = (*node)(nil)
	_ gofs.NodeSetattrer       = (*node)(nil)
	_ gofs.NodeMkdirer         = (*node)(nil)
	_ gofs.NodeMknoder         = (*node)(nil)
	_ gofs.NodeSymlinker       = (*node)(nil)
	_ gofs.NodeLinker          = (*node)(nil)
	_ gofs.NodeUnlinker        = (*node)(nil)
	_ gofs.NodeRmdirer         = (*node)(nil)
	_ gofs.NodeRenamer         = (*node)(nil)
	_ gofs.NodeCopyFileRanger  = (*node)(nil)
	_ gofs.NodeSetxattrer      = (*node)(nil)
	_ gofs.NodeRemovexattrer   = (*node)(nil)
	_ gofs.FileWriter          = (*handle)(nil)
	_ gofs.FilePassthroughFder = (*handle)(nil)
	_ gofs.FileFsyncdirer      = (*dirHandle)(nil)
)

// realPath is the node's path in the real directory.
func (n *node) realPath() string {
	return filepath.Join(n.RootData.Path, n.Path(n.Root()))
}

func (n *node) ino() uint64 { return n.StableAttr().Ino }

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if e := n.ffs.failing(); e != 0 {
		return nil, nil, 0, e
	}
	_, err := os.Lstat(filepath.Join(n.realPath(), name))
	existed := err == nil
	ch, fh, fl, e := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if e != 0 {
		return nil, nil, 0, e
	}
	switch {
	case !existed:
		n.ffs.fresh(ch.StableAttr().Ino, kindFile)
	case flags&syscall.O_TRUNC != 0:
		n.ffs.wrote(ch.StableAttr().Ino, 0)
	}
	return ch, wrap(fh, ch), fl, 0
}

func (n *node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_TRUNC != 0 {
		if e := n.ffs.failing(); e != 0 {
			return nil, 0, e
		}
	}
	fh, fl, e := n.LoopbackNode.Open(ctx, flags)
	if e != 0 {
		return nil, 0, e
	}
	if flags&syscall.O_TRUNC != 0 {
		n.ffs.wrote(n.ino(), 0)
	}
	return wrap(fh, n.EmbeddedInode()), fl, 0
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	fh, fl, e := n.LoopbackNode.OpendirHandle(ctx, flags)
	if e != 0 {
		return nil, 0, e
	}
	return &dirHandle{FileHandle: fh, n: n}, fl, 0
}

// Fsync makes the file, or the directory's entries, durable.
func (n *node) Fsync(ctx context.Context, f gofs.FileHandle, flags uint32) syscall.Errno {
	if n.IsDir() {
		return n.ffs.syncDir(n.realPath())
	}
	return n.ffs.syncFile(n.ino(), n.realPath())
}

func (n *node) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if in.Valid&(fuse.FATTR_SIZE|fuse.FATTR_MODE|fuse.FATTR_UID|fuse.FATTR_GID) != 0 {
		if e := n.ffs.failing(); e != 0 {
			return e
		}
	}
	if sz, ok := in.GetSize(); ok {
		n.ffs.wrote(n.ino(), int64(sz))
	}
	return n.LoopbackNode.Setattr(ctx, unwrap(f), in, out)
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if e := n.ffs.failing(); e != 0 {
		return nil, e
	}
	ch, e := n.LoopbackNode.Mkdir(ctx, name, mode, out)
	if e == 0 {
		n.ffs.fresh(ch.StableAttr().Ino, kindDir)
	}
	return ch, e
}

func (n *node) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if e := n.ffs.failing(); e != 0 {
		return nil, e
	}
	ch, e := n.LoopbackNode.Mknod(ctx, name, mode, rdev, out)
	if e == 0 {
		n.ffs.fresh(ch.StableAttr().Ino, kindFile)
	}
	return ch, e
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if e := n.ffs.failing(); e != 0 {
		return nil, e
	}
	ch, e := n.LoopbackNode.Symlink(ctx, target, name, out)
	if e == 0 {
		n.ffs.fresh(ch.StableAttr().Ino, kindSymlink)
	}
	return ch, e
}

func (n *node) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if e := n.ffs.failing(); e != 0 {
		return nil, e
	}
	return n.LoopbackNode.Link(ctx, target, name, out)
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if e := n.ffs.failing(); e != 0 {
		return e
	}
	return n.LoopbackNode.Unlink(ctx, name)
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	if e := n.ffs.failing(); e != 0 {
		return e
	}
	return n.LoopbackNode.Rmdir(ctx, name)
}

func (n *node) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if e := n.ffs.failing(); e != 0 {
		return e
	}
	return n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
}

// CopyFileRange is refused, so that the kernel falls back to reads and
// writes, which the filesystem sees.
func (n *node) CopyFileRange(ctx context.Context, fhIn gofs.FileHandle, offIn uint64, out *gofs.Inode, fhOut gofs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	return 0, syscall.ENOTSUP
}

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if e := n.ffs.failing(); e != 0 {
		return e
	}
	return n.LoopbackNode.Setxattr(ctx, attr, data, flags)
}

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	if e := n.ffs.failing(); e != 0 {
		return e
	}
	return n.LoopbackNode.Removexattr(ctx, attr)
}

// handle is an open file: the loopback file, less FUSE passthrough
// (which would take reads and writes past the filesystem), with writes
// noted.
type handle struct {
	*gofs.LoopbackFile
	ffs *FS
	ino uint64
}

func wrap(fh gofs.FileHandle, in *gofs.Inode) gofs.FileHandle {
	lf, ok := fh.(*gofs.LoopbackFile)
	if !ok {
		return fh
	}
	return &handle{LoopbackFile: lf, ffs: in.Operations().(*node).ffs, ino: in.StableAttr().Ino}
}

func unwrap(fh gofs.FileHandle) gofs.FileHandle {
	if h, ok := fh.(*handle); ok {
		return h.LoopbackFile
	}
	return fh
}

func (h *handle) PassthroughFd() (int, bool) { return 0, false }

func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if e := h.ffs.failing(); e != 0 {
		return 0, e
	}
	h.ffs.wrote(h.ino, off)
	return h.LoopbackFile.Write(ctx, data, off)
}

func (h *handle) Allocate(ctx context.Context, off uint64, size uint64, mode uint32) syscall.Errno {
	if e := h.ffs.failing(); e != 0 {
		return e
	}
	h.ffs.wrote(h.ino, 0) // a punched hole is a rewrite; take any as one
	return h.LoopbackFile.Allocate(ctx, off, size, mode)
}

// Fsync is the node's: the bridge asks the node first.
func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno { return syscall.ENOTSUP }

// dirHandle is an open directory whose fsync the filesystem takes.
type dirHandle struct {
	gofs.FileHandle
	n *node
}

func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	return d.n.Fsync(ctx, nil, flags)
}

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if r, ok := d.FileHandle.(gofs.FileReaddirenter); ok {
		return r.Readdirent(ctx)
	}
	return nil, syscall.ENOTSUP
}

func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if s, ok := d.FileHandle.(gofs.FileSeekdirer); ok {
		return s.Seekdir(ctx, off)
	}
	return syscall.ENOTSUP
}

func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {
	if r, ok := d.FileHandle.(gofs.FileReleasedirer); ok {
		r.Releasedir(ctx, flags)
	}
}
