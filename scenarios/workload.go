package scenarios

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/errors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/seqlab/seqlab/checker/history"
	"github.com/seqlab/seqlab/rr_seq"
	"github.com/seqlab/seqlab/rr_seq/pb"
	"github.com/seqlab/seqlab/seq"
)

// dialFunc dials a node by name, for grpc.WithContextDialer.
type dialFunc = func(ctx context.Context, addr string) (net.Conn, error)

// workload drives a scenario's clients and records what they see.
type workload struct {
	sc   Scenario
	seed int64
	// dialer gives a client host its dial function: simnet's, or the
	// process mode's, from the clients' namespace.
	dialer func(host string) dialFunc
	rec    *history.Recorder
	nodes  []string
	procs  atomic.Int64
	set    *clientSet
	ops    sync.WaitGroup
}

// newProc returns a fresh process number. A process whose operation ended
// info is never used again (Jepsen's rule); its worker takes a new one.
func (w *workload) newProc() int { return int(w.procs.Add(1) - 1) }

// pacer spaces one worker's operations: the k-th is planned at a time
// drawn from the worker's own seeded source, whatever happened before.
type pacer struct {
	rng   *rand.Rand
	next  time.Time
	every time.Duration
}

func newPacer(seed int64, worker int, rate float64) *pacer {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(worker)+1))
	every := time.Duration(float64(time.Second) / rate)
	// Start at a random point of the first period, so workers interleave.
	return &pacer{rng: rng, every: every, next: time.Now().Add(time.Duration(rng.Int64N(int64(every) + 1)))}
}

// wait sleeps until the next planned operation; false when ctx is done.
func (p *pacer) wait(ctx context.Context) bool {
	d := time.Until(p.next)
	p.next = p.next.Add(p.every/2 + time.Duration(p.rng.Int64N(int64(p.every)+1)))
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return ctx.Err() == nil
	case <-ctx.Done():
		return false
	}
}

func (w *workload) run(ctx context.Context) {
	wl := w.sc.Workload
	for i := range wl.RangeClients {
		w.ops.Go(func() { w.rangeWorker(ctx, i) })
	}
	for i := range wl.IDClients {
		w.ops.Go(func() { w.idWorker(ctx, wl.RangeClients+i) })
	}
}

// wait blocks until every worker has finished its last operation.
func (w *workload) wait() { w.ops.Wait() }

// rangeWorker calls NextRange directly on a random node, again and again.
func (w *workload) rangeWorker(ctx context.Context, i int) {
	wl := w.sc.Workload
	host := fmt.Sprintf("c%d", i+1)
	clients := map[string]pb.SequencerClient{}
	for _, n := range w.nodes {
		cc, err := grpc.NewClient("passthrough:///"+n,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(w.dialer(host)))
		if err != nil {
			return // only a malformed target fails here, and ours is fixed
		}
		defer cc.Close()
		clients[n] = pb.NewSequencerClient(cc)
	}
	size := wl.Sizes[i%len(wl.Sizes)]
	p := newPacer(w.seed, i, wl.Rate)
	proc := w.newProc()
	for p.wait(ctx) {
		name := wl.Names[p.rng.IntN(len(wl.Names))]
		node := w.nodes[p.rng.IntN(len(w.nodes))]
		w.rec.Invoke(proc, "next-range", history.RangeValue{Name: name, N: size})
		octx, cancel := context.WithTimeout(context.Background(), wl.OpTimeout)
		resp, err := clients[node].NextRange(octx, &pb.NextRangeRequest{Name: name, N: size})
		cancel()
		switch {
		case err == nil:
			w.rec.Ok(proc, "next-range", history.RangeValue{Name: name, N: size, From: resp.GetFrom(), To: resp.GetTo()}, node, "")
		case status.Code(err) == codes.InvalidArgument:
			w.rec.Fail(proc, "next-range", history.RangeValue{Name: name, N: size}, node, err.Error())
		default:
			w.rec.Info(proc, "next-range", history.RangeValue{Name: name, N: size}, node, err.Error())
			proc = w.newProc()
		}
	}
}

// idWorker hands out IDs through an rr_seq.Client whose range fetches are
// recorded as next-range operations of processes of their own, one per
// fetch slot. When the nemesis crashes the client, the worker starts a new
// one.
func (w *workload) idWorker(ctx context.Context, i int) {
	wl := w.sc.Workload
	host := fmt.Sprintf("k%d", i+1)
	name := wl.Names[i%len(wl.Names)]
	p := newPacer(w.seed, i, wl.Rate)
	for gen := 0; ctx.Err() == nil; gen++ {
		c, err := w.newIDClient(host, name, p.rng.IntN(len(w.nodes)))
		if err != nil {
			return // the config is built here and valid
		}
		w.set.put(host, c)
		proc := w.newProc()
		crashed := false
		for !crashed && p.wait(ctx) {
			w.rec.Invoke(proc, "next-id", history.IDValue{Name: name})
			octx, cancel := context.WithTimeout(context.Background(), wl.OpTimeout)
			id, err := c.Next(octx)
			cancel()
			switch {
			case err == nil:
				w.rec.Ok(proc, "next-id", history.IDValue{Name: name, ID: uint64(id)}, "", "")
			case errors.Is(err, seq.ErrClosed):
				// Crashed by the nemesis before handing anything out.
				w.rec.Fail(proc, "next-id", history.IDValue{Name: name}, "", err.Error())
				crashed = true
			default:
				w.rec.Info(proc, "next-id", history.IDValue{Name: name}, "", err.Error())
				proc = w.newProc()
			}
		}
		c.Close()
	}
	w.set.put(host, nil)
}

func (w *workload) newIDClient(host, name string, start int) (*rr_seq.Client, error) {
	var mu sync.Mutex
	slots := map[int]int{} // fetch slot -> process
	return rr_seq.NewClient(rr_seq.ClientConfig{
		Nodes: w.nodes, Name: name, RangeSize: w.sc.Workload.IDRangeSize,
		FetchTimeout: w.sc.Workload.OpTimeout, Dialer: w.dialer(host), StartNode: start,
		OnFetch: func(e rr_seq.FetchEvent) {
			mu.Lock()
			defer mu.Unlock()
			proc, ok := slots[e.Slot]
			if !ok {
				proc = w.newProc()
				slots[e.Slot] = proc
			}
			v := history.RangeValue{Name: e.Name, N: e.N, Buffer: true}
			errText := ""
			if e.Err != nil {
				errText = e.Err.Error()
			}
			switch e.Phase {
			case rr_seq.FetchInvoke:
				w.rec.Invoke(proc, "next-range", v)
			case rr_seq.FetchOK:
				v.From, v.To = uint64(e.Range.From), uint64(e.Range.To)
				w.rec.Ok(proc, "next-range", v, e.Node, "")
			case rr_seq.FetchFailed:
				w.rec.Fail(proc, "next-range", v, e.Node, errText)
			case rr_seq.FetchUnknown:
				w.rec.Info(proc, "next-range", v, e.Node, errText)
				delete(slots, e.Slot) // retired
			}
		},
	})
}

// clientSet names the live buffering clients so the nemesis can crash one.
type clientSet struct {
	mu sync.Mutex
	m  map[string]*rr_seq.Client
}

func newClientSet() *clientSet { return &clientSet{m: map[string]*rr_seq.Client{}} }

func (s *clientSet) put(name string, c *rr_seq.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c == nil {
		delete(s.m, name)
		return
	}
	s.m[name] = c
}

func (s *clientSet) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.m))
	for k := range s.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (s *clientSet) crash(name string) error {
	s.mu.Lock()
	c := s.m[name]
	s.mu.Unlock()
	if c == nil {
		return errors.Errorf("no client %q", name)
	}
	return c.Close()
}
