package workloads

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/internal/setting"
	"github.com/syncord/syncord/numa"
)

// CacheLineStride is the distance in bytes between two tasks' counters, as
// will-it-scale's CACHELINE_SIZE: no two counters share a cache line (nor an
// adjacent-line prefetch pair).
const CacheLineStride = 128

// Counter is one task's operation count, alone in its 128-byte slot. The
// owning task adds to it; the sampler reads it with an atomic load.
type Counter struct {
	n atomic.Uint64
	_ [CacheLineStride - 8]byte
}

// Add adds n operations.
func (c *Counter) Add(n uint64) { c.n.Add(n) }

// Load returns the current count.
func (c *Counter) Load() uint64 { return c.n.Load() }

// Word is the counter's word, for a loop that adds to it itself (a
// system call loop of rawsys). It must be the counter's only writer.
func (c *Counter) Word() *atomic.Uint64 { return &c.n }

var _ [CacheLineStride - unsafe.Sizeof(Counter{})]byte // Counter is exactly one slot

// Config says how many tasks to run and where.
type Config struct {
	// Tasks is the number of tasks (> 0).
	Tasks int
	// CoresPerSocket is the placement rule's cps (> 0).
	CoresPerSocket int
	// NoAffinity runs tasks unpinned; they keep the fast/slow role of the
	// CPU the rule would have given them.
	NoAffinity bool
	// SysRoot is where sysfs is mounted ("" means /sys); the online CPUs
	// are read from SysRoot/devices/system/cpu/online.
	SysRoot pseudofs.FS
	// CPUs places task i on CPUs[i] instead of by the placement rule
	// (xdir: task i on CPU i); nil means the rule. With CPUs set,
	// CoresPerSocket may be 0: then no task is fast.
	CPUs []int
	// Allocates says the bodies allocate as they run (Metis, LevelDB): the
	// run then leaves the collector on and its tasks preemptible, since
	// with the collector off the heap would grow until the process's
	// memory limit (the agent's RLIMIT_DATA) kills it.
	Allocates bool
}

// Task is one worker of a Run, handed to the body on its own locked,
// pinned OS thread.
type Task struct {
	// ID is the task index, 0..Tasks-1.
	ID int
	// CPU is the CPU the placement rule gives the task (it runs there
	// unless Config.NoAffinity).
	CPU int
	// Fast is the AMP role of CPU (numa.IsFast).
	Fast bool
	// Count is the task's padded counter.
	Count *Counter

	run  *Run
	cpu0 time.Duration // thread CPU time when released
	cpu  time.Duration // thread CPU time from release to return
}

// threadCPU reads the calling thread's CPU time
// (clock_gettime(CLOCK_THREAD_CPUTIME_ID)).
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// CPUTime is the CPU time the task's thread used from the start barrier
// until the body returned (valid after Run.Stop).
func (t *Task) CPUTime() time.Duration { return t.cpu }

// Ready waits at the start barrier: a body does its setup (files,
// mappings), then calls Ready, then runs its loop until Stopped. Ready
// returns false when the run was aborted before the start (another task's
// setup failed, or the context ended); the body should then clean up and
// return nil.
func (t *Task) Ready() bool {
	r := t.run
	if r.ready.Add(1) == int32(len(r.tasks)) {
		close(r.allReady)
	}
	select {
	case <-r.start:
		t.cpu0 = threadCPU()
		return true
	case <-r.abort:
		return false
	}
}

// Stopped reports whether the run has been asked to stop. Bodies check it
// once per loop iteration (one atomic load).
func (t *Task) Stopped() bool { return t.run.stop.Load() }

// StopAll asks every task of the run to stop (fxmark's bench->stop = 1 on
// a worker's error or ENOSPC).
func (t *Task) StopAll() { t.run.stop.Store(true) }

// StopFlag is the run's stop flag, for loops that want the raw load.
func (t *Task) StopFlag() *atomic.Bool { return &t.run.stop }

// Body is what each task runs: setup, t.Ready(), then a loop adding to
// t.Count until t.Stopped(). A non-nil error stops the whole run.
type Body func(t *Task) error

// Run is a set of running tasks started by Launch.
type Run struct {
	tasks    []Task
	counters []Counter
	ready    atomic.Int32
	allReady chan struct{}
	start    chan struct{}
	abort    chan struct{}
	stop     atomic.Bool
	failed   chan struct{}
	failOnce sync.Once
	errMu    sync.Mutex
	err      error
	wg       sync.WaitGroup
	stopOnce sync.Once
	done     chan struct{}
	// quiet is whether this run's tasks block the preemption signal
	// (see Launch); began whether it counted in runState.
	quiet, began bool
	// procStop stops a processes-mode run (procs.go).
	procStop func()
}

// TasksPerCPU bounds the tasks of one run (will-it-scale -t, fxmark
// --ncore, ...) to this many per CPU the process may use: oversubscribing
// a few times is a test of its own, a hundred thousand threads only
// exhaust memory (each task is a locked OS thread) and delay cancellation.
const TasksPerCPU = 8

// MaxTasks is the most tasks a run may have: TasksPerCPU per CPU this
// process may run on (sched_getaffinity(2)), and at least 64.
func MaxTasks() int { return max(TasksPerCPU*UsableCPUs(), 64) }

// Plan returns the CPU of every task (cfg.CPUs, else the placement rule,
// numa.Placement) and, unless cfg.NoAffinity, checks that each exists and
// is online (SysRoot/devices/system/cpu/online). Launch checks besides
// that each is one this process may run on (sched_getaffinity(2)).
func Plan(cfg Config) ([]int, error) {
	cpus, _, _, err := plan(cfg)
	return cpus, err
}

// launchPlan is Plan and, unless cfg.NoAffinity, the check that this
// process may run on every CPU, before any task starts.
func launchPlan(cfg Config) ([]int, error) {
	cpus, hint, remedy, err := plan(cfg)
	if err != nil || cfg.NoAffinity {
		return cpus, err
	}
	if err := checkAllowed(cpus, cfg.Tasks, hint, remedy); err != nil {
		return nil, err
	}
	return cpus, nil
}

func plan(cfg Config) (cpus []int, hint, remedy string, err error) {
	if cfg.Tasks <= 0 {
		return nil, "", "", fmt.Errorf("number of tasks must be > 0, got %d", cfg.Tasks)
	}
	if cfg.CPUs == nil && cfg.CoresPerSocket <= 0 || cfg.CoresPerSocket < 0 {
		return nil, "", "", setting.Invalid("cores per socket must be > 0, got %d (pass {CoresPerSocket})", cfg.CoresPerSocket)
	}
	if limit := MaxTasks(); cfg.Tasks > limit {
		return nil, "", "", fmt.Errorf("%d tasks exceed the limit of %d (%d per CPU this process may use, %d here); use fewer tasks", cfg.Tasks, limit, TasksPerCPU, UsableCPUs())
	}
	cpus = cfg.CPUs
	hint = fmt.Sprintf(" (placement with %d cores per socket)", cfg.CoresPerSocket)
	remedy = "use fewer tasks, a matching " + setting.Name("CoresPerSocket") + ", or " + setting.Name("NoAffinity")
	if cpus != nil {
		if len(cpus) != cfg.Tasks {
			return nil, "", "", fmt.Errorf("%d CPUs given for %d tasks", len(cpus), cfg.Tasks)
		}
		hint, remedy = "", "run fewer tasks"
	} else {
		if cpus, err = numa.Placement(cfg.Tasks, cfg.CoresPerSocket); err != nil {
			return nil, "", "", err
		}
	}
	if cfg.NoAffinity {
		return cpus, hint, remedy, nil
	}
	online, err := OnlineCPUs(cfg.SysRoot)
	if err != nil {
		return nil, "", "", err
	}
	for i, c := range cpus {
		if !online.Contains(c) {
			return nil, "", "", setting.Errorf("task %d of %d must run on CPU %d%s, which does not exist or is offline (online: %s); %s",
				i, cfg.Tasks, c, hint, online, remedy)
		}
	}
	return cpus, hint, remedy, nil
}

// isFast is the AMP role of cpu under cfg: numa.IsFast, and never fast
// without a cores per socket (explicit CPUs).
func (cfg Config) isFast(cpu int) bool {
	return cfg.CoresPerSocket > 0 && numa.IsFast(cpu, cfg.CoresPerSocket)
}

// OnlineCPUs reads sys/devices/system/cpu/online ("" means /sys).
func OnlineCPUs(sys pseudofs.FS) (numa.CPUSet, error) {
	if sys == "" {
		sys = pseudofs.DefaultSysMountPoint
	}
	set, err := numa.New(sys).OnlineCPUs()
	if err != nil {
		return nil, fmt.Errorf("read online CPUs: %w", err)
	}
	return set, nil
}

// PinThread locks the calling goroutine to its OS thread and binds that
// thread to cpu with sched_setaffinity(2). The goroutine must not unlock;
// the thread exits with the goroutine.
func PinThread(cpu int) error {
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Zero()
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return setting.Errorf("sched_setaffinity to CPU %d: %w (is the CPU in this process's cpuset? try {NoAffinity})", cpu, err)
	}
	return nil
}

// Launch starts cfg.Tasks tasks, each on a locked OS thread pinned to its
// placement CPU, runs body on each, and returns once every task passed the
// start barrier (all setups done) and the tasks were released together. If
// a setup fails or ctx ends first, the tasks are aborted, waited for, and
// the error returned. The caller must call Stop.
//
// While runs are active the process is kept quiet for the tasks (restored
// by the last Stop):
//   - GOMAXPROCS is raised to Tasks+2, so a task spinning in raw system
//     calls never starves the sampler;
//   - the garbage collector is off (debug.SetGCPercent(-1)): hot loops do
//     not allocate, and no collection means no stop-the-world that would
//     have to preempt a task;
//   - each task's thread blocks SIGURG, the runtime's preemption signal,
//     from before its body until it returns. The runtime's monitor
//     (sysmon) sends it about 100 times a second to a goroutine that has
//     run 10 ms, which a raw-syscall loop always has; the task cannot be
//     preempted there anyway (the signal lands in the system call
//     stub), so each was a signal delivery and a handler run taken from
//     the task for nothing. With the signal blocked the first one stays
//     pending, sysmon sends no more, and it is delivered when the body
//     returns. Only the first of concurrent runs does this: a later one
//     must not stop the world (a GOMAXPROCS change) while those tasks
//     cannot be preempted. Nor does a process with a memory limit
//     (GOMEMLIMIT), which can collect with the collector off.
func Launch(ctx context.Context, cfg Config, body Body) (*Run, error) {
	cpus, err := launchPlan(cfg)
	if err != nil {
		return nil, err
	}
	r := &Run{
		tasks:    make([]Task, cfg.Tasks),
		counters: make([]Counter, cfg.Tasks),
		allReady: make(chan struct{}),
		start:    make(chan struct{}),
		abort:    make(chan struct{}),
		failed:   make(chan struct{}),
		done:     make(chan struct{}),
	}
	r.quiet = beginRun(cfg.Tasks+2, cfg.Allocates)
	r.began = true
	for i := range r.tasks {
		r.tasks[i] = Task{ID: i, CPU: cpus[i], Fast: cfg.isFast(cpus[i]), Count: &r.counters[i], run: r}
	}
	for i := range r.tasks {
		if ctx.Err() != nil {
			r.fail(ctx.Err())
			break
		}
		t := &r.tasks[i]
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			runtime.LockOSThread()
			// The thread dies with the goroutine (no UnlockOSThread), so a
			// pinned mask never leaks to other goroutines.
			if !cfg.NoAffinity {
				if err := PinThread(t.CPU); err != nil {
					r.fail(fmt.Errorf("task %d: %w", t.ID, err))
					return
				}
			}
			var err error
			if r.quiet {
				err = quietBody(body, t)
			} else {
				err = body(t)
			}
			if t.cpu0 != 0 {
				t.cpu = threadCPU() - t.cpu0
			}
			if err != nil {
				r.fail(fmt.Errorf("task %d on CPU %d: %w", t.ID, t.CPU, err))
			}
		}()
	}
	go func() { r.wg.Wait(); close(r.done) }()
	select {
	case <-r.allReady:
	case <-r.failed:
	case <-ctx.Done():
	}
	// A context that ended while the tasks got ready aborts the run even
	// when select picked allReady (Launch may reach select late on a busy
	// machine, when both are ready: TestLaunchCancelledBeforeStart).
	if err := ctx.Err(); err != nil {
		r.fail(err)
	}
	r.errMu.Lock()
	err = r.err
	r.errMu.Unlock()
	if err != nil {
		r.Stop()
		return nil, err
	}
	close(r.start)
	return r, nil
}

func (r *Run) fail(err error) {
	r.errMu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.errMu.Unlock()
	r.stop.Store(true)
	r.failOnce.Do(func() { close(r.failed); close(r.abort) })
}

// Tasks returns the tasks (read-only).
func (r *Run) Tasks() []Task { return r.tasks }

// Done is closed when every task has returned.
func (r *Run) Done() <-chan struct{} { return r.done }

// Failed is closed when a task returned an error.
func (r *Run) Failed() <-chan struct{} { return r.failed }

// Err returns the first task error, if any.
func (r *Run) Err() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.err
}

// Counts returns each task's counter (atomic loads), for a Sampler.
func (r *Run) Counts(dst []uint64) []uint64 {
	dst = dst[:0]
	for i := range r.counters {
		dst = append(dst, r.counters[i].Load())
	}
	return dst
}

// Stop asks every task to stop, waits for them and returns the first task
// error. It is idempotent.
func (r *Run) Stop() error {
	r.stopOnce.Do(func() {
		r.stop.Store(true)
		if r.procStop != nil {
			r.procStop()
			return
		}
		r.wg.Wait()
		if r.began {
			endRun()
		}
	})
	return r.Err()
}

// runState is what Launch changed for the runs of this process.
var runState struct {
	mu        sync.Mutex
	active    int  // runs between Launch and Stop
	prevProc  int  // GOMAXPROCS before the first, 0 if unchanged
	gcPercent int  // GOGC before the first
	quiet     bool // the first run changed GOMAXPROCS and GOGC
}

// beginRun counts a run in and reports whether its tasks may block the
// preemption signal: only when no other run is active, its bodies do not
// allocate and no memory limit is set. Such a first run raises GOMAXPROCS
// to want and turns the collector off.
func beginRun(want int, allocates bool) bool {
	runState.mu.Lock()
	defer runState.mu.Unlock()
	runState.active++
	if runState.active > 1 || allocates {
		return false
	}
	runState.quiet = true
	runState.prevProc = 0
	if prev := runtime.GOMAXPROCS(0); want > prev {
		runtime.GOMAXPROCS(want)
		runState.prevProc = prev
	}
	runState.gcPercent = debug.SetGCPercent(-1)
	// A memory limit (GOMEMLIMIT) still starts collections with the
	// collector off; then the tasks must stay preemptible.
	return debug.SetMemoryLimit(-1) == math.MaxInt64
}

// endRun counts a run out; the last one restores GOMAXPROCS and the
// collector if a quiet run changed them.
func endRun() {
	runState.mu.Lock()
	defer runState.mu.Unlock()
	runState.active--
	if runState.active > 0 || !runState.quiet {
		return
	}
	runState.quiet = false
	if runState.prevProc > 0 {
		runtime.GOMAXPROCS(runState.prevProc)
	}
	debug.SetGCPercent(runState.gcPercent)
}

// quietBody runs body with the preemption signal blocked on the calling
// (locked) thread, and unblocks it when body returns.
func quietBody(body Body, t *Task) error {
	var set unix.Sigset_t
	sigaddset(&set, unix.SIGURG)
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil); err != nil {
		return body(t)
	}
	defer unix.PthreadSigmask(unix.SIG_UNBLOCK, &set, nil)
	return body(t)
}

// sigaddset adds sig to set (the kernel's layout: bit sig-1).
func sigaddset(set *unix.Sigset_t, sig unix.Signal) {
	n := uint(sig - 1)
	w := unsafe.Sizeof(set.Val[0]) * 8
	set.Val[n/uint(w)] |= 1 << (n % uint(w))
}

// NewTask returns task id outside any Run: its own counter and stop flag,
// Ready true at once. It lets a test drive one driver body directly.
func NewTask(id int) *Task {
	r := &Run{allReady: make(chan struct{}), start: make(chan struct{}), abort: make(chan struct{}), failed: make(chan struct{})}
	r.counters = make([]Counter, 1)
	r.tasks = []Task{{ID: id, Count: &r.counters[0], run: r}}
	close(r.start)
	return &r.tasks[0]
}
