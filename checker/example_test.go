package checker_test

import (
	"fmt"
	"strings"

	"github.com/seqlab/seqlab/checker"
	"github.com/seqlab/seqlab/checker/history"
)

// Two clients allocate ranges; the second is invoked after the first
// completed, yet gets lower IDs: the ranges are disjoint, so nothing is
// handed out twice, but the allocation is not linearizable.
func Example() {
	h := `{"index":0,"time":0,"process":0,"type":"invoke","f":"next-range","value":{"name":"orders","n":5}}
{"index":1,"time":10,"process":0,"type":"ok","f":"next-range","value":{"name":"orders","n":5,"from":6,"to":11},"node":"n1"}
{"index":2,"time":20,"process":1,"type":"invoke","f":"next-range","value":{"name":"orders","n":5}}
{"index":3,"time":30,"process":1,"type":"ok","f":"next-range","value":{"name":"orders","n":5,"from":1,"to":6},"node":"n2"}
`
	events, problems, err := history.Read(strings.NewReader(h))
	if err != nil || len(problems) > 0 {
		panic("bad history")
	}
	res := checker.Check(events, checker.Options{})
	fmt.Println("verdict:", res.Valid)
	for _, name := range []string{"unique", "linearizable"} {
		c := res.Checks[name]
		fmt.Println(name, c.Valid, c.Ops)
	}
	// Output:
	// verdict: false
	// unique true []
	// linearizable false [1 3]
}
