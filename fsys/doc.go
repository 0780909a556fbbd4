// Package fsys is the file access of the systems under test, with POSIX
// durability spelt out: a file's content is durable once its File is
// synced, a directory's entries once the directory is. OSFS is the real
// filesystem; the lab's simulated disk (simnet/disk) implements the same
// interface and fails the way a real disk does, so a system written to
// FS runs on either. It lives apart from every system so that the
// simulator needs none of them.
package fsys
