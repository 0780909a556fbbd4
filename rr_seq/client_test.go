package rr_seq

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/seq"
)

// TestClientConcurrentCallers: callers sharing one client, on the
// lock-free path and across its spans, get unique IDs, each caller's
// increasing.
func TestClientConcurrentCallers(t *testing.T) {
	tc := startCluster(t, 3, false, nil)
	for _, cfg := range []struct{ size, lookahead int }{{1, 1}, {3, 1}, {16, 1}, {16, 3}} {
		t.Run(fmt.Sprintf("size=%d/lookahead=%d", cfg.size, cfg.lookahead), func(t *testing.T) {
			c, err := NewClient(ClientConfig{Nodes: tc.addrs, RangeSize: uint64(cfg.size), Lookahead: cfg.lookahead})
			require.NoError(t, err)
			defer c.Close()
			const callers, each = 6, 300
			got := make([][]seq.ID, callers)
			var wg sync.WaitGroup
			for i := range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range each {
						id, err := c.Next(context.Background())
						if err != nil {
							t.Error(err)
							return
						}
						got[i] = append(got[i], id)
					}
				}()
			}
			wg.Wait()
			seen := map[seq.ID]int{}
			for i, ids := range got {
				for j, id := range ids {
					if prev, dup := seen[id]; dup {
						t.Fatalf("ID %d handed out to caller %d and caller %d", id, prev, i)
					}
					seen[id] = i
					if j > 0 && id <= ids[j-1] {
						t.Fatalf("caller %d: ID %d after %d", i, id, ids[j-1])
					}
				}
			}
			require.Len(t, seen, callers*each)
		})
	}
}

// TestClientPrefetches: the next fetch starts as soon as a range's first ID
// goes out, and Lookahead ranges are kept buffered or on their way.
func TestClientPrefetches(t *testing.T) {
	tc := startCluster(t, 3, false, nil)
	for _, lookahead := range []int{1, 2} {
		t.Run(fmt.Sprintf("lookahead=%d", lookahead), func(t *testing.T) {
			var mu sync.Mutex
			invokes := 0
			c, err := NewClient(ClientConfig{Nodes: tc.addrs, RangeSize: 8, Lookahead: lookahead, OnFetch: func(e FetchEvent) {
				if e.Phase == FetchInvoke {
					mu.Lock()
					invokes++
					mu.Unlock()
				}
			}})
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Next(context.Background())
			require.NoError(t, err)
			want := lookahead + 1 // the first fetches, then one to refill the range taken
			require.Eventually(t, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return invokes >= want
			}, 5*time.Second, time.Millisecond, "fetches started after one ID")
			time.Sleep(50 * time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, want, invokes, "no more fetches than Lookahead ranges need")
		})
	}
}
