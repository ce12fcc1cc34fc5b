package workloads

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/syncord/syncord/numa"
)

// Processes mode of will-it-scale (the suite's <test>_processes build):
// every task is a process of its own, re-executing this binary
// (/proc/self/exe) with the task's spec in the environment. The counters
// live in a memfd mapping shared with the parent, 128 bytes apart as in
// threads mode; the parent samples them the same way.
//
// A binary that can run processes mode must call WISChildMain when
// IsWISChild is true, before anything else (cmd/syncord does it in an
// init function; test binaries in TestMain).

// wisChildEnv carries the child's spec.
const wisChildEnv = "SYNCORD_WIS_TASK"

// Child file descriptors (exec.Cmd.ExtraFiles start at 3).
const (
	childCountersFd = 3
	childStartFd    = 4
	childReadyFd    = 5
)

type wisChildSpec struct {
	Test       string   `json:"test"`
	ID         int      `json:"id"`
	Tasks      int      `json:"tasks"`
	CPU        int      `json:"cpu"`
	Fast       bool     `json:"fast"`
	NoAffinity bool     `json:"no_affinity"`
	Dir        string   `json:"dir"`
	Shm        string   `json:"shm"`
	Shared     string   `json:"shared"`
	PerTask    []string `json:"per_task"`
}

// IsWISChild reports whether this process was started as a processes-mode
// task.
func IsWISChild() bool { return os.Getenv(wisChildEnv) != "" }

// WISChildMain runs this process as one processes-mode task and returns
// its exit status: setup, report ready, wait for the start, loop until
// SIGTERM. Errors go to stderr.
func WISChildMain() int {
	if err := wisChild(); err != nil {
		fmt.Fprintf(os.Stderr, "will-it-scale task: %v\n", err)
		return 1
	}
	return 0
}

func wisChild() error {
	var spec wisChildSpec
	if err := json.Unmarshal([]byte(os.Getenv(wisChildEnv)), &spec); err != nil {
		return fmt.Errorf("bad %s: %w", wisChildEnv, err)
	}
	test, ok := LookupWISTest(spec.Test)
	if !ok {
		return fmt.Errorf("unknown test %q", spec.Test)
	}
	runtime.LockOSThread()
	if !spec.NoAffinity {
		if err := PinThread(spec.CPU); err != nil {
			return err
		}
	}
	size := uintptr(spec.Tasks * CacheLineStride)
	mem, err := unix.MmapPtr(childCountersFd, 0, nil, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("map counters: %w", err)
	}
	counters := unsafe.Slice((*Counter)(mem), spec.Tasks)

	r := &Run{allReady: make(chan struct{}), start: make(chan struct{}), abort: make(chan struct{}), failed: make(chan struct{})}
	r.tasks = []Task{{ID: spec.ID, CPU: spec.CPU, Fast: spec.Fast, Count: &counters[spec.ID], run: r}}
	// The parent stops tasks with SIGTERM; a terminal's SIGINT to the
	// whole process group is the parent's to handle (-s 0 prints the
	// average then).
	signal.Ignore(syscall.SIGINT)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() {
		<-term
		r.stop.Store(true)
		r.failOnce.Do(func() { close(r.abort) })
	}()
	go func() {
		<-r.allReady
		ready := os.NewFile(childReadyFd, "ready")
		ready.Write([]byte{1})
		ready.Close()
		var b [1]byte
		start := os.NewFile(childStartFd, "start")
		n, _ := start.Read(b[:])
		if n == 1 {
			close(r.start)
		}
		// EOF without a byte: the parent gave up; SIGTERM follows.
	}()
	env := &wisEnv{dir: spec.Dir, shm: spec.Shm, tasks: spec.Tasks, shared: spec.Shared, perTask: spec.PerTask}
	if spec.Test == "signal1" {
		// signal1's prepare only installs the SIGUSR1 handler, which
		// every process needs.
		if err := test.prepare(env); err != nil {
			return err
		}
	}
	return test.body(env, &r.tasks[0])
}

// launchProcesses starts cfg.Tasks task processes for test and returns a
// Run whose counters are the shared mapping; Stop sends SIGTERM and waits.
func launchProcesses(ctx context.Context, cfg Config, test *WISTest, env *wisEnv) (*Run, error) {
	cpus, err := Plan(cfg)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("processes mode re-executes this binary: %w", err)
	}
	n := cfg.Tasks
	memfd, err := unix.MemfdCreate("syncord-wis-counters", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	mf := os.NewFile(uintptr(memfd), "counters")
	defer mf.Close()
	size := n * CacheLineStride
	if err := unix.Ftruncate(memfd, int64(size)); err != nil {
		return nil, fmt.Errorf("size counters: %w", err)
	}
	mem, err := unix.MmapPtr(memfd, 0, nil, uintptr(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map counters: %w", err)
	}
	startR, startW, err := os.Pipe()
	if err != nil {
		unix.MunmapPtr(mem, uintptr(size))
		return nil, err
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		startR.Close()
		startW.Close()
		unix.MunmapPtr(mem, uintptr(size))
		return nil, err
	}
	defer readyR.Close()

	r := &Run{
		tasks:    make([]Task, n),
		counters: unsafe.Slice((*Counter)(mem), n),
		failed:   make(chan struct{}),
		abort:    make(chan struct{}),
		done:     make(chan struct{}),
	}
	cmds := make([]*exec.Cmd, 0, n)
	stderrs := make([]*bytes.Buffer, n)
	var stopping sync.Once
	var mu sync.Mutex
	stopped := false
	kill := func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		for _, c := range cmds {
			c.Process.Signal(syscall.SIGTERM)
		}
	}
	r.procStop = func() {
		stopping.Do(kill)
		r.wg.Wait()
		startW.Close()
		// Keep the final counts past the unmap.
		final := make([]Counter, n)
		for i := range final {
			final[i].n.Store(r.counters[i].Load())
		}
		r.counters = final
		for i := range r.tasks {
			r.tasks[i].Count = &r.counters[i]
		}
		unix.MunmapPtr(mem, uintptr(size))
	}
	for i := range n {
		t := Task{ID: i, CPU: cpus[i], Fast: numa.IsFast(cpus[i], cfg.CoresPerSocket), run: r}
		t.Count = &r.counters[i]
		r.tasks[i] = t
		spec, _ := json.Marshal(wisChildSpec{Test: test.Name, ID: i, Tasks: n, CPU: t.CPU, Fast: t.Fast, NoAffinity: cfg.NoAffinity,
			Dir: env.dir, Shm: env.shm, Shared: env.shared, PerTask: env.perTask})
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), wisChildEnv+"="+string(spec))
		cmd.ExtraFiles = []*os.File{mf, startR, readyW}
		stderrs[i] = new(bytes.Buffer)
		cmd.Stderr = stderrs[i]
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			r.fail(fmt.Errorf("start task %d: %w", i, err))
			break
		}
		cmds = append(cmds, cmd)
		r.wg.Add(1)
		go func(i int, cmd *exec.Cmd) {
			defer r.wg.Done()
			err := cmd.Wait()
			if ps := cmd.ProcessState; ps != nil {
				r.tasks[i].cpu = ps.UserTime() + ps.SystemTime()
			}
			mu.Lock()
			expected := stopped
			mu.Unlock()
			if err != nil && !(expected && isSignalExit(err)) {
				msg := strings.TrimSpace(stderrs[i].String())
				r.fail(fmt.Errorf("task %d on CPU %d: %v: %s", i, cpus[i], err, msg))
			} else if !expected {
				r.fail(fmt.Errorf("task %d on CPU %d exited early", i, cpus[i]))
			}
		}(i, cmd)
	}
	startR.Close()
	readyW.Close()
	go func() { r.wg.Wait(); close(r.done) }()

	// Every task reports ready with one byte after its setup.
	readyc := make(chan error, 1)
	go func() {
		buf := make([]byte, n)
		got := 0
		for got < n {
			k, err := readyR.Read(buf[got:])
			if err != nil {
				readyc <- fmt.Errorf("tasks ready: %d of %d", got, n)
				return
			}
			got += k
		}
		readyc <- nil
	}()
	var failure error
	select {
	case err := <-readyc:
		failure = err
	case <-r.failed:
	case <-ctx.Done():
		r.fail(ctx.Err())
	}
	if err := r.Err(); err != nil {
		failure = err
	}
	if failure != nil {
		r.Stop()
		return nil, failure
	}
	// Release everyone at once: one byte per task.
	if _, err := startW.Write(make([]byte, n)); err != nil {
		r.Stop()
		return nil, fmt.Errorf("start tasks: %w", err)
	}
	return r, nil
}

// isSignalExit reports whether err is a child killed by a signal.
func isSignalExit(err error) bool {
	ee, ok := err.(*exec.ExitError)
	if !ok {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}
