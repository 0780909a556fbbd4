package rr_seq

import "github.com/seqlab/seqlab/fsys"

// FS is all the file access rr_seq does (see fsys.FS): the real
// filesystem (OSFS) or the lab's simulated disk.
type FS = fsys.FS

// File is a file open for writing (see fsys.File).
type File = fsys.File

// OSFS is the real filesystem.
type OSFS = fsys.OSFS

// ErrLocked is returned when another process, or another Storage of this
// one, holds the data dir.
var ErrLocked = fsys.ErrLocked
