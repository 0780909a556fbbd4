package netns_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/seqlab/seqlab/process/netns"
)

// Two hosts, a one-way cut between them, and a heal. It needs root, so
// it is compiled but not run by go test.
func Example() {
	lab, err := netns.New(netns.Config{Hosts: []string{"n1", "n2"}})
	if err != nil {
		fmt.Println(err) // netns.ErrNoPrivilege without root
		return
	}
	defer lab.Close()
	n1, n2 := lab.Host("n1"), lab.Host("n2")
	lis, _ := n2.Listen("tcp", netip.AddrPortFrom(n2.Addr(), 7000).String())
	defer lis.Close()

	lab.Cut("n1", "n2") // n1's bytes no longer reach n2; n2's still reach n1
	ctx, cancel := context.WithTimeout(context.Background(), 100e6)
	defer cancel()
	if _, err := n1.Dial(ctx, "tcp", lis.Addr().String()); err != nil {
		fmt.Println("n1 cannot dial n2")
	}
	lab.HealLink("n1", "n2")
}
