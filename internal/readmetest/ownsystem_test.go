package readmetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOwnSystemSnippets: the Go blocks of the README's "Testing your own
// sequencer" are the code that ExampleRegister and TestOwnSystemGRPC
// compile and run, verbatim, so the README's adapter is one that works.
func TestOwnSystemSnippets(t *testing.T) {
	root := moduleRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join(root, "scenarios", "example_system_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	sec := section(string(readme), "### Testing your own sequencer")
	blocks := 0
	for _, part := range strings.Split(sec, "```go\n")[1:] {
		code, _, ok := strings.Cut(part, "```")
		if !ok {
			t.Fatalf("README.md, Testing your own sequencer: a Go block is not closed")
		}
		blocks++
		if !strings.Contains(string(example), code) {
			t.Errorf("README.md, Testing your own sequencer: block %d is not in scenarios/example_system_test.go as it stands:\n%s", blocks, code)
		}
	}
	if blocks < 3 {
		t.Fatalf("README.md, Testing your own sequencer: %d Go blocks; want the core, the gRPC node and the registration", blocks)
	}
}
