package checker

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/seqlab/seqlab/checker/history"
)

// FuzzCheck: no history, however odd, makes the checks panic, a verdict
// is always one of the three, and the direct checker and porcupine agree
// (linearizable is unknown only when they do not).
func FuzzCheck(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.jsonl")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		events, _, err := history.Read(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		res := Check(events, Options{Timeout: time.Second, Promises: []string{Unique, Linearizable, Monotonic, GapFree}})
		switch res.Valid {
		case ValidTrue, ValidFalse, ValidUnknown:
		default:
			t.Fatalf("verdict %q", res.Valid)
		}
		if lin := res.Checks[Linearizable]; lin.Valid == ValidUnknown {
			t.Fatalf("linearizable: %s", lin.Reason)
		}
		_ = res.Summary()
	})
}
