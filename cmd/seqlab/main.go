// Command seqlab runs the lab's scenarios and checks recorded histories.
//
//	seqlab list                      one line per scenario
//	seqlab run SCENARIO [flags]      run one scenario, record and check it
//	seqlab replay RUN_DIR            run a recorded run again, same seed
//	seqlab check PATH [flags]        re-check a history file or run directory
//	seqlab hunt SCENARIO --seeds A-B sweep seeds in the deterministic simulator
//	seqlab shrink RUN_DIR            reduce a failing sim run's plan
//
// Exit status: 0 when the run or history met its promises (or, for a
// planted bug, when the bug was caught), 1 when a property was violated,
// 2 when it cannot say: bad arguments, unreadable input, a check that
// timed out, a history with no client operation to check.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// commands maps a subcommand to its function, which returns the exit
// status. Each file registers its own.
var commands = map[string]func(args []string, stdout, stderr io.Writer) int{}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "seqlab: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	return cmd(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "usage: seqlab {%s} ...\n", strings.Join(names, "|"))
	fmt.Fprintln(w, "  list                 list the scenarios")
	fmt.Fprintln(w, "  run SCENARIO         run a scenario (--mode grpc|sim, --seed, --time-limit, --concurrency, --store)")
	fmt.Fprintln(w, "  replay RUN_DIR       run a recorded run again with its seed and settings")
	fmt.Fprintln(w, "  check PATH           check a history file or run directory (--json, --promise, --timeout)")
	fmt.Fprintln(w, "  hunt SCENARIO        sweep seeds in the deterministic simulator (--seeds 1-10000, --workers)")
	fmt.Fprintln(w, "  shrink RUN_DIR       shrink a failing sim run's plan while its violation reproduces")
}
