package fxmark

import (
	"context"
	"fmt"
	"io"
	"time"
)

// SweepConfig is run-fxmark.py's sweep of one type over core counts.
type SweepConfig struct {
	// Run is the template of every point's run; NCore is set per point
	// (the point plus Run.NBg background workers), and Run.Progress is
	// not used: a point writes no status lines while it runs.
	Run Config
	// Points are the core counts, in order.
	Points []int
	// Media, FS and IOMode name the .dat header's fields ("mem",
	// "tmpfs", "bufferedio"); FS "" is detected from Run.Root.
	Media, FS, IOMode string
	// Progress receives one line per point and each point's report
	// (nil: none).
	Progress io.Writer
}

// SweepResult is a sweep: every point's report and its .dat row.
type SweepResult struct {
	Results []*Result  `json:"results"`
	Rows    []SweepRow `json:"rows"`

	media, fs, bench, iomode string
}

// WriteText writes the plotter's .dat file (see WriteDat).
func (r *SweepResult) WriteText(w io.Writer) error {
	return WriteDat(w, r.media, r.fs, r.bench, r.iomode, r.Rows)
}

// Sweep runs the type at every point, one Run each; the first point that
// fails ends the sweep with its error.
func Sweep(ctx context.Context, o SweepConfig) (*SweepResult, error) {
	if len(o.Points) == 0 {
		return nil, fmt.Errorf("fxmark sweep of %s: no points", o.Run.Type)
	}
	res := &SweepResult{media: o.Media, fs: o.FS, bench: o.Run.Type, iomode: o.IOMode}
	if res.fs == "" {
		res.fs = FsTypeName(o.Run.Root)
	}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	start := time.Now()
	for i, p := range o.Points {
		fmt.Fprintf(progress, "fxmark %s: point %d of %d (%d cores), elapsed %s\n", o.Run.Type, i+1, len(o.Points), p, time.Since(start).Round(time.Second))
		po := o.Run
		po.NCore, po.Progress = p+o.Run.NBg, nil
		r, err := Run(ctx, po)
		if err != nil {
			return nil, fmt.Errorf("fxmark %s with %d cores: %w", o.Run.Type, p, err)
		}
		r.WriteText(progress)
		res.Results = append(res.Results, r)
		res.Rows = append(res.Rows, DatRow(r))
	}
	return res, nil
}
