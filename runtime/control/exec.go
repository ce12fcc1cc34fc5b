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
	"strings"
	"sync"
	"sync/atomic"
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
// it to the client), 3 the command's stderr, 4 the request (JSON: argv,
// roots, memory limit), read when the request runs. The agent keeps one
// child started ahead (a spare, waiting on its descriptor 4), so a request
// does not wait for a process to start: under TCG that is most of a
// second. A spare that gets no request for SpareIdle exits. The child runs in a process
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

// childRequest is what the agent writes to a child's descriptor 4.
type childRequest struct {
	Args    []string `json:"args"`
	Roots   *Roots   `json:"roots,omitempty"`
	MaxData uint64   `json:"max_data,omitempty"`
}

// childRequestFd is the request pipe in the child (ExtraFiles[1]).
const childRequestFd = 4

// SpareIdle is how long a spare child waits for a request before it
// exits (the agent starts another one for the next request).
const SpareIdle = 10 * time.Minute

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

// IsRequestChild reports whether this process was started by ExecRunner.
func IsRequestChild() bool { return os.Getenv(ChildEnv) != "" }

// ChildMain runs this process as a request child: it reads its request
// from descriptor 4 (waiting up to SpareIdle), then run gets the argv, the
// command's stdout and stderr, and a context that ends on SIGTERM or
// SIGINT and, when the agent checks paths, carries the Resolver of the
// roots (ResolverFrom), opened now that the request runs. It returns the
// exit status.
func ChildMain(run Runner) int {
	os.Unsetenv(ChildEnv) // not for the command's own children
	stderr := os.NewFile(childStderrFd, "stderr")
	reqf := os.NewFile(childRequestFd, "request")
	if stderr == nil || reqf == nil {
		fmt.Fprintln(os.Stderr, "syncord: started as an agent request child without its descriptors 3 and 4")
		return ExitPanic
	}
	defer stderr.Close()
	reqf.SetReadDeadline(time.Now().Add(SpareIdle))
	b, err := io.ReadAll(io.LimitReader(reqf, 8*MaxPayload))
	reqf.Close()
	if err != nil || len(b) == 0 {
		return 0 // a spare nobody needed
	}
	var req childRequest
	if err := json.Unmarshal(b, &req); err != nil {
		fmt.Fprintf(os.Stderr, "syncord: bad request from the agent: %v\n", err)
		return ExitPanic
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if req.MaxData > 0 {
		if err := unix.Setrlimit(unix.RLIMIT_DATA, &unix.Rlimit{Cur: req.MaxData, Max: req.MaxData}); err != nil {
			fmt.Fprintf(os.Stderr, "syncord: RLIMIT_DATA %d from the agent: %v\n", req.MaxData, err)
			return ExitPanic
		}
	}
	if req.Roots != nil {
		z, err := req.Roots.Open()
		if err != nil {
			fmt.Fprintf(stderr, "syncord agent: refused: %v\n", err)
			return ExitRefused
		}
		defer z.Close()
		ctx = WithResolver(ctx, z)
	}
	return run(ctx, os.Stdout, stderr, req.Args)
}

// ExecRunner returns a Runner that runs every request in a child process
// (see ChildEnv and ChildMain).
func ExecRunner(cfg ExecConfig) Runner { return newExecRunner(cfg).run }

func newExecRunner(cfg ExecConfig) *execRunner {
	if cfg.Path == "" {
		cfg.Path = "/proc/self/exe"
	}
	if cfg.KillGrace <= 0 {
		cfg.KillGrace = DefaultKillGrace
	}
	return &execRunner{cfg: cfg, spare: make(chan *child, 1)}
}

type execRunner struct {
	cfg      ExecConfig
	spare    chan *child // capacity 1: a child started ahead
	starting atomic.Bool // a spare is being started
}

// child is a started request child and the agent's ends of its pipes.
type child struct {
	cmd              *exec.Cmd
	req              *os.File // write end of its request pipe
	out, errs, crash *os.File // read ends of stdout, stderr, runtime stderr
	exit             chan waitResult
}

type waitResult struct {
	state *os.ProcessState
	err   error
}

func (c *child) closePipes() {
	for _, f := range []*os.File{c.req, c.out, c.errs, c.crash} {
		f.Close()
	}
}

// start starts a child. The goroutine that forks it stays on its thread
// and reaps it: PR_SET_PDEATHSIG fires when the forking thread exits, not
// the process.
func (r *execRunner) start() (*child, error) {
	var files []*os.File
	fail := func(err error) (*child, error) {
		for _, f := range files {
			f.Close()
		}
		return nil, err
	}
	pipe := func() (rd, wr *os.File, err error) {
		rd, wr, err = os.Pipe()
		if err == nil {
			files = append(files, rd, wr)
		}
		return rd, wr, err
	}
	outR, outW, err1 := pipe()
	errR, errW, err2 := pipe()
	rtR, rtW, err3 := pipe()
	reqR, reqW, err4 := pipe()
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return fail(fmt.Errorf("pipes: %w", err))
	}
	c := &child{req: reqW, out: outR, errs: errR, crash: rtR, exit: make(chan waitResult, 1)}
	c.cmd = &exec.Cmd{
		Path:        r.cfg.Path,
		Args:        []string{"syncord"},
		Env:         append(append(os.Environ(), ChildEnv+"=1"), r.cfg.Env...),
		Dir:         r.cfg.Dir,
		Stdout:      outW,
		Stderr:      rtW,
		ExtraFiles:  []*os.File{errW, reqR},
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
	}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := c.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		st, err := c.cmd.Process.Wait()
		c.exit <- waitResult{st, err}
	}()
	if err := <-started; err != nil {
		return fail(fmt.Errorf("start %s: %w", r.cfg.Path, err))
	}
	// The child has its ends; the agent keeps the others.
	for _, f := range []*os.File{outW, errW, rtW, reqR} {
		f.Close()
	}
	return c, nil
}

// take returns the spare child if it is still waiting, else a new one,
// and starts the next spare in the background.
func (r *execRunner) take() (*child, error) {
	defer r.refill()
	for {
		select {
		case c := <-r.spare:
			select {
			case <-c.exit: // gone (idle too long, or killed)
				c.closePipes()
				continue
			default:
				return c, nil
			}
		default:
			return r.start()
		}
	}
}

func (r *execRunner) refill() {
	if !r.starting.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer r.starting.Store(false)
		if len(r.spare) > 0 {
			return
		}
		c, err := r.start()
		if err != nil {
			r.cfg.logf("start a spare request child: %v", err)
			return
		}
		select {
		case r.spare <- c:
		default:
			c.req.Close() // a spare is there already: this one exits
			c.closePipes()
		}
	}()
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

func (r *execRunner) run(ctx context.Context, stdout, stderr io.Writer, args []string) int {
	name := commandName(args)
	for i, a := range args {
		if strings.IndexByte(a, 0) >= 0 {
			fmt.Fprintf(stderr, "syncord agent: argument %d (%q) contains a NUL byte, which no command line can carry\n", i+1, a)
			return ExitUsage
		}
	}
	req := childRequest{Args: args, MaxData: r.cfg.MaxData}
	if z := ResolverFrom(ctx); z != nil {
		// The child opens the same roots itself: the parent's open
		// directories are an in-process object.
		req.Roots = z.given()
	}
	js, err := json.Marshal(req)
	if err != nil {
		fmt.Fprintf(stderr, "syncord agent: internal error: request for %s: %v\n", name, err)
		return ExitPanic
	}
	c, err := r.take()
	if err != nil {
		fmt.Fprintf(stderr, "syncord agent: internal error: child for %s: %v\n", name, err)
		return ExitPanic
	}
	defer c.closePipes()
	pid := c.cmd.Process.Pid
	var copies sync.WaitGroup
	crash := &bounded{max: maxCrashLog}
	copies.Go(func() { io.Copy(&drain{w: stdout}, c.out) })
	copies.Go(func() { io.Copy(&drain{w: stderr}, c.errs) })
	copies.Go(func() { io.Copy(crash, c.crash) })
	// The request goes in while the child may already be reading; a
	// child that died meanwhile shows in its exit status below.
	c.req.Write(js)
	c.req.Close()

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
		case <-time.After(r.cfg.KillGrace):
			close(killed)
			syscall.Kill(-pid, syscall.SIGKILL)
		}
	}()
	w := <-c.exit
	state, werr := w.state, w.err
	close(exited)
	// Nothing of the request outlives it: kill what is left of its group
	// (task processes, a --while command), which also closes their ends
	// of the pipes.
	syscall.Kill(-pid, syscall.SIGKILL)
	done := make(chan struct{})
	go func() { copies.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(r.cfg.KillGrace):
		// Something outside the group holds a pipe: stop reading.
		c.closePipes()
		<-done
	}
	if werr != nil {
		fmt.Fprintf(stderr, "syncord agent: internal error: wait for %s: %v\n", name, werr)
		return ExitPanic
	}
	rt := crash.buf.String()
	if line, ok := crashLine(rt); ok {
		r.cfg.logf("request %q crashed (exit status %d):\n%s", strings.Join(args, " "), state.ExitCode(), strings.TrimSpace(rt))
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
			fmt.Fprintf(stderr, "syncord agent: %s did not stop within %v of SIGTERM; killed\n", name, r.cfg.KillGrace)
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
