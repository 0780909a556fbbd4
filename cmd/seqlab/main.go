// Command seqlab runs the lab's scenarios and checks recorded histories.
//
//	seqlab list [--long]             the scenarios, one line each
//	seqlab run SCENARIO|GROUP        run a scenario, or a group, record and check it
//	seqlab run --all                 every scenario in each of its modes, and a short hunt each
//	seqlab replay RUN_DIR            run a recorded run again, same seed
//	seqlab check PATH [--out FILE]   re-check a history file or run directory
//	seqlab hunt SCENARIO --seeds A-B sweep seeds in the deterministic simulator
//	seqlab shrink RUN_DIR            reduce a failing sim run's plan
//	seqlab report RUN_DIR...         write a run's report.html from its recording
//	seqlab serve [STORE]             browse the runs of a store at http://127.0.0.1:8080/
//
// Exit status: 0 when the run or history met its promises (or, for a
// planted bug, when the bug was caught), 1 when a property was violated,
// 2 when it cannot say: bad arguments, unreadable input, a check that
// timed out, a history with no client operation to check. 130 when
// interrupted (Ctrl-C, or SIGTERM): run, replay and hunt stop cleanly,
// record and print what they have, and say so. seqlab report exits 0
// when it wrote every report, 2 when one could not be made; seqlab serve
// runs until Ctrl-C and then exits 0.
//
// The build uses default.pgo, a CPU profile of simulated runs and hunt
// seeds, for profile-guided optimization: a hunt takes about 6% less CPU
// time with it. .ci/pgo writes it anew.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// commands maps a subcommand to its function, which returns the exit
// status. Each file registers its own.
var commands = map[string]func(args []string, stdout, stderr io.Writer) int{}

// exitInterrupted is the exit status after Ctrl-C, as a shell reports a
// process that SIGINT killed.
const exitInterrupted = 130

// notify returns a context that ends at the first SIGINT or SIGTERM, and
// a function that releases it. After the first signal, the signals have
// their default action again, so a second Ctrl-C quits at once. Tests
// replace it to interrupt a command without a signal.
var notify = func(stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sig:
			signal.Stop(sig)
			fmt.Fprintf(stderr, "\nseqlab: %v: stopping after what is running; again to quit at once\n", s)
			cancel()
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sig)
		close(done)
		cancel()
	}
}

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
	fmt.Fprintln(w, "  list                 list the scenarios (--long for their settings)")
	fmt.Fprintln(w, "  run SCENARIO|GROUP   run a scenario or a group (--mode grpc|sim, --seed, --time-limit, --concurrency, --store)")
	fmt.Fprintln(w, "  run --all            every scenario in each of its modes, and a short hunt each (--hunt SEEDS)")
	fmt.Fprintln(w, "  replay RUN_DIR       run a recorded run again with its seed and settings")
	fmt.Fprintln(w, "  check PATH           re-check a history file or run directory; writes nothing (--json, --promise, --timeout, --out FILE)")
	fmt.Fprintln(w, "  hunt SCENARIO        sweep seeds in the deterministic simulator (--seeds 1-10000, --workers)")
	fmt.Fprintln(w, "  shrink RUN_DIR       shrink a failing sim run's plan while its violation reproduces")
	fmt.Fprintln(w, "  report RUN_DIR...    write each run's report.html from its recording, and nothing else")
	fmt.Fprintln(w, "  serve [STORE]        browse a store's runs and their reports, read-only (--addr, default "+defaultServeAddr+")")
}
