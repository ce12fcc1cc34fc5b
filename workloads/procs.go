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
)

// Processes mode (will-it-scale's <test>_processes build): every task is a
// process of its own, re-executing this binary (/proc/self/exe) with the
// task's spec in the environment. The counters live in a memfd mapping
// shared with the parent, 128 bytes apart as in threads mode; the parent
// samples them the same way.
//
// A binary that launches processes must call ChildMain when IsChild is
// true, before anything else (cmd/syncord does it in an init function;
// test binaries in TestMain), with the body that runs one task.

// childEnv carries the child's spec.
const childEnv = "SYNCORD_WIS_TASK"

// Child file descriptors (exec.Cmd.ExtraFiles start at 3).
const (
	childCountersFd = 3
	childStartFd    = 4
	childReadyFd    = 5
)

// childSpec is one task process's place in the run; Payload is the
// driver's own (LaunchProcesses' payload, handed to the ChildMain body).
type childSpec struct {
	ID         int             `json:"id"`
	Tasks      int             `json:"tasks"`
	CPU        int             `json:"cpu"`
	Fast       bool            `json:"fast"`
	NoAffinity bool            `json:"no_affinity"`
	Payload    json.RawMessage `json:"payload"`
}

// IsChild reports whether this process was started by LaunchProcesses as
// one task.
func IsChild() bool { return os.Getenv(childEnv) != "" }

// ChildBody runs one task process: payload is what the parent passed to
// LaunchProcesses; the task's Ready and StopFlag work as in threads mode.
type ChildBody func(payload []byte, t *Task) error

// ChildMain runs this process as one task started by LaunchProcesses and
// returns its exit status: pin, map the counters, run body (which does
// its setup, calls t.Ready, loops until stopped), stop on SIGTERM. Errors
// go to stderr, prefixed with what.
func ChildMain(what string, body ChildBody) int {
	if err := child(body); err != nil {
		fmt.Fprintf(os.Stderr, "%s task: %v\n", what, err)
		return 1
	}
	return 0
}

func child(body ChildBody) error {
	var spec childSpec
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &spec); err != nil {
		return fmt.Errorf("bad %s: %w", childEnv, err)
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
	return body(spec.Payload, &r.tasks[0])
}

// LaunchProcesses starts cfg.Tasks task processes, each this binary
// re-executed (see IsChild and ChildMain) with payload (JSON-encoded) for
// its ChildMain body, and returns once all did their setup and were
// released together. The Run's counters are the shared mapping; Stop sends
// SIGTERM and waits.
func LaunchProcesses(ctx context.Context, cfg Config, payload any) (*Run, error) {
	cpus, err := launchPlan(cfg)
	if err != nil {
		return nil, err
	}
	pl, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("processes mode: encode the task payload: %w", err)
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
		t := Task{ID: i, CPU: cpus[i], Fast: cfg.isFast(cpus[i]), run: r}
		t.Count = &r.counters[i]
		r.tasks[i] = t
		spec, _ := json.Marshal(childSpec{ID: i, Tasks: n, CPU: t.CPU, Fast: t.Fast, NoAffinity: cfg.NoAffinity, Payload: pl})
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
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
	}
	if err := ctx.Err(); err != nil { // as in Launch
		r.fail(err)
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
