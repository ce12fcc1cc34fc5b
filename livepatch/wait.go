package livepatch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Task is a task whose /proc/<pid>/task/<tid>/patch_state is not the
// target of the running transition.
type Task struct {
	PID        int    `json:"pid"`
	TID        int    `json:"tid"`
	Comm       string `json:"comm"`
	PatchState int    `json:"patch_state"` // 0 unpatched, 1 patched
}

func (t Task) String() string {
	return fmt.Sprintf("%d/%d (%s) patch_state=%d", t.PID, t.TID, t.Comm, t.PatchState)
}

// BlockingTasks reads /proc/*/task/*/patch_state and returns the tasks
// whose state is neither target (0 unpatched, 1 patched) nor -1 (no
// transition running for them), sorted by PID and TID. Tasks that exit
// while being read are skipped.
func (l *FS) BlockingTasks(target int) ([]Task, error) {
	procs, err := os.ReadDir(string(l.proc))
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	var out []Task
	for _, pe := range procs {
		pid, err := strconv.Atoi(pe.Name())
		if err != nil {
			continue
		}
		tdir := l.proc.Path(pe.Name(), "task")
		tasks, err := os.ReadDir(tdir)
		if err != nil {
			continue // exited
		}
		for _, te := range tasks {
			tid, err := strconv.Atoi(te.Name())
			if err != nil {
				continue
			}
			s, err := readAttr(filepath.Join(tdir, te.Name(), "patch_state"))
			if err != nil {
				continue // exited, or no CONFIG_LIVEPATCH
			}
			st, err := strconv.Atoi(s)
			if err != nil || st == -1 || st == target {
				continue
			}
			comm, _ := readAttr(filepath.Join(tdir, te.Name(), "comm"))
			out = append(out, Task{PID: pid, TID: tid, Comm: comm, PatchState: st})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].PID != out[j].PID {
			return out[i].PID < out[j].PID
		}
		return out[i].TID < out[j].TID
	})
	return out, nil
}

// TransitionError is a transition that did not finish in time.
type TransitionError struct {
	Patch    string
	Target   int // 1 patching, 0 unpatching
	Waited   time.Duration
	Blocking []Task
	Err      error // context.DeadlineExceeded or the context's error
}

func (e *TransitionError) Error() string {
	dir := "unpatching"
	if e.Target == 1 {
		dir = "patching"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "livepatch %s: %s transition still running after %s", e.Patch, dir, e.Waited.Round(time.Millisecond))
	if len(e.Blocking) > 0 {
		fmt.Fprintf(&b, "; %d task(s) block it:", len(e.Blocking))
		for i, t := range e.Blocking {
			if i == 8 {
				fmt.Fprintf(&b, " and %d more", len(e.Blocking)-i)
				break
			}
			b.WriteString(" ")
			b.WriteString(t.String())
		}
	}
	b.WriteString(" (wait longer, stop the blocking tasks, or force the transition explicitly; forcing is unsafe)")
	return b.String()
}

func (e *TransitionError) Unwrap() error { return e.Err }

// WaitOptions tune Wait; the zero value means the defaults.
type WaitOptions struct {
	// Poll is the interval between reads of transition (default 50ms).
	Poll time.Duration
	// NudgeAfter is how long the transition may run before signal is
	// written, and then again at that interval (default 1s; negative:
	// never).
	NudgeAfter time.Duration
	// Force writes force when the timeout is reached instead of failing.
	// Unsafe; only on an explicit user request.
	Force bool
	// Progress, if set, is told about nudges, blocking tasks and forcing.
	Progress func(msg string)
}

// Wait waits until the transition of patch p is over: transition reads 0,
// or the patch directory is gone (a disabled patch is freed). While it
// runs longer than NudgeAfter it writes signal where the kernel has it. On
// timeout or when ctx ends it returns a *TransitionError listing the tasks
// whose patch_state is not the target, unless opts.Force, which writes
// force and waits for the kernel to finish.
func (l *FS) Wait(ctx context.Context, p string, timeout time.Duration, opts WaitOptions) error {
	if opts.Poll <= 0 {
		opts.Poll = 50 * time.Millisecond
	}
	if opts.NudgeAfter == 0 {
		opts.NudgeAfter = time.Second
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(string) {}
	}
	start := time.Now()
	var deadline <-chan time.Time
	if timeout > 0 {
		tm := time.NewTimer(timeout)
		defer tm.Stop()
		deadline = tm.C
	}
	tick := time.NewTicker(opts.Poll)
	defer tick.Stop()
	nextNudge := start.Add(opts.NudgeAfter)
	forced := false
	for {
		in, err := l.Transition(p)
		if errors.Is(err, ErrNoPatch) {
			return nil
		}
		if err != nil {
			return err
		}
		if !in {
			return nil
		}
		if opts.NudgeAfter > 0 && !forced && time.Now().After(nextNudge) {
			nextNudge = time.Now().Add(opts.NudgeAfter)
			if err := l.Signal(p); err == nil {
				progress(fmt.Sprintf("livepatch %s: transition running for %s, signalled blocking tasks", p, time.Since(start).Round(time.Millisecond)))
			} else if errors.Is(err, ErrNoPatch) {
				return nil
			}
		}
		var cause error
		select {
		case <-tick.C:
			continue
		case <-ctx.Done():
			cause = ctx.Err()
		case <-deadline:
			cause = context.DeadlineExceeded
			deadline = nil
		}
		if opts.Force && !forced && errors.Is(cause, context.DeadlineExceeded) && ctx.Err() == nil {
			forced = true
			progress(fmt.Sprintf("livepatch %s: transition did not finish in %s, forcing it as requested", p, timeout))
			if err := l.Force(p); err != nil && !errors.Is(err, ErrNoPatch) {
				return fmt.Errorf("force livepatch %s transition: %w", p, err)
			}
			continue
		}
		return l.timeoutError(p, start, cause)
	}
}

func (l *FS) timeoutError(p string, start time.Time, cause error) error {
	en, err := l.Enabled(p)
	if errors.Is(err, ErrNoPatch) {
		return nil
	}
	target := 0
	if en {
		target = 1
	}
	e := &TransitionError{Patch: p, Target: target, Waited: time.Since(start), Err: cause}
	e.Blocking, _ = l.BlockingTasks(target)
	return e
}
