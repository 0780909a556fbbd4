package isolate_test

import (
	"fmt"
	"os"

	"github.com/seqlab/seqlab/process/isolate"
)

// The first lines of a lab's main: from here on, the process runs in a
// mount namespace of its own. Not run by go test: it re-executes the
// program.
func Example() {
	if err := isolate.Enter(); err != nil {
		fmt.Fprintln(os.Stderr, "process mode:", err)
		os.Exit(1)
	}
	fmt.Println("isolated:", isolate.Isolated())
}
