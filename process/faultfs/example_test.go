package faultfs_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/seqlab/seqlab/process/faultfs"
)

// A write that was synced survives a power loss; one that was not does
// not. It needs root and /dev/fuse, so it is compiled but not run by go
// test.
func Example() {
	base, _ := os.MkdirTemp("", "faultfs")
	defer os.RemoveAll(base)
	real, mnt := filepath.Join(base, "real"), filepath.Join(base, "mnt")
	os.Mkdir(real, 0o755)
	os.Mkdir(mnt, 0o755)
	fs, err := faultfs.Mount(faultfs.Config{Dir: real, Mountpoint: mnt})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer fs.Close()

	f, _ := os.Create(filepath.Join(mnt, "log"))
	f.WriteString("synced;")
	f.Sync()
	d, _ := os.Open(mnt)
	d.Sync() // the file's entry
	d.Close()
	f.WriteString("lost")
	f.Close()

	fs.PowerLoss(faultfs.LoseUnsynced)
	b, _ := os.ReadFile(filepath.Join(mnt, "log"))
	fmt.Println(string(b)) // synced;
}
