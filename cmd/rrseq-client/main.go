// Command rrseq-client prints IDs from a read-repair sequencer cluster, one
// per line.
//
//	rrseq-client --nodes 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003 --count 5
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/seqlab/seqlab/rr_seq"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rrseq-client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodes := fs.String("nodes", "127.0.0.1:7001", "comma-separated node addresses")
	name := fs.String("name", "default", "sequence name")
	count := fs.Int("count", 10, "how many IDs to print")
	size := fs.Uint64("range-size", 0, "IDs fetched per request (default: --count, at most 1024)")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rrseq-client: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *name == "" {
		fmt.Fprintln(stderr, "rrseq-client: --name must not be empty")
		return 2
	}
	if *count < 1 {
		fmt.Fprintln(stderr, "rrseq-client: --count must be at least 1")
		return 2
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "rrseq-client: --timeout must be positive")
		return 2
	}
	if *size == 0 {
		*size = uint64(min(*count, 1024))
	}
	c, err := rr_seq.NewClient(rr_seq.ClientConfig{Nodes: strings.Split(*nodes, ","), Name: *name, RangeSize: *size})
	if err != nil {
		fmt.Fprintf(stderr, "rrseq-client: %v\n", err)
		return 2
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	for range *count {
		id, err := c.Next(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "rrseq-client: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, id)
	}
	return 0
}
