package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Running each request in a process of its own, as qemu-ga's guest-exec
// does: the agent re-executes its own binary (/proc/self/exe) with
// ChildEnv set and the request's argv, streams the child's stdout and the
// command's stderr back, and returns its exit status. Whatever a command
// does (a panic in a worker goroutine, running out of memory or threads),
// the agent stays up and the client gets one clear line and a status.
//
// The child's file descriptors: 0 /dev/null, 1 the command's stdout, 2 the
// Go runtime's stderr (a panic's stack; the agent logs it and never sends
// it to the client), 3 the command's stderr. The child runs in a process
// group of its own with PR_SET_PDEATHSIG SIGKILL; a cancelled request
// (client gone, cancel frame, timeout, agent stopping) sends the group
// SIGTERM, so the command cleans up (temp dirs, mounts) and exits 130, and
// SIGKILL after ExecConfig.KillGrace. Whatever is left of the group when
// the child exits is killed.

// ChildEnv marks a process started by ExecRunner; its value is not used.
// A binary that serves as its own request child must call ChildMain when
// it is set, before anything else (cmd/syncord does it first in main, its
// test binary in TestMain).
const ChildEnv = "SYNCORD_AGENT_REQUEST"

// childRootsEnv carries the roots of a request's path arguments (JSON of
// Roots) to its child, which opens them when it starts: after the request
// waited for the mutating slot, as Server.runChecked does in the agent.
const childRootsEnv = "SYNCORD_AGENT_ROOTS"

// DefaultKillGrace is how long a cancelled request child has between
// SIGTERM and SIGKILL.
const DefaultKillGrace = 5 * time.Second

// childStderrFd is the command's stderr in the child (ExtraFiles[0]).
const childStderrFd = 3

// maxCrashLog bounds what the agent keeps of a child's runtime stderr.
const maxCrashLog = 64 << 10

// ExecConfig configures ExecRunner. The zero value means the defaults.
type ExecConfig struct {
	// Path is the binary to run ("" means /proc/self/exe).
	Path string
	// Dir is the child's working directory ("" means the agent's).
	Dir string
	// Env is added to the agent's environment for the child.
	Env []string
	// KillGrace is the time between SIGTERM and SIGKILL of a cancelled
	// child (0 means DefaultKillGrace).
	KillGrace time.Duration
	// MaxData, when not 0, is the child's RLIMIT_DATA in bytes (its
	// private writable memory: Go heap, anonymous mappings), set by the
	// child before the command runs: a request asking for more fails
	// with ENOMEM instead of loading the machine.
	MaxData uint64
	// Logf logs a crashed child's stack; nil discards.
	Logf func(format string, args ...any)
}

// childMaxDataEnv carries ExecConfig.MaxData to the child.
const childMaxDataEnv = "SYNCORD_AGENT_MAX_DATA"

// IsRequestChild reports whether this process was started by ExecRunner.
func IsRequestChild() bool { return os.Getenv(ChildEnv) != "" }

// ChildMain runs this process as a request child: run gets the argv after
// the program name, the command's stdout and stderr, and a context that
// ends on SIGTERM or SIGINT and, when the agent checks paths, carries the
// Resolver of the roots (ResolverFrom), opened now. It returns the exit
// status.
func ChildMain(run Runner) int {
	os.Unsetenv(ChildEnv) // not for the command's own children
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if v, ok := os.LookupEnv(childMaxDataEnv); ok {
		os.Unsetenv(childMaxDataEnv)
		n, err := strconv.ParseUint(v, 10, 64)
		if err == nil {
			err = unix.Setrlimit(unix.RLIMIT_DATA, &unix.Rlimit{Cur: n, Max: n})
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "syncord: RLIMIT_DATA %q from the agent: %v\n", v, err)
			return ExitPanic
		}
	}
	if js, ok := os.LookupEnv(childRootsEnv); ok {
		os.Unsetenv(childRootsEnv)
		var roots Roots
		if err := json.Unmarshal([]byte(js), &roots); err != nil {
			fmt.Fprintf(os.Stderr, "syncord: bad %s from the agent: %v\n", childRootsEnv, err)
			return ExitPanic
		}
		z, err := roots.Open()
		if err != nil {
			fmt.Fprintf(os.NewFile(childStderrFd, "stderr"), "syncord agent: refused: %v\n", err)
			return ExitRefused
		}
		defer z.Close()
		ctx = WithResolver(ctx, z)
	}
	stderr := os.NewFile(childStderrFd, "stderr")
	if stderr == nil {
		fmt.Fprintln(os.Stderr, "syncord: started as an agent request child without its stderr (file descriptor 3)")
		return ExitPanic
	}
	defer stderr.Close()
	return run(ctx, os.Stdout, stderr, os.Args[1:])
}

// ExecRunner returns a Runner that runs every request in a child process
// (see ChildEnv and ChildMain).
func ExecRunner(cfg ExecConfig) Runner {
	if cfg.Path == "" {
		cfg.Path = "/proc/self/exe"
	}
	if cfg.KillGrace <= 0 {
		cfg.KillGrace = DefaultKillGrace
	}
	return func(ctx context.Context, stdout, stderr io.Writer, args []string) int {
		return cfg.run(ctx, stdout, stderr, args)
	}
}

// drain is an io.Writer that stops forwarding after a write error but
// keeps accepting, so a child writing to a client that has gone does not
// block before it is killed.
type drain struct {
	w   io.Writer
	err error
}

func (d *drain) Write(p []byte) (int, error) {
	if d.err == nil {
		_, d.err = d.w.Write(p)
	}
	return len(p), nil
}

// bounded keeps the first max bytes written to it.
type bounded struct {
	buf bytes.Buffer
	max int
}

func (b *bounded) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (cfg ExecConfig) logf(format string, args ...any) {
	if cfg.Logf != nil {
		cfg.Logf(format, args...)
	}
}

func (cfg ExecConfig) run(ctx context.Context, stdout, stderr io.Writer, args []string) int {
	name := commandName(args)
	for i, a := range args {
		if strings.IndexByte(a, 0) >= 0 {
			fmt.Fprintf(stderr, "syncord agent: argument %d (%q) contains a NUL byte, which no command line can carry\n", i+1, a)
			return ExitUsage
		}
	}
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
		files = nil
	}
	defer closeAll()
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	outR, outW, err1 := pipe()
	errR, errW, err2 := pipe()
	rtR, rtW, err3 := pipe()
	if err := errors.Join(err1, err2, err3); err != nil {
		fmt.Fprintf(stderr, "syncord agent: internal error: pipes for %s: %v\n", name, err)
		return ExitPanic
	}
	env := append(append(os.Environ(), ChildEnv+"=1"), cfg.Env...)
	if cfg.MaxData > 0 {
		env = append(env, childMaxDataEnv+"="+strconv.FormatUint(cfg.MaxData, 10))
	}
	if z := ResolverFrom(ctx); z != nil {
		// The child opens the same roots itself: the parent's open
		// directories are an in-process object.
		js, err := json.Marshal(z.given())
		if err != nil {
			fmt.Fprintf(stderr, "syncord agent: internal error: roots for %s: %v\n", name, err)
			return ExitPanic
		}
		env = append(env, childRootsEnv+"="+string(js))
	}
	cmd := &exec.Cmd{
		Path:        cfg.Path,
		Args:        append([]string{"syncord"}, args...),
		Env:         env,
		Dir:         cfg.Dir,
		Stdout:      outW,
		Stderr:      rtW,
		ExtraFiles:  []*os.File{errW},
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
	}
	// PR_SET_PDEATHSIG fires when the thread that forked the child
	// exits, not the process: keep this goroutine on its thread until the
	// child is reaped.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "syncord agent: internal error: start %s for %s: %v\n", cfg.Path, name, err)
		return ExitPanic
	}
	pid := cmd.Process.Pid
	// The child has its ends; the agent keeps only the read ends.
	outW.Close()
	errW.Close()
	rtW.Close()
	var copies sync.WaitGroup
	crash := &bounded{max: maxCrashLog}
	copies.Go(func() { io.Copy(&drain{w: stdout}, outR) })
	copies.Go(func() { io.Copy(&drain{w: stderr}, errR) })
	copies.Go(func() { io.Copy(crash, rtR) })

	exited := make(chan struct{})
	killed := make(chan struct{})
	go func() {
		select {
		case <-exited:
			return
		case <-ctx.Done():
		}
		syscall.Kill(-pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(cfg.KillGrace):
			close(killed)
			syscall.Kill(-pid, syscall.SIGKILL)
		}
	}()
	state, werr := cmd.Process.Wait()
	close(exited)
	// Nothing of the request outlives it: kill what is left of its group
	// (task processes, a --while command), which also closes their ends
	// of the pipes.
	syscall.Kill(-pid, syscall.SIGKILL)
	done := make(chan struct{})
	go func() { copies.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(cfg.KillGrace):
		// Something outside the group holds a pipe: stop reading.
		closeAll()
		<-done
	}
	if werr != nil {
		fmt.Fprintf(stderr, "syncord agent: internal error: wait for %s: %v\n", name, werr)
		return ExitPanic
	}
	rt := crash.buf.String()
	if line, ok := crashLine(rt); ok {
		cfg.logf("request %q crashed (exit status %d):\n%s", strings.Join(args, " "), state.ExitCode(), strings.TrimSpace(rt))
		fmt.Fprintf(stderr, "syncord agent: internal error: %s crashed (%s); the details are in the agent's log\n", name, line)
		return ExitPanic
	}
	if rt != "" {
		// Not a crash: something the command wrote to the process's
		// stderr rather than its own.
		io.WriteString(&drain{w: stderr}, rt)
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		sig := ws.Signal()
		select {
		case <-killed:
			fmt.Fprintf(stderr, "syncord agent: %s did not stop within %v of SIGTERM; killed\n", name, cfg.KillGrace)
		default:
			if ctx.Err() == nil || sig != syscall.SIGTERM {
				fmt.Fprintf(stderr, "syncord agent: %s was killed by signal %d (%v)\n", name, int(sig), sig)
			}
		}
		return 128 + int(sig)
	}
	return state.ExitCode()
}

// given returns the roots z was opened from.
func (z *Resolver) given() *Roots {
	r := &Roots{}
	for kind, dst := range map[string]*[]string{KindPolicy: &r.Policy, KindBench: &r.Bench, KindBPF: &r.BPF} {
		for _, o := range z.roots[kind] {
			*dst = append(*dst, o.given)
		}
	}
	return r
}

// crashLine finds the first line of a Go runtime crash report ("panic:
// ...", "fatal error: ...") in a child's runtime stderr.
func crashLine(rt string) (string, bool) {
	for _, l := range strings.Split(rt, "\n") {
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			return strings.TrimSpace(l), true
		}
	}
	return "", false
}
