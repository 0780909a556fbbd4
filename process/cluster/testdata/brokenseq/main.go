// Command brokenseq is a deliberately broken sequencer that serves the
// lab's API (rrseq.v1.Sequencer/NextRange), for the tests of the process
// mode: a program nobody here wrote, run through a command template.
//
// It is primary-backup with sloppy fail-over. Node 0 starts as the
// primary: it hands out IDs from its counter and tells the backups the
// new counter afterwards, without waiting for them. A backup that has not
// heard from the primary for 300ms makes itself primary, from whatever
// value it last heard, and nobody tells the old primary. Partition the
// primary from the backups while clients still reach both, and two
// primaries hand out the same IDs.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/seqlab/seqlab/rr_seq/pb"
)

type server struct {
	pb.UnimplementedSequencerServer
	name  string
	peers []string // the others' peer addresses

	mu       sync.Mutex
	next     uint64
	primary  bool
	lastHead time.Time // when the primary was last heard
}

func main() {
	listen := flag.String("listen", "", "client API address")
	peerListen := flag.String("peer-listen", "", "peer address")
	peers := flag.String("peers", "", "every node's peer address, comma-separated")
	index := flag.Int("index", 0, "this node's place in --peers")
	name := flag.String("name", "", "node name")
	flag.Parse()
	s := &server{name: *name, next: 1, primary: *index == 0, lastHead: time.Now()}
	for i, p := range strings.Split(*peers, ",") {
		if i != *index {
			s.peers = append(s.peers, p)
		}
	}
	plis, err := net.Listen("tcp", *peerListen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go s.servePeers(plis)
	go s.watch()
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	g := grpc.NewServer()
	pb.RegisterSequencerServer(g, s)
	healthpb.RegisterHealthServer(g, health.NewServer())
	fmt.Fprintf(os.Stderr, "%s serving, primary=%v\n", *name, s.primary)
	g.Serve(lis)
}

func (s *server) NextRange(ctx context.Context, req *pb.NextRangeRequest) (*pb.NextRangeResponse, error) {
	if req.N == 0 {
		return nil, status.Error(codes.InvalidArgument, "n = 0")
	}
	s.mu.Lock()
	if !s.primary {
		s.mu.Unlock()
		return nil, status.Error(codes.Unavailable, "not the primary")
	}
	from := s.next
	s.next += req.N
	to := s.next
	s.mu.Unlock()
	go s.replicate(to) // the bug's first half: acknowledged before any backup has it
	return &pb.NextRangeResponse{From: from, To: to, Node: s.name}, nil
}

// replicate tells every backup the counter, best effort.
func (s *server) replicate(v uint64) {
	for _, p := range s.peers {
		c, err := net.DialTimeout("tcp", p, 200*time.Millisecond)
		if err != nil {
			continue
		}
		c.SetDeadline(time.Now().Add(200 * time.Millisecond))
		fmt.Fprintf(c, "SET %d\n", v)
		bufio.NewReader(c).ReadString('\n')
		c.Close()
	}
}

// servePeers takes SET (the primary's counter) and PING.
func (s *server) servePeers(lis net.Listener) {
	for {
		c, err := lis.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			f := strings.Fields(line)
			if len(f) == 2 && f[0] == "SET" {
				if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
					s.mu.Lock()
					if v > s.next {
						s.next = v
					}
					s.lastHead = time.Now()
					s.mu.Unlock()
				}
			} else if len(f) == 1 && f[0] == "PING" {
				s.mu.Lock()
				s.lastHead = time.Now()
				s.mu.Unlock()
			}
			fmt.Fprintln(c, "OK")
		}()
	}
}

// watch: a primary pings the backups; a backup that has not heard from
// a primary for 300ms takes over. The bug's second half: no epoch, no
// fencing, no check that the old primary is gone.
func (s *server) watch() {
	for range time.Tick(50 * time.Millisecond) {
		s.mu.Lock()
		primary, quiet := s.primary, time.Since(s.lastHead)
		s.mu.Unlock()
		if primary {
			for _, p := range s.peers {
				go func() {
					c, err := net.DialTimeout("tcp", p, 100*time.Millisecond)
					if err == nil {
						c.SetDeadline(time.Now().Add(100 * time.Millisecond))
						fmt.Fprintln(c, "PING")
						bufio.NewReader(c).ReadString('\n')
						c.Close()
					}
				}()
			}
		} else if quiet > 300*time.Millisecond {
			s.mu.Lock()
			s.primary = true
			s.mu.Unlock()
			fmt.Fprintf(os.Stderr, "%s: primary silent for %v, taking over at %d\n", s.name, quiet, s.next)
		}
	}
}
