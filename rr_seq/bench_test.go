package rr_seq

import (
	"context"
	"fmt"
	"testing"

	"github.com/seqlab/seqlab/seq"
)

// BenchmarkNext measures ns per ID for rr_seq clients against a 5-node
// cluster on loopback (in memory, as the original project's figures), and
// the local sequencers with the same buffer size in the same run, so the
// README can give ratios that the machine's noise does not skew.
func BenchmarkNext(b *testing.B) {
	tc := startCluster(b, 5, false, nil)
	for _, size := range []uint64{1, 2, 1024} {
		for _, mode := range []string{"single", "concurrent"} {
			b.Run(fmt.Sprintf("rr_seq/buf=%d/%s", size, mode), func(b *testing.B) {
				c := tc.client(b, size, 0)
				benchSequencer(b, c, mode)
			})
			b.Run(fmt.Sprintf("buffered/buf=%d/%s", size, mode), func(b *testing.B) {
				s := seq.NewBuffered(int(size))
				defer s.Close()
				benchSequencer(b, s, mode)
			})
		}
	}
	for _, mode := range []string{"single", "concurrent"} {
		b.Run("atomic/"+mode, func(b *testing.B) { benchSequencer(b, seq.NewAtomic(), mode) })
	}
}

func benchSequencer(b *testing.B, s seq.Sequencer, mode string) {
	ctx := context.Background()
	if mode == "single" {
		for b.Loop() {
			if _, err := s.Next(ctx); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Next(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
