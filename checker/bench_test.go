package checker

import (
	"testing"
	"time"

	"github.com/seqlab/seqlab/checker/history"
)

var bench1M []history.Event

// million is a generated history of about 1,000,000 events: 500,000
// operations over 64 processes, ranges and IDs, some fail and info.
func million(b *testing.B) []history.Event {
	if bench1M == nil {
		bench1M = genHistory(42, 64, 500_000, []string{"default"})
	}
	b.Logf("%d events", len(bench1M))
	return bench1M
}

// BenchmarkCheck1M: every check, porcupine left out (the direct checker
// decides linearizability).
func BenchmarkCheck1M(b *testing.B) {
	events := million(b)
	b.ResetTimer()
	for b.Loop() {
		res := Check(events, Options{PorcupineLimit: -1})
		if res.Valid != ValidTrue {
			b.Fatal(res.Summary())
		}
	}
}

// BenchmarkPorcupine1M: porcupine alone on the same history, with a
// 20-second timeout; the metric says whether it finished.
func BenchmarkPorcupine1M(b *testing.B) {
	events := million(b)
	seqs, _ := collect(events)
	b.ResetTimer()
	for b.Loop() {
		v, _ := porcupineCheck(okRanges(seqs["default"]), 20*time.Second, "", nil)
		done := 0.0
		if v == "Ok" {
			done = 1
		}
		b.ReportMetric(done, "finished")
	}
}

// BenchmarkRead1M: parsing the same history from JSON Lines.
func BenchmarkRead1M(b *testing.B) {
	events := million(b)
	var buf bytesBuffer
	if err := history.Write(&buf, events); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ResetTimer()
	for b.Loop() {
		if _, p, err := history.Read(buf.reader()); err != nil || len(p) > 0 {
			b.Fatal(err, p)
		}
	}
}
