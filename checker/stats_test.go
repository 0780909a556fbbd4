package checker

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestQuantilesAsSorted holds the selection of latency quantiles to the
// sort it replaces: on lists long and short, with and without repeats,
// sorted, reversed and constant.
func TestQuantilesAsSorted(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < 3000; i++ {
		n := 1 + rng.IntN(1+[]int{10, 100, 5000}[i%3])
		spread := []int{1, 3, 50, 1 << 30}[rng.IntN(4)]
		ls := make([]time.Duration, n)
		for j := range ls {
			ls[j] = time.Duration(rng.IntN(spread))
		}
		switch i % 5 {
		case 1:
			slices.Sort(ls)
		case 2:
			slices.Sort(ls)
			slices.Reverse(ls)
		}
		sorted := slices.Sorted(slices.Values(ls))
		q := func(p float64) time.Duration { return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))] }
		want := Latency{P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: sorted[len(sorted)-1]}
		if got := quantiles(ls); got != want {
			t.Fatalf("n=%d spread=%d: got %+v, want %+v", n, spread, got, want)
		}
	}
}
