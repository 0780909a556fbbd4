package supervisor_test

import (
	"fmt"

	"github.com/seqlab/seqlab/process/supervisor"
)

// A node's command from a template, as --node-cmd gives it.
func ExampleParseTemplate() {
	tmpl, err := supervisor.ParseTemplate("rrseq-node --listen {listen} --peers {peers} --name {name} --data-dir {data_dir}")
	if err != nil {
		fmt.Println(err)
		return
	}
	args := tmpl.Expand(supervisor.Vars{
		Listen: "198.18.0.1:7001", Peers: "198.18.0.1:7101,198.18.0.2:7101,198.18.0.3:7101",
		Name: "n1", N: 3, DataDir: "nodes/n1/data",
	})
	fmt.Println(supervisor.Quote(args))
	// Output: rrseq-node --listen 198.18.0.1:7001 --peers 198.18.0.1:7101,198.18.0.2:7101,198.18.0.3:7101 --name n1 --data-dir nodes/n1/data
}
