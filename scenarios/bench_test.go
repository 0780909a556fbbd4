package scenarios_test

import (
	"testing"
	"time"

	"github.com/seqlab/seqlab/scenarios"
)

// BenchmarkHuntSeed is one seed of a hunt of the speed scenario: a
// 30-second simulated run of 5 nodes and 10 clients, and its checks. It
// reports the run's speed against real time and the seeds a minute one
// core hunts.
func BenchmarkHuntSeed(b *testing.B) {
	sc, err := scenarios.Find("Speed/healthy-n5-c10")
	if err != nil {
		b.Fatal(err)
	}
	seed := int64(0)
	for b.Loop() {
		seed++
		cfg, _, err := scenarios.SimConfig(sc, scenarios.Options{Seed: seed, HasSeed: true})
		if err != nil {
			b.Fatal(err)
		}
		out, err := scenarios.Simulate(sc, cfg)
		if err != nil || len(out.Violated()) > 0 {
			b.Fatal(err, out.Violated())
		}
	}
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(30*time.Second)/float64(per), "x-realtime")
	b.ReportMetric(float64(time.Minute)/float64(per), "seeds/min/core")
}
