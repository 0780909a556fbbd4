package script_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/seqlab/seqlab/scenarios/script"
)

// A script with an explicit timeline, parsed and printed back; its
// starts paired with their stops are what a run turns on.
func Example() {
	src := `# n1 cut off, n2 crashed while it is, then faults at random.
name Partition/isolate-then-crash-n3
description n1 is cut off; n2 crashes while it is
cluster nodes=3 persist=disk
workload range-clients=4 id-clients=2
time-limit 40s
recovery 8s

at 5s start partition-isolate n1
at 9s start crash-one n2 for=3s
at 12s stop partition-isolate
random 14s..32s faults=partition-halves,pause interval=3s for=2s
`
	s, err := script.Parse("isolate.scn", strings.NewReader(src))
	if err != nil {
		fmt.Println(err)
		return
	}
	os.Stdout.Write(s.Format())
	for _, w := range s.Windows() {
		fmt.Printf("%v..%v %s %v\n", w.At, w.At+w.For, w.Fault, w.Targets)
	}

	_, err = script.Parse("bad.scn", strings.NewReader("name X/y\nat 5s start partition-isolate n4\nat 2s stop pause\n"))
	fmt.Println(err)
	// Output:
	// name Partition/isolate-then-crash-n3
	// description n1 is cut off; n2 crashes while it is
	// cluster nodes=3 persist=disk
	// workload range-clients=4 id-clients=2
	// time-limit 40s
	// recovery 8s
	//
	// at 5s start partition-isolate n1
	// at 9s start crash-one n2 for=3s
	// at 12s stop partition-isolate
	// random 14s..32s faults=partition-halves,pause interval=3s for=2s
	// 5s..12s partition-isolate [n1]
	// 9s..12s crash-one [n2]
	// bad.scn:2: partition-isolate: n4 names no node of the cluster (n1 n2 n3)
	// bad.scn:3: at 2s: time goes backwards (line 2 is at 5s)
	// bad.scn:3: at 2s: stop pause, which is not on
}
