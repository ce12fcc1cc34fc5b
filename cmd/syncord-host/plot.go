package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"time"

	"github.com/syncord/syncord/internal/cli"
	"github.com/syncord/syncord/plot"
)

func init() {
	register(&command{Name: "plot", Summary: "draw a paper-style figure from benchmark result files", Run: runPlot})
}

const plotHelp = `
Draws one series per input file, labelled by the file's base name without
extension (an experiment csv: by its cell, "kernel policy"), against the
core or thread count: the paper's throughput-vs-cores figures. Repeated
points (the same core count twice) show their median with min/max error
bars. Core ticks are powers of two on a log2 axis when every point is one.

Inputs are recognised by content, whatever their names:
  runtest sweep   (num_cores, num_nodes, cores_per_socket) = (...), # core,total,fast,slow, rows
                  (syncord bench sweep; runtest.py)
  FxMark          "# ncpu secs works works/sec" report rows, or the .dat file
                  "# core, total, fast, slow" (syncord bench fxmark --sweep); in M works/s
  LevelDB         "#num_threads, fast, slow, tot ops/s" summary rows (after db_bench's report)
  xdir            [b]/[v] task lines, fairness=, Ops/sec: blocks (x = tasks;
                  fast = bullies, slow = victims), or plot.py's #bully_throughput summary
  Metis           "Runtime in milliseconds [N cores]" and the Real: runtime, or
                  parser.py's "CORE, RUNTIME"
  experiment csv  kernel,policy,benchmark,unit,point,rep,total,fast,slow,fairness
A file that is none of these, or a line that does not fit, is refused
with the file's name and line number.

--metric picks total (default), fast, slow (fast- and slow-core halves
of AMP runs; bullies and victims for xdir) or fairness (xdir). The figure
type follows -o's extension: .svg, .png or .pdf.

  syncord-host plot -o lock1.svg --title "lock1" none.csv lockstat.csv`

func runPlot(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "plot", "plot -o OUT.svg|OUT.png [--title T] [--metric total|fast|slow|fairness] [--json] FILE...", plotHelp)
	out := fs.String("o", "", "figure to write: `file`.svg, .png or .pdf (required)")
	title := fs.String("title", "", "figure `title`")
	metric := fs.String("metric", "total", "`metric` to draw: total, fast, slow or fairness")
	asJSON := fs.Bool("json", false, "print the drawn series and axes as JSON")
	files, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("plot: -o is required (the figure to write, .svg, .png or .pdf): %w", errUsage)
	}
	if len(files) == 0 {
		return fmt.Errorf("plot: no result files (give at least one): %w", errUsage)
	}
	m, err := plot.ParseMetric(*metric)
	if err != nil {
		return fmt.Errorf("plot: --metric: %v: %w", err, errUsage)
	}
	if _, err := plot.FormatOf(*out); err != nil {
		return fmt.Errorf("%v: %w", err, errUsage)
	}
	start := time.Now()
	var series []*plot.Series
	for _, f := range files {
		s, err := plot.ParseFile(f)
		if err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		series = append(series, s...)
	}
	fig, err := plot.WriteFile(*out, series, plot.Options{Title: *title, Metric: m})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(struct {
			Output string `json:"output"`
			*plot.Figure
		}{*out, fig})
	}
	fmt.Fprintf(env.Stdout, "%s: %d series, %s against %s, in %s\n", *out, len(fig.Lines), fig.YLabel, fig.XLabel, time.Since(start).Round(time.Millisecond))
	return nil
}

// parseArgs parses flags that may follow the positional arguments
// ("plot a.csv b.csv -o f.svg") and returns the positional ones; "--" ends
// the flags (cli.ParseArgs).
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) { return cli.ParseArgs(fs, args) }
