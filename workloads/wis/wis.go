package wis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/internal/setting"
	"github.com/syncord/syncord/workloads"
)

// WarmupSamples is will-it-scale's WARMUP_ITERATIONS.
const WarmupSamples = 5

// Config configures one will-it-scale run.
type Config struct {
	// Test is the test name (see Tests).
	Test string
	// Tasks is -t, CoresPerSocket is -n.
	Tasks          int
	CoresPerSocket int
	// Duration is -s: how long to measure after warmup, a whole number of
	// Intervals (one sample each); 0 runs until the context ends and then
	// prints the average of what was measured.
	Duration time.Duration
	// Warmup is the suite's WARMUP_ITERATIONS: "measurement" follows
	// sample Warmup+1 and the samples after it are measured. 0 means the
	// suite's 5; a negative value means 0 (short test runs only).
	Warmup int
	// Interval is the sampling interval; 0 means 1 s as in the suite.
	Interval time.Duration
	// NoAffinity runs tasks unpinned.
	NoAffinity bool
	// Processes runs every task as a process of its own (the suite's
	// _processes build) by re-executing this binary; see IsChild.
	Processes bool
	// SysRoot is the sysfs mount ("" means /sys).
	SysRoot pseudofs.FS
	// TmpDir is where the private temp directory goes ("" means
	// os.TempDir(), normally /tmp as in the suite).
	TmpDir string
	// Progress receives the suite's lines as the run goes (nil: none):
	// "done", "testcase:<description>", "warmup", one sample line per
	// interval and "measurement"; WriteText writes the "average:" line
	// that ends them.
	Progress io.Writer
}

// Result is what a run measured.
type Result struct {
	Test           string             `json:"test"`
	Description    string             `json:"description"`
	Tasks          int                `json:"tasks"`
	CoresPerSocket int                `json:"cores_per_socket"`
	CPUs           []int              `json:"cpus"`
	Fast           []bool             `json:"fast"`
	Samples        []workloads.Sample `json:"samples"`
	// Warmup is how many of Samples precede the measured ones.
	Warmup int `json:"warmup_samples"`
	// Measured is how many samples the average is over.
	Measured int `json:"measured_samples"`
	// Average is total/fast/slow of the measured samples divided by -s
	// (by Measured with -s 0) in samples, as the suite's "average:" line.
	Average workloads.Sample `json:"average"`
	// TaskOps is each task's operation count at the end of the run and
	// TaskCPU the CPU seconds its thread used from the start barrier on:
	// TaskOps/TaskCPU is the cost of the hot loop, whatever else loads the
	// machine.
	TaskOps []uint64  `json:"task_ops"`
	TaskCPU []float64 `json:"task_cpu_seconds"`
}

// lines formats will-it-scale's output lines (the SynCord threads
// build): they are written as the run goes.
type lines struct{ w io.Writer }

func (l lines) done()             { l.printf("done\n") }
func (l lines) testcase(d string) { l.printf("testcase:%s\n", d) }
func (l lines) warmup()           { l.printf("warmup\n") }
func (l lines) measurement()      { l.printf("measurement\n") }
func (l lines) sample(s workloads.Sample) {
	l.printf("min:%d max:%d total:%d fast:%d slow:%d\n", s.Min, s.Max, s.Total, s.Fast, s.Slow)
}
func (l lines) printf(format string, args ...any) {
	if l.w != nil {
		fmt.Fprintf(l.w, format, args...)
	}
}

// WriteText writes the line that ends the suite's output,
// "average:total:fast:slow" (the lines before it went to Config.Progress
// as the run went).
func (r *Result) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "average:%d:%d:%d\n", r.Average.Total, r.Average.Fast, r.Average.Slow)
	return err
}

// Run runs one test and writes the suite's lines to cfg.Progress as it
// goes: "done", "testcase:<description>", "warmup", one
// "min:.. max:.. total:.. fast:.. slow:.." line per second, "measurement"
// after the 6th; after -s more samples the result's WriteText writes
// "average:total:fast:slow".
//
// Temp files live in a private directory under TmpDir that is removed on
// every return path, ctx cancellation included. With Duration > 0 a
// cancelled ctx returns ctx.Err() without an average; with Duration == 0
// it is the way to stop and the average is computed.
func Run(ctx context.Context, o Config) (*Result, error) {
	test, ok := Lookup(o.Test)
	if !ok {
		return nil, setting.Invalid("unknown will-it-scale test %q (see {Tests})", o.Test)
	}
	if o.Tasks <= 0 {
		return nil, setting.Invalid("{Tasks} must be > 0, got %d", o.Tasks)
	}
	if o.CoresPerSocket <= 0 {
		return nil, setting.Invalid("{CoresPerSocket} (cores per socket) must be > 0, got %d", o.CoresPerSocket)
	}
	if o.Duration < 0 {
		return nil, setting.Invalid("{Duration} must be >= 0, got %d", o.Duration/time.Second)
	}
	switch {
	case o.Warmup == 0:
		o.Warmup = WarmupSamples
	case o.Warmup < 0:
		o.Warmup = 0
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Duration%o.Interval != 0 {
		return nil, fmt.Errorf("will-it-scale: duration %v is not a whole number of %v samples", o.Duration, o.Interval)
	}
	seconds := int(o.Duration / o.Interval) // -s: measured samples
	cfg := workloads.Config{Tasks: o.Tasks, CoresPerSocket: o.CoresPerSocket, NoAffinity: o.NoAffinity, SysRoot: o.SysRoot}
	if _, err := workloads.Plan(cfg); err != nil {
		return nil, err
	}
	out := lines{w: o.Progress}
	out.done()

	tmp := o.TmpDir
	if tmp == "" {
		tmp = os.TempDir()
	}
	dir, err := os.MkdirTemp(tmp, "willitscale.")
	if err != nil {
		return nil, setting.Errorf("create temp directory: %w (pass a writable {TmpDir})", err)
	}
	env := &env{dir: dir, tasks: o.Tasks}
	var cleanupOnce sync.Once
	cleanup := func() {
		cleanupOnce.Do(func() {
			if test.cleanup != nil {
				test.cleanup(env)
			}
			os.RemoveAll(dir)
			if env.shm != "" {
				os.RemoveAll(env.shm)
			}
		})
	}
	defer cleanup()
	if test.prepare != nil {
		if err := test.prepare(env); err != nil {
			return nil, fmt.Errorf("%s: prepare: %w", o.Test, err)
		}
	}

	var run *workloads.Run
	if o.Processes {
		run, err = workloads.LaunchProcesses(ctx, cfg, env.payload(test))
	} else {
		run, err = workloads.Launch(ctx, cfg, func(t *workloads.Task) error { return test.body(env, t) })
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Test, err)
	}
	defer run.Stop()

	res := &Result{Test: test.Name, Description: test.Description, Tasks: o.Tasks, CoresPerSocket: o.CoresPerSocket, Warmup: o.Warmup + 1}
	for _, t := range run.Tasks() {
		res.CPUs = append(res.CPUs, t.CPU)
		res.Fast = append(res.Fast, t.Fast)
	}
	out.testcase(test.Description)
	out.warmup()

	sampler := workloads.NewSampler(run, o.Interval)
	var sum workloads.Sample
	for iter := 0; ; iter++ {
		s, err := sampler.Next(ctx)
		if err != nil {
			if ctx.Err() != nil && seconds == 0 {
				break
			}
			if serr := run.Stop(); serr != nil && !errors.Is(serr, context.Canceled) {
				err = serr
			}
			return nil, fmt.Errorf("%s: %w", o.Test, err)
		}
		res.Samples = append(res.Samples, s)
		out.sample(s)
		if iter == o.Warmup {
			out.measurement()
		}
		if iter > o.Warmup {
			sum.Total += s.Total
			sum.Fast += s.Fast
			sum.Slow += s.Slow
			res.Measured++
		}
		if seconds > 0 && iter+1 > seconds+o.Warmup {
			break
		}
	}
	if err := run.Stop(); err != nil && !errors.Is(err, context.Canceled) {
		return nil, fmt.Errorf("%s: %w", o.Test, err)
	}
	res.TaskOps = run.Counts(nil)
	for _, t := range run.Tasks() {
		res.TaskCPU = append(res.TaskCPU, t.CPUTime().Seconds())
	}
	div := uint64(seconds)
	if seconds == 0 {
		div = uint64(res.Measured)
	}
	if div > 0 {
		res.Average = workloads.Sample{Total: sum.Total / div, Fast: sum.Fast / div, Slow: sum.Slow / div}
	}
	return res, nil
}
