package cluster_test

import (
	"context"
	"fmt"
	"os"

	"github.com/seqlab/seqlab/process/cluster"
)

// Three rrseq-node processes on faultfs disks, one crashed with a power
// loss and restarted. It needs root, /dev/fuse and an rrseq-node binary,
// so it is compiled but not run by go test.
func Example() {
	dir, _ := os.MkdirTemp("", "run")
	defer os.RemoveAll(dir)
	c, err := cluster.Start(context.Background(), cluster.Config{
		Nodes: 3, Command: cluster.RRSeqNode("rrseq-node", true), Disk: true, Dir: dir,
		Env: []string{"RRSEQ_PEER_SECRET=lab"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	c.Net().Partition([]string{"n1", "n2"}, []string{"n3"}) // nftables in the namespaces
	c.Crash("n1", true, false)                              // SIGKILL, then the disk loses what was not synced
	c.Restart("n1")
	fmt.Println(c.Commands()[0])
}
