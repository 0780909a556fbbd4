package flakesim_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/checker/history"
	"github.com/seqlab/seqlab/flake_seq/flakesim"
	"github.com/seqlab/seqlab/simnet/sim"
)

// A run of flake_seq in the simulator, its clocks stepped back across
// crashes, checked for duplicates: the real system has none; the planted
// flake-clock-rollback has.
func Example() {
	for _, bug := range []bool{false, true} {
		sys, _ := flakesim.New(flakesim.Config{ClockRollback: bug}, 3)
		res, _ := sim.Run(sim.Config{Seed: 1, Nodes: 3, Clients: 6, Rate: 50, TimeLimit: 5 * time.Second,
			Faults: flakesim.RollbackPlan(1, 5*time.Second)}, sys, false)
		events, _, _ := history.Read(bytes.NewReader(res.History))
		r := checker.Check(events, checker.Options{Promises: []string{checker.Unique}})
		fmt.Printf("planted bug %v: unique %s\n", bug, r.Checks[checker.Unique].Valid)
	}
	// Output:
	// planted bug false: unique true
	// planted bug true: unique false
}
