package checker

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/seqlab/seqlab/checker/history"
)

// FuzzCheck: no history, however odd, makes the checks panic, and a
// verdict is always one of the three.
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
		_ = res.Summary()
	})
}
