// Package faultfs is the process mode's disk: a FUSE filesystem (with
// github.com/hanwen/go-fuse/v2) that passes through to a real directory
// and loses, on a simulated power loss, whatever was not made durable, as
// LazyFS does for Jepsen. A SIGKILL alone leaves the kernel's page cache
// behind, so without it a bug that acknowledges before it syncs cannot
// show on real processes.
//
// It follows the same rules as simnet/disk, so that a scenario means the
// same in every mode:
//
//   - A file's content and size are durable as of its last fsync.
//   - A directory's entries (files, directories and symlinks created,
//     removed or renamed in it) are durable as of its last fsync; a new
//     directory's own entries as of its own.
//   - Everything else is lost on PowerLoss. In Torn mode, a file whose
//     entry is durable and whose content changed since its last fsync
//     keeps part of the change, as simnet/disk's Torn does.
//
// How: the real directory always holds what processes see, as a page
// cache would, and the filesystem keeps the durable state in memory:
// the content of each file as of its fsync (an fsync after appends reads
// only the appended bytes), and the entries of each directory as of its
// fsync. PowerLoss unmounts, rewrites the real directory to the durable
// state, and mounts again, so that no page of the kernel's cache can
// serve the dropped data. The processes that used the filesystem must be
// dead before it: a mount that is still in use cannot be unmounted.
//
// It can also fail every call that changes the disk with an errno of the
// caller's choice (FailIO: EIO, ENOSPC).
//
// Files are told apart by their inode numbers on the real directory,
// which must not span filesystems; a file created anew is a new file
// even where the real filesystem reuses an inode number. Hard links are
// passed through, but a power loss writes each link's durable content as
// a file of its own. An fsync through a handle whose file has no name
// any more (unlinked) makes nothing durable.
package faultfs
