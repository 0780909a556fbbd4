package report_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/seqlab/seqlab/report"
)

// A run with two composed faults, partition-isolate+crash-one and then
// pause+slow: each of its three plots shades a band for each kind of
// each fault, four per plot. report.Write(dir) writes the same page to
// dir/report.html.
func Example() {
	dir := filepath.Join("testdata", "runs", "mixed-at-once")
	var page bytes.Buffer
	if err := report.Render(&page, dir); err != nil {
		fmt.Println(err)
		return
	}
	html := page.String()
	for _, plot := range strings.Split(html, `<svg class="plot" id="plot-`)[1:] {
		id, _, _ := strings.Cut(plot, `"`)
		fmt.Printf("%-10s %d fault bands\n", id, strings.Count(plot[:strings.Index(plot, "</svg>")], `<g class="band"`))
	}
	// Output:
	// latency    4 fault bands
	// quantiles  4 fault bands
	// throughput 4 fault bands
}
