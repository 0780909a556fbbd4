package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/seqlab/seqlab/report"
)

func init() { commands["report"] = reportCmd }

// reportCmd writes report.html into each run directory it is given, from
// what the run recorded, and changes nothing else.
func reportCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seqlab report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: seqlab report RUN_DIR...")
		fmt.Fprintln(stderr, "Writes RUN_DIR/report.html from the run's history, results and run.json, and changes nothing else.")
		fmt.Fprintln(stderr, "A directory that holds only a history.jsonl gets a report too: the history is checked in memory.")
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	status := 0
	for _, dir := range fs.Args() {
		start := time.Now()
		if err := report.Write(dir); err != nil {
			fmt.Fprintf(stderr, "seqlab report: %v\n", err)
			status = 2
			continue
		}
		path := filepath.Join(dir, report.File)
		size := int64(0)
		if fi, err := os.Stat(path); err == nil {
			size = fi.Size()
		}
		fmt.Fprintf(stdout, "report    %s (%d KB in %v)\n", path, (size+512)/1024, time.Since(start).Round(time.Millisecond))
	}
	return status
}
