package checker

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/seqlab/seqlab/checker/history"
)

// FuzzCheck: no history, however odd, makes the checks panic, a verdict
// is always one of the three, the direct checker and porcupine agree
// (linearizable is unknown only when they do not), and checking a
// history as it is read (CheckReader) gives what checking it whole does.
func FuzzCheck(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.jsonl")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		events, problems, err := history.Read(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		opts := Options{Timeout: time.Second, Promises: []string{Unique, Linearizable, Monotonic, NodeOrder, GapFree}}
		res := Check(events, opts)
		switch res.Valid {
		case ValidTrue, ValidFalse, ValidUnknown:
		default:
			t.Fatalf("verdict %q", res.Valid)
		}
		if lin := res.Checks[Linearizable]; lin.Valid == ValidUnknown {
			t.Fatalf("linearizable: %s", lin.Reason)
		}
		_ = res.Summary()

		// Checking as it reads gives the same results.
		streamed, err := CheckReader(bytes.NewReader(b), opts)
		if len(events) == 0 && len(problems) > 0 {
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("line %d: ", problems[0].Line)) {
				t.Fatalf("no usable line: got %v, want the first problem's line", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		res.withMalformed(problems)
		res.Duration, streamed.Duration = 0, 0
		if !reflect.DeepEqual(res, streamed) {
			t.Fatalf("CheckReader differs from Check:\n%s\nwant\n%s", streamed.Summary(), res.Summary())
		}
	})
}
