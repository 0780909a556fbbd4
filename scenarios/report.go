package scenarios

import (
	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/report"
)

// writeReport titles porcupine's views and writes report.html, after
// everything the run records: a report that cannot be made is an error
// of the run's, never a change to what it recorded. Each mode's runner
// calls it last, so that every run directory has a report.
func writeReport(dir string) error {
	if err := report.TitleViews(dir); err != nil {
		return errors.Wrapf(err, "%s", dir)
	}
	return errors.Wrapf(report.Write(dir), "%s: write %s", dir, report.File)
}
