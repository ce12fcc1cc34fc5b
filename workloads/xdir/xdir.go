package xdir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/workloads"
	"golang.org/x/sys/unix"
)

// SysRenameHold is the SynCord kernels' rename variant rename2(old, new,
// &hold) (fs/namei.c of stock-syncord and shfllock-syncord): hold is the
// number of TSC cycles (rdtsc) between lock_rename and unlock_rename, the
// time the caller held the rename lock (s_vfs_rename_mutex and the two
// directories, for xdir's cross-directory renames). It is not ns.
// cna-syncord has no syscall 436 (ENOSYS). On stock x86-64 kernels since
// 5.9 436 is close_range(2), so it must only be called when the kernel is
// known to be a SynCord kernel (see package kernel).
const SysRenameHold = 436

// Hold says where the lock_hold figures come from.
type Hold string

const (
	// HoldSyscall: the SynCord rename syscall 436 reported the hold time
	// of the rename lock, in TSC cycles (UnitCycles).
	HoldSyscall Hold = "syscall436"
	// HoldDuration: the duration of the rename(2) call in ns, measured
	// in userspace around the call (any kernel). It includes the wait for
	// the lock and the system call's own cost, so it is an upper bound of
	// the hold time.
	HoldDuration Hold = "rename_duration"
)

// Units of lock_hold.
const (
	UnitCycles = "tsc_cycles"
	UnitNs     = "ns"
)

// Config is one xdir run; the zero values of the optional fields mean
// the artifact's behaviour.
type Config struct {
	Src, DstDirty, Dst string
	Duration           time.Duration // whole seconds in the artifact
	Bullies, Victims   int
	// SynCord selects the rename syscall 436 for lock_hold. Set it only
	// when kernel.Probe found a SynCord kernel.
	SynCord bool
	// CPUs maps task i to a CPU; nil means CPU i (the artifact).
	CPUs []int
	// Seed seeds the name generators (0: from the clock).
	Seed uint64
	// SysRoot is the sysfs mount whose online CPUs every task's CPU must
	// be among ("" means /sys).
	SysRoot pseudofs.FS
	// Progress receives one status line a second while the tasks run
	// (nil: none), as ProgressLine formats it: the renames so far of the
	// bullies and of the victims. Nothing is written after Run returned;
	// the artifact prints nothing while it runs, so these lines are not
	// part of its output (WriteText is).
	Progress io.Writer
}

// ProgressLine formats one of Config.Progress's status lines:
// "xdir: E/D s: bullies B renames (RB/s), victims V renames (RV/s)" with E
// the whole seconds since the tasks were released, D the duration in
// seconds, B and V the renames so far (the runs= of the tasks) and RB, RV
// their rates over the elapsed time.
func ProgressLine(elapsed, duration time.Duration, bullies, victims uint64) string {
	return fmt.Sprintf("xdir: %s: bullies %d renames (%.0f/s), victims %d renames (%.0f/s)\n", workloads.ProgressTime(elapsed, duration),
		bullies, workloads.PerSecond(bullies, elapsed), victims, workloads.PerSecond(victims, elapsed))
}

// Task is one task's result.
type Task struct {
	ID   int    `json:"id"`
	Role string `json:"role"` // "bully" or "victim"
	CPU  int    `json:"cpu"`
	// LockHold is the sum of the hold times as measured, in the result's
	// HoldUnit: what the artifact prints as lock_hold=.
	LockHold uint64 `json:"lock_hold"`
	// LockHoldNs is LockHold in ns (cycles converted with the TSC
	// frequency); null when that is unknown.
	LockHoldNs *float64 `json:"lock_hold_ns"`
	Runs       int64    `json:"runs"`
}

// Result is what a run measured.
type Result struct {
	Tasks []Task `json:"tasks"`
	Hold  Hold   `json:"lock_hold_source"`
	// HoldUnit is the unit of lock_hold: "tsc_cycles" from syscall 436,
	// "ns" from the measured rename duration.
	HoldUnit string `json:"lock_hold_unit"`
	// TSCHz converts cycles to ns, and TSCSource says where it came from
	// (TSCFrequency); both empty for a run in ns or when it is unknown.
	TSCHz     float64 `json:"tsc_hz,omitempty"`
	TSCSource string  `json:"tsc_hz_source,omitempty"`
	// Note explains a fallback or a missing conversion.
	Note           string  `json:"note,omitempty"`
	Seconds        int     `json:"seconds"`         // the nominal duration the rates divide by
	Elapsed        float64 `json:"elapsed_seconds"` // measured, start barrier to last join
	Fairness       float64 `json:"fairness"`
	OpsPerSec      float64 `json:"ops_per_sec"`
	BullyOpsPerSec float64 `json:"bully_ops_per_sec"`
	VictimOps      float64 `json:"victim_ops_per_sec"`
	// BullyMeanHold and VictimMeanHold are the groups' mean lock_hold per
	// task in HoldUnit (Jain's fairness over them does not depend on the
	// unit); the _ns ones are the same in ns, NaN (JSON null) when the
	// TSC frequency is unknown.
	BullyMeanHold    float64 `json:"bully_mean_lock_hold"`
	VictimMeanHold   float64 `json:"victim_mean_lock_hold"`
	BullyMeanHoldNs  float64 `json:"bully_mean_lock_hold_ns"`
	VictimMeanHoldNs float64 `json:"victim_mean_lock_hold_ns"`
	// CPUSeconds is the tasks' own CPU time (user+system,
	// getrusage(RUSAGE_THREAD) at the end of each loop): OpsPerCPUSecond
	// compares drivers on a loaded machine, where ops/s depends on the CPU
	// share the scheduler gives.
	CPUSeconds      float64 `json:"cpu_seconds"`
	OpsPerCPUSecond float64 `json:"ops_per_cpu_second"`
}

// MarshalJSON writes the result with NaN or infinite figures (a group
// without tasks) as null, which JSON can carry.
func (r *Result) MarshalJSON() ([]byte, error) {
	type plain Result
	finite := func(f float64) *float64 {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil
		}
		return &f
	}
	return json.Marshal(struct {
		*plain
		Fairness         *float64 `json:"fairness"`
		BullyMeanHold    *float64 `json:"bully_mean_lock_hold"`
		VictimMeanHold   *float64 `json:"victim_mean_lock_hold"`
		BullyMeanHoldNs  *float64 `json:"bully_mean_lock_hold_ns"`
		VictimMeanHoldNs *float64 `json:"victim_mean_lock_hold_ns"`
		OpsPerSec        *float64 `json:"ops_per_sec"`
		BullyOpsPerSec   *float64 `json:"bully_ops_per_sec"`
		VictimOps        *float64 `json:"victim_ops_per_sec"`
	}{(*plain)(r), finite(r.Fairness), finite(r.BullyMeanHold), finite(r.VictimMeanHold),
		finite(r.BullyMeanHoldNs), finite(r.VictimMeanHoldNs),
		finite(r.OpsPerSec), finite(r.BullyOpsPerSec), finite(r.VictimOps)})
}

// JainFairness is Jain's index over the two group means b and v:
// (b+v)^2 / (2(b^2+v^2)), in (0, 1] for non-negative means not both zero.
// Both zero gives NaN, as the artifact's C does.
func JainFairness(b, v float64) float64 {
	return (b + v) * (b + v) / ((b*b + v*v) * 2)
}

// xdirTask is a task's hot state, padded so two tasks never share a cache
// line (128 bytes covers adjacent-line prefetch).
type xdirTask struct {
	runs     int64
	lockHold uint64
	cpu      time.Duration
	_        [128 - 8 - 8 - 8]byte
}

// xdirNanotime is the runtime's monotonic clock (one vDSO
// clock_gettime(CLOCK_MONOTONIC), where time.Now reads two clocks).
//
//go:linkname xdirNanotime runtime.nanotime
func xdirNanotime() int64

// xdirAtFDCWD is AT_FDCWD in a variable: a negative constant cannot be
// converted to uintptr.
var xdirAtFDCWD = unix.AT_FDCWD

const xdirCharset = "1234567890abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// Run runs the workload for cfg.Duration and returns per-task results.
// Every task runs on the engine (workloads.Launch): locked to its own OS
// thread and pinned to its CPU before a common start; the loop makes raw
// system calls on preformatted NUL-terminated paths and touches only its
// own padded counter. A task's error stops the others.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	n := cfg.Bullies + cfg.Victims
	switch {
	case cfg.Bullies < 0 || cfg.Victims < 0:
		return nil, fmt.Errorf("xdir: bullies and victims must be >= 0, got %d and %d", cfg.Bullies, cfg.Victims)
	case n == 0:
		return nil, errors.New("xdir: no tasks (give at least one bully or victim)")
	case cfg.Duration < time.Second:
		return nil, fmt.Errorf("xdir: duration %v is shorter than one second", cfg.Duration)
	case cfg.CPUs != nil && len(cfg.CPUs) != n:
		return nil, fmt.Errorf("xdir: %d CPUs given for %d tasks", len(cfg.CPUs), n)
	}
	for _, d := range []string{cfg.Src, cfg.DstDirty, cfg.Dst} {
		var st unix.Stat_t
		if err := unix.Stat(d, &st); err != nil {
			return nil, fmt.Errorf("xdir: stat %s: %w (run 'syncord bench xdir prepare' first)", d, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return nil, fmt.Errorf("xdir: %s is not a directory", d)
		}
	}
	cpus := cfg.CPUs
	if cpus == nil {
		cpus = make([]int, n)
		for i := range cpus {
			cpus[i] = i
		}
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	hold, note := HoldDuration, ""
	if cfg.SynCord {
		if rename2Available() {
			hold = HoldSyscall
		} else {
			note = "this SynCord kernel has no syscall 436 (cna-syncord dropped it): lock_hold is the duration of each rename(2) in ns, measured in userspace around the call, so it includes the wait for the lock and the system call's own cost"
		}
	}
	useSyscall := hold == HoldSyscall

	// Each task is locked to its own OS thread and pinned to its CPU; the
	// engine gives the raw-syscall loops a P each.
	tasks := make([]xdirTask, n)
	run, err := workloads.Launch(ctx, workloads.Config{Tasks: n, CPUs: cpus, SysRoot: cfg.SysRoot}, func(wt *workloads.Task) error {
		i := wt.ID
		dst := cfg.Dst
		if i%2 == 0 {
			dst = cfg.DstDirty
		}
		if !wt.Ready() {
			return nil
		}
		return xdirLoop(&tasks[i], cfg.Src, dst, useSyscall, seed+uint64(i)*0x9E3779B97F4A7C15, wt.StopFlag(), wt.Count)
	})
	if err != nil {
		return nil, fmt.Errorf("xdir: %w", err)
	}
	begin := time.Now()
	timer := time.NewTimer(cfg.Duration)
	defer timer.Stop()
	stopProgress := func() {}
	if cfg.Progress != nil {
		stopProgress = workloads.Report(ctx, run, time.Second, func(elapsed time.Duration, counts []uint64) {
			var b, v uint64
			for i, c := range counts {
				if i%2 == 0 {
					b += c
				} else {
					v += c
				}
			}
			io.WriteString(cfg.Progress, ProgressLine(elapsed, cfg.Duration, b, v))
		})
	}
	var ctxErr error
	select {
	case <-timer.C:
	case <-run.Failed():
	case <-ctx.Done():
		ctxErr = ctx.Err()
	}
	stopProgress()
	runErr := run.Stop()
	elapsed := time.Since(begin)
	if ctxErr != nil {
		return nil, fmt.Errorf("xdir: interrupted: %w", ctxErr)
	}
	if runErr != nil {
		return nil, fmt.Errorf("xdir: %w", runErr)
	}

	secs := int(cfg.Duration / time.Second)
	res := &Result{Hold: hold, HoldUnit: UnitNs, Note: note, Seconds: secs, Elapsed: elapsed.Seconds()}
	toNs := 1.0
	if useSyscall {
		res.HoldUnit = UnitCycles
		if f, err := TSCFrequency(); err == nil {
			res.TSCHz, res.TSCSource = f.Hz, f.Source
			toNs = 1e9 / f.Hz
		} else {
			toNs = math.NaN()
			res.Note = fmt.Sprintf("lock_hold is in TSC cycles and cannot be converted to ns: %v", err)
		}
	}
	var bHold, vHold float64
	var bRuns, vRuns int64
	var cpu time.Duration
	for i := range tasks {
		cpu += tasks[i].cpu
		role := "victim"
		if i%2 == 0 {
			role = "bully"
			bHold += float64(tasks[i].lockHold)
			bRuns += tasks[i].runs
		} else {
			vHold += float64(tasks[i].lockHold)
			vRuns += tasks[i].runs
		}
		tk := Task{ID: i, Role: role, CPU: cpus[i], LockHold: tasks[i].lockHold, Runs: tasks[i].runs}
		if ns := float64(tasks[i].lockHold) * toNs; !math.IsNaN(ns) {
			tk.LockHoldNs = &ns
		}
		res.Tasks = append(res.Tasks, tk)
	}
	res.BullyMeanHold = bHold / float64(cfg.Bullies)
	res.VictimMeanHold = vHold / float64(cfg.Victims)
	res.BullyMeanHoldNs = res.BullyMeanHold * toNs
	res.VictimMeanHoldNs = res.VictimMeanHold * toNs
	res.Fairness = JainFairness(res.BullyMeanHold, res.VictimMeanHold)
	res.OpsPerSec = float64(bRuns+vRuns) / float64(secs)
	res.BullyOpsPerSec = float64(bRuns) / float64(secs)
	res.VictimOps = float64(vRuns) / float64(secs)
	res.CPUSeconds = cpu.Seconds()
	if cpu > 0 {
		res.OpsPerCPUSecond = float64(bRuns+vRuns) / cpu.Seconds()
	}
	return res, nil
}

// rename2Available tells whether syscall 436 is the SynCord rename2 on a
// kernel already known to be a SynCord kernel (5.4, where 436 is either
// rename2 or not implemented; never call it elsewhere, see SysRenameHold):
// rename2(NULL, NULL, NULL) fails with EFAULT reading the name, a kernel
// without it answers ENOSYS.
func rename2Available() bool {
	_, _, e := syscall.RawSyscall(SysRenameHold, 0, 0, 0)
	return e != unix.ENOSYS
}

// xdirLoop is one task's create / rename / unlink loop until stop. Each
// run also adds 1 to count, the task's own padded engine counter (one
// uncontended atomic add beside four system calls), which Config.Progress
// reads while the loop goes; the result's runs come from the loop's own
// count, as before.
func xdirLoop(t *xdirTask, srcDir, dstDir string, syncord bool, seed uint64, stop *atomic.Bool, count *workloads.Counter) error {
	// src and dst hold "<dir>/<36 chars>\x00"; only the 36 chars change.
	src := make([]byte, len(srcDir)+1+36+1)
	dst := make([]byte, len(dstDir)+1+36+1)
	copy(src, srcDir)
	src[len(srcDir)] = '/'
	copy(dst, dstDir)
	dst[len(dstDir)] = '/'
	sname := src[len(srcDir)+1 : len(srcDir)+1+36]
	dname := dst[len(dstDir)+1 : len(dstDir)+1+36]
	psrc := unsafe.Pointer(&src[0])
	pdst := unsafe.Pointer(&dst[0])
	cwd := uintptr(xdirAtFDCWD)
	x := seed | 1
	var runs int64
	var hold uint64
	var h uint64
	for !stop.Load() {
		for k := range sname {
			// xorshift64*: per-task, no shared state (the artifact's rand()
			// takes a process-wide lock).
			x ^= x >> 12
			x ^= x << 25
			x ^= x >> 27
			c := xdirCharset[((x*0x2545F4914F6CDD1D)>>32)%uint64(len(xdirCharset))]
			sname[k] = c
			dname[k] = c
		}
		fd, _, e := syscall.RawSyscall6(unix.SYS_OPENAT, cwd, uintptr(psrc),
			uintptr(unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_CLOEXEC), 0o644, 0, 0)
		if e != 0 {
			return xdirErr("open", src, nil, e)
		}
		syscall.RawSyscall(unix.SYS_CLOSE, fd, 0, 0)
		if syncord {
			h = 0
			if _, _, e = syscall.RawSyscall(SysRenameHold, uintptr(psrc), uintptr(pdst), uintptr(unsafe.Pointer(&h))); e != 0 {
				return xdirErr("rename (syscall 436)", src, dst, e)
			}
			hold += h
		} else {
			t0 := xdirNanotime()
			_, _, e = syscall.RawSyscall6(unix.SYS_RENAMEAT, cwd, uintptr(psrc), cwd, uintptr(pdst), 0, 0)
			hold += uint64(xdirNanotime() - t0)
			if e != 0 {
				return xdirErr("rename", src, dst, e)
			}
		}
		if _, _, e = syscall.RawSyscall(unix.SYS_UNLINKAT, cwd, uintptr(pdst), 0); e != 0 {
			return xdirErr("unlink", dst, nil, e)
		}
		runs++
		count.Add(1)
	}
	t.runs = runs
	t.lockHold = hold
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) == nil {
		t.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return nil
}

func xdirErr(op string, a, b []byte, e syscall.Errno) error {
	s := string(a[:len(a)-1])
	if b != nil {
		s += " -> " + string(b[:len(b)-1])
	}
	hint := ""
	switch e {
	case unix.ENOSPC:
		hint = " (filesystem or inode table full)"
	case unix.ENOENT:
		hint = " (was a directory removed during the run?)"
	case unix.EXDEV:
		hint = " (SRC, DST_DIRTY and DST must be on one filesystem)"
	}
	return fmt.Errorf("xdir %s %s: %w%s", op, s, e, hint)
}

// WriteText prints the artifact's output (exact):
//
//	[b] task %d: lock_hold=%lu, runs=%d     (even tasks)
//	[v] task %d: lock_hold=%lu, runs=%d     (odd tasks)
//	fairness=%f
//	Ops/sec: %f
//	Bully  Ops/sec: %f
//	Victim Ops/sec: %f
func (r *Result) WriteText(w io.Writer) error {
	var err error
	p := func(format string, a ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, a...)
		}
	}
	for i := 0; i < len(r.Tasks); i += 2 {
		p("[b] task %d: lock_hold=%d, runs=%d\n", r.Tasks[i].ID, r.Tasks[i].LockHold, int32(r.Tasks[i].Runs))
	}
	for i := 1; i < len(r.Tasks); i += 2 {
		p("[v] task %d: lock_hold=%d, runs=%d\n", r.Tasks[i].ID, r.Tasks[i].LockHold, int32(r.Tasks[i].Runs))
	}
	p("fairness=%s\n", cFloat(r.Fairness))
	p("Ops/sec: %s\n", cFloat(r.OpsPerSec))
	p("Bully  Ops/sec: %s\n", cFloat(r.BullyOpsPerSec))
	p("Victim Ops/sec: %s\n", cFloat(r.VictimOps))
	return err
}

// cFloat formats like glibc printf("%f"): NaN prints as "-nan" (what 0.0/0.0
// gives on x86-64) and infinities as "inf"/"-inf".
func cFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "-nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return fmt.Sprintf("%f", f)
}
