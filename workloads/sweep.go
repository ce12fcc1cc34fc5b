package workloads

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/syncord/syncord/numa"
)

// SweepOptions configures a runtest.py-style sweep of one will-it-scale
// test over task counts.
type SweepOptions struct {
	// Run is the template of every point's run; Tasks and Seconds are set
	// per point.
	Run WISOptions
	// Points are the task counts, in order.
	Points []int
	// Duration is runtest.py's duration: -s of every run (default 5).
	Duration int
	// Header is the first line's triple.
	Header numa.RuntestHeader
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

// RunSweep runs the test at every point and writes runtest.py's output to
// out (nil for none) as it goes: the header triple, SweepColumns, one row
// per point. Progress (point i of n, elapsed, estimate) goes to progress
// (nil for none). A point that fails gets a -1 row and the sweep goes on;
// a cancelled ctx ends the sweep with ctx.Err().
func RunSweep(ctx context.Context, o SweepOptions, out, progress io.Writer) (*SweepResult, error) {
	if len(o.Points) == 0 {
		return nil, fmt.Errorf("sweep of %s: no points (pass --points)", o.Run.Test)
	}
	if o.Duration <= 0 {
		o.Duration = 5
	}
	if _, ok := LookupWISTest(o.Run.Test); !ok {
		return nil, fmt.Errorf("unknown will-it-scale test %q (see --list)", o.Run.Test)
	}
	for _, p := range o.Points {
		if p <= 0 {
			return nil, fmt.Errorf("sweep point %d: task counts must be > 0", p)
		}
	}
	pr := func(format string, args ...any) {
		if progress != nil {
			fmt.Fprintf(progress, format, args...)
		}
	}
	res := &SweepResult{Test: o.Run.Test, Header: o.Header}
	if out != nil {
		fmt.Fprintf(out, "%s\n%s\n", o.Header, SweepColumns)
	}
	start := time.Now()
	for i, p := range o.Points {
		pr("sweep %s: point %d of %d (%d tasks), elapsed %s", o.Run.Test, i+1, len(o.Points), p, time.Since(start).Round(time.Second))
		if i > 0 {
			per := time.Since(start) / time.Duration(i)
			pr(", about %s left", (per * time.Duration(len(o.Points)-i)).Round(time.Second))
		}
		pr("\n")
		ro := o.Run
		ro.Tasks, ro.Seconds = p, o.Duration
		r, err := RunWillItScale(ctx, ro, nil)
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
		if out != nil {
			fmt.Fprintln(out, FormatSweepRow(row))
		}
	}
	pr("sweep %s: done in %s\n", o.Run.Test, time.Since(start).Round(time.Second))
	return res, nil
}
