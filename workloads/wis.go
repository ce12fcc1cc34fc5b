package workloads

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/syncord/syncord/internal/pseudofs"
)

// WarmupSamples is will-it-scale's WARMUP_ITERATIONS.
const WarmupSamples = 5

// WISOptions configures one will-it-scale run (threads mode).
type WISOptions struct {
	// Test is the test name (see WISTests).
	Test string
	// Tasks is -t, CoresPerSocket is -n.
	Tasks          int
	CoresPerSocket int
	// Seconds is -s: measured samples after warmup; 0 runs until the
	// context ends and then prints the average of what was measured.
	Seconds int
	// Warmup is the suite's WARMUP_ITERATIONS: "measurement" follows
	// sample Warmup+1 and the samples after it are measured. 0 means the
	// suite's 5; a negative value means 0 (short test runs only).
	Warmup int
	// Interval is the sampling interval; 0 means 1 s as in the suite.
	Interval time.Duration
	// NoAffinity runs tasks unpinned.
	NoAffinity bool
	// Processes runs every task as a process of its own (the suite's
	// _processes build) by re-executing this binary; see IsWISChild.
	Processes bool
	// SysRoot is the sysfs mount ("" means /sys).
	SysRoot pseudofs.FS
	// TmpDir is where the private temp directory goes ("" means
	// os.TempDir(), normally /tmp as in the suite).
	TmpDir string
}

// WISResult is what a run measured.
type WISResult struct {
	Test           string   `json:"test"`
	Description    string   `json:"description"`
	Tasks          int      `json:"tasks"`
	CoresPerSocket int      `json:"cores_per_socket"`
	CPUs           []int    `json:"cpus"`
	Fast           []bool   `json:"fast"`
	Samples        []Sample `json:"samples"`
	// Warmup is how many of Samples precede the measured ones.
	Warmup int `json:"warmup_samples"`
	// Measured is how many samples the average is over.
	Measured int `json:"measured_samples"`
	// Average is total/fast/slow of the measured samples divided by -s
	// (by Measured with -s 0), as the suite's "average:" line.
	Average Sample `json:"average"`
	// TaskOps is each task's operation count at the end of the run and
	// TaskCPU the CPU seconds its thread used from the start barrier on:
	// TaskOps/TaskCPU is the cost of the hot loop, whatever else loads the
	// machine.
	TaskOps []uint64  `json:"task_ops"`
	TaskCPU []float64 `json:"task_cpu_seconds"`
}

// WISLines formats will-it-scale's output lines (the SynCord threads
// build): they are written as the run goes.
type WISLines struct{ W io.Writer }

func (l WISLines) done()             { l.printf("done\n") }
func (l WISLines) testcase(d string) { l.printf("testcase:%s\n", d) }
func (l WISLines) warmup()           { l.printf("warmup\n") }
func (l WISLines) measurement()      { l.printf("measurement\n") }
func (l WISLines) sample(s Sample) {
	l.printf("min:%d max:%d total:%d fast:%d slow:%d\n", s.Min, s.Max, s.Total, s.Fast, s.Slow)
}
func (l WISLines) average(a Sample) { l.printf("average:%d:%d:%d\n", a.Total, a.Fast, a.Slow) }
func (l WISLines) printf(format string, args ...any) {
	if l.W != nil {
		fmt.Fprintf(l.W, format, args...)
	}
}

// RunWillItScale runs one test and writes the suite's lines to out (nil
// for none): "done", "testcase:<description>", "warmup", one
// "min:.. max:.. total:.. fast:.. slow:.." line per second, "measurement"
// after the 6th, and after -s more samples "average:total:fast:slow".
//
// Temp files live in a private directory under TmpDir that is removed on
// every return path, ctx cancellation included. With Seconds > 0 a
// cancelled ctx returns ctx.Err() without an average; with Seconds == 0 it
// is the way to stop and the average is printed.
func RunWillItScale(ctx context.Context, o WISOptions, out io.Writer) (*WISResult, error) {
	test, ok := LookupWISTest(o.Test)
	if !ok {
		return nil, fmt.Errorf("unknown will-it-scale test %q (see --list)", o.Test)
	}
	if o.Tasks <= 0 {
		return nil, fmt.Errorf("-t must be > 0, got %d", o.Tasks)
	}
	if o.CoresPerSocket <= 0 {
		return nil, fmt.Errorf("-n (cores per socket) must be > 0, got %d", o.CoresPerSocket)
	}
	if o.Seconds < 0 {
		return nil, fmt.Errorf("-s must be >= 0, got %d", o.Seconds)
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
	cfg := Config{Tasks: o.Tasks, CoresPerSocket: o.CoresPerSocket, NoAffinity: o.NoAffinity, SysRoot: o.SysRoot}
	if _, err := Plan(cfg); err != nil {
		return nil, err
	}
	lines := WISLines{W: out}
	lines.done()

	tmp := o.TmpDir
	if tmp == "" {
		tmp = os.TempDir()
	}
	dir, err := os.MkdirTemp(tmp, "willitscale.")
	if err != nil {
		return nil, fmt.Errorf("create temp directory: %w (pass a writable --tmpdir)", err)
	}
	env := &wisEnv{dir: dir, tasks: o.Tasks}
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

	var run *Run
	if o.Processes {
		run, err = launchProcesses(ctx, cfg, test, env)
	} else {
		run, err = Launch(ctx, cfg, func(t *Task) error { return test.body(env, t) })
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Test, err)
	}
	defer run.Stop()

	res := &WISResult{Test: test.Name, Description: test.Description, Tasks: o.Tasks, CoresPerSocket: o.CoresPerSocket, Warmup: o.Warmup + 1}
	for _, t := range run.Tasks() {
		res.CPUs = append(res.CPUs, t.CPU)
		res.Fast = append(res.Fast, t.Fast)
	}
	lines.testcase(test.Description)
	lines.warmup()

	sampler := NewSampler(run, o.Interval)
	var sum Sample
	for iter := 0; ; iter++ {
		s, err := sampler.Next(ctx)
		if err != nil {
			if ctx.Err() != nil && o.Seconds == 0 {
				break
			}
			if serr := run.Stop(); serr != nil && !errors.Is(serr, context.Canceled) {
				err = serr
			}
			return nil, fmt.Errorf("%s: %w", o.Test, err)
		}
		res.Samples = append(res.Samples, s)
		lines.sample(s)
		if iter == o.Warmup {
			lines.measurement()
		}
		if iter > o.Warmup {
			sum.Total += s.Total
			sum.Fast += s.Fast
			sum.Slow += s.Slow
			res.Measured++
		}
		if o.Seconds > 0 && iter+1 > o.Seconds+o.Warmup {
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
	div := uint64(o.Seconds)
	if o.Seconds == 0 {
		div = uint64(res.Measured)
	}
	if div > 0 {
		res.Average = Sample{Total: sum.Total / div, Fast: sum.Fast / div, Slow: sum.Slow / div}
	}
	lines.average(res.Average)
	return res, nil
}
