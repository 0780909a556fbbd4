package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/process/faultfs"
	"github.com/seqlab/seqlab/process/isolate"
	"github.com/seqlab/seqlab/process/netns"
	"github.com/seqlab/seqlab/scenarios"
)

// processFlags are the flags of the process mode.
type processFlags struct {
	nodeCmd string
	promise string
}

// processOf turns the flags into what the process mode runs (without the
// systems' node binaries, which are built later, once the run is sure to
// go ahead).
func processOf(pf processFlags) (scenarios.Process, error) {
	p := scenarios.Process{Command: strings.TrimSpace(pf.nodeCmd)}
	if pf.nodeCmd != "" && p.Command == "" {
		return p, errors.New("--node-cmd is empty")
	}
	if pf.promise != "" {
		for _, s := range strings.Split(pf.promise, ",") {
			p.Promises = append(p.Promises, strings.TrimSpace(s))
		}
		if err := scenarios.CheckPromises(p.Promises); err != nil {
			return p, errors.Wrap(err, "--promise")
		}
	}
	return p, nil
}

// runsInProcessMode reports whether sc runs in process mode with p, and
// why not.
func runsInProcessMode(sc scenarios.Scenario, p scenarios.Process) string {
	if !sc.Supports(scenarios.ModeProcess) && sc.WhyNotProcess(false) == "" {
		return fmt.Sprintf("its modes are %s", strings.Join(sc.Modes, ","))
	}
	return sc.WhyNotProcess(p.Command != "")
}

// enterIsolation is isolate.Enter; a test binary run in process (not as
// the command, SEQLAB_MAIN=1) would re-execute its own tests, so there it
// refuses.
var enterIsolation = func() error {
	if testing.Testing() && os.Getenv("SEQLAB_MAIN") != "1" {
		return errors.New("the process mode runs only as a command of its own (tests run it with SEQLAB_MAIN=1)")
	}
	return isolate.Enter()
}

// privileges is what the process mode needs that this process may lack.
const privileges = "root: CAP_SYS_ADMIN (a private mount namespace, FUSE), CAP_NET_ADMIN (network namespaces, nftables), and /dev/fuse for a disk"

// startProcessMode moves the lab into a private mount namespace (the
// first time it is called, in the outer process, it runs the command
// again there and exits with its status), checks the privileges the
// runs need, and, unless p has a command of its own, says where each
// run builds its system's node binary (STORE/.bin: rrseq-node,
// raftseq-node, flakeseq-node, from the module's source, which it checks
// is here). It returns p so, or an exit status other than 0.
func startProcessMode(cmd string, p scenarios.Process, disk bool, store string, stderr io.Writer) (scenarios.Process, int) {
	refuse := func(err error) (scenarios.Process, int) {
		fmt.Fprintf(stderr, "seqlab %s: --mode process needs %s\n  missing: %v\n", cmd, privileges, err)
		return p, 2
	}
	if err := enterIsolation(); err != nil {
		return refuse(err)
	}
	if err := netns.Check(); err != nil {
		return refuse(err)
	}
	if disk {
		if err := checkFUSE(); err != nil {
			return refuse(err)
		}
	}
	if p.Command != "" {
		return p, 0
	}
	if err := scenarios.CheckSource(); err != nil {
		fmt.Fprintf(stderr, "seqlab %s: build the node binaries: %v\n", cmd, err)
		return p, 2
	}
	p.Bin, p.BinDir = "", filepath.Join(store, ".bin")
	return p, 0
}

// checkFUSE mounts a throwaway faultfs disk: the one sure test.
func checkFUSE() error {
	dir, err := os.MkdirTemp("", "seqlab-fuse-check")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	real, mp := filepath.Join(dir, "real"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(real, 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(mp, 0o755); err != nil {
		return err
	}
	fs, err := faultfs.Mount(faultfs.Config{Dir: real, Mountpoint: mp})
	if err != nil {
		if errors.Is(err, faultfs.ErrNoFUSE) {
			return err
		}
		return errors.Wrap(faultfs.ErrNoFUSE, err.Error())
	}
	return fs.Close()
}

// replayProcess replays a process-mode run directory: the same scenario,
// seed, settings, node command and promises, on fresh processes.
func replayProcess(dir, store string, info scenarios.RunInfo, stdout, stderr io.Writer) int {
	rec, err := scenarios.ReadProcessRecord(dir)
	if err != nil {
		fmt.Fprintf(stderr, "seqlab replay: %v\n", err)
		return 2
	}
	sc, err := runScenario(dir, info.Scenario) // a script keeps its text in the run dir
	if err != nil {
		fmt.Fprintf(stderr, "seqlab replay: %v\n", err)
		return 2
	}
	p, code := startProcessMode("replay", scenarios.Process{Command: rec.NodeCmd}, sc.Cluster.Persist == scenarios.Disk, store, stderr)
	if code != 0 {
		return code
	}
	ctx, release := notify(stderr)
	defer release()
	warnBuild(stdout, info)
	if info.Interrupted {
		fmt.Fprintf(stdout, "warning   the recording was interrupted at %.1fs of %.1fs: the replay runs all of it\n",
			info.SimTime.Seconds(), info.TimeLimit.Seconds())
	}
	fmt.Fprintf(stdout, "replaying %s with seed %d in process mode: the same schedule of faults and operations, on real processes whose interleaving no seed fixes, so NOT bit-exact\n",
		info.Scenario, info.Seed)
	rep, err := scenarios.ReplayProcess(dir, scenarios.Options{Store: store, Out: stdout, Context: ctx}, p.BinDir)
	if err != nil {
		fmt.Fprintf(stderr, "seqlab replay: %v\n", err)
		if ctx.Err() != nil {
			return exitInterrupted
		}
		return 2
	}
	compareVerdicts(stdout, dir, rep.Dir)
	if ctx.Err() != nil {
		return interruptedRun(rep, stderr, "replay")
	}
	return runExit(rep)
}

// runProcess runs one scenario in process mode and returns its report,
// or nil and the exit status when it could not be carried out.
func runProcess(ctx context.Context, sc scenarios.Scenario, opts scenarios.Options, p scenarios.Process, stderr io.Writer) (*scenarios.Report, int) {
	rep, err := scenarios.RunProcess(sc, opts, p)
	if err != nil {
		fmt.Fprintf(stderr, "seqlab run: %v\n", err)
		if ctx.Err() != nil {
			return nil, exitInterrupted
		}
		return nil, 2
	}
	return rep, runExit(rep)
}
