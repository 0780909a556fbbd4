package seq_test

import (
	"context"
	"testing"

	"github.com/seqlab/seqlab/seq"
)

// BenchmarkLocal measures the local sequencers per ID; rr_seq's benchmarks
// measure the same shapes so the README can put them side by side.
func BenchmarkLocal(b *testing.B) {
	for _, tc := range []struct {
		name string
		mk   func() seq.Sequencer
	}{
		{"Atomic", func() seq.Sequencer { return seq.NewAtomic() }},
		{"Buffered/buf=1", func() seq.Sequencer { return seq.NewBuffered(1) }},
		{"Buffered/buf=2", func() seq.Sequencer { return seq.NewBuffered(2) }},
		{"Buffered/buf=1024", func() seq.Sequencer { return seq.NewBuffered(1024) }},
	} {
		b.Run(tc.name+"/single", func(b *testing.B) {
			s := tc.mk()
			defer s.Close()
			ctx := context.Background()
			for b.Loop() {
				if _, err := s.Next(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/concurrent", func(b *testing.B) {
			s := tc.mk()
			defer s.Close()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, err := s.Next(ctx); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
