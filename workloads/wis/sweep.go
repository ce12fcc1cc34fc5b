package wis

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/syncord/syncord/internal/setting"
	"github.com/syncord/syncord/numa"
)

// SweepConfig configures a runtest.py-style sweep of one will-it-scale
// test over task counts.
type SweepConfig struct {
	// Run is the template of every point's run; Tasks, Duration and
	// Progress are set per point.
	Run Config
	// Points are the task counts, in order.
	Points []int
	// Duration is runtest.py's duration: -s of every run (0: 5 s).
	Duration time.Duration
	// Header is the first line's triple.
	Header numa.RuntestHeader
	// Progress receives one line per point (i of n, elapsed, estimate)
	// and one per failed point (nil: none).
	Progress io.Writer
}

// SweepRow is one line "core,total,fast,slow"; a failed run is -1,-1,-1.
type SweepRow struct {
	Cores int    `json:"core"`
	Total int64  `json:"total"`
	Fast  int64  `json:"fast"`
	Slow  int64  `json:"slow"`
	Error string `json:"error,omitempty"`
}

// SweepResult is the whole sweep.
type SweepResult struct {
	Test   string             `json:"test"`
	Header numa.RuntestHeader `json:"header"`
	Rows   []SweepRow         `json:"rows"`
}

// SweepColumns is runtest.py's second line.
const SweepColumns = "# core,total,fast,slow"

// FormatSweepRow formats a row as runtest.py prints it.
func FormatSweepRow(r SweepRow) string {
	return fmt.Sprintf("%d,%d,%d,%d", r.Cores, r.Total, r.Fast, r.Slow)
}

// WriteText writes runtest.py's output: the header triple, SweepColumns,
// one row per point.
func (r *SweepResult) WriteText(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "%s\n%s\n", r.Header, SweepColumns); err != nil {
		return err
	}
	for _, row := range r.Rows {
		if _, err := fmt.Fprintln(w, FormatSweepRow(row)); err != nil {
			return err
		}
	}
	return nil
}

// Sweep runs the test at every point. A point that fails gets a -1 row
// and the sweep goes on; a cancelled ctx ends the sweep with ctx.Err()
// and the rows so far.
func Sweep(ctx context.Context, o SweepConfig) (*SweepResult, error) {
	if len(o.Points) == 0 {
		return nil, setting.Invalid("sweep of %s: no points (pass {Points})", o.Run.Test)
	}
	if o.Duration <= 0 {
		o.Duration = 5 * time.Second
	}
	if _, ok := Lookup(o.Run.Test); !ok {
		return nil, setting.Invalid("unknown will-it-scale test %q (see {Tests})", o.Run.Test)
	}
	for _, p := range o.Points {
		if p <= 0 {
			return nil, fmt.Errorf("sweep point %d: task counts must be > 0", p)
		}
	}
	pr := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format, args...)
		}
	}
	res := &SweepResult{Test: o.Run.Test, Header: o.Header}
	start := time.Now()
	for i, p := range o.Points {
		pr("sweep %s: point %d of %d (%d tasks), elapsed %s", o.Run.Test, i+1, len(o.Points), p, time.Since(start).Round(time.Second))
		if i > 0 {
			per := time.Since(start) / time.Duration(i)
			pr(", about %s left", (per * time.Duration(len(o.Points)-i)).Round(time.Second))
		}
		pr("\n")
		ro := o.Run
		ro.Tasks, ro.Duration, ro.Progress = p, o.Duration, nil
		r, err := Run(ctx, ro)
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		row := SweepRow{Cores: p, Total: -1, Fast: -1, Slow: -1}
		if err != nil {
			row.Error = err.Error()
			pr("sweep %s: %d tasks failed: %v\n", o.Run.Test, p, err)
		} else {
			row.Total, row.Fast, row.Slow = int64(r.Average.Total), int64(r.Average.Fast), int64(r.Average.Slow)
		}
		res.Rows = append(res.Rows, row)
	}
	pr("sweep %s: done in %s\n", o.Run.Test, time.Since(start).Round(time.Second))
	return res, nil
}
