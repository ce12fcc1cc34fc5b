package control

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testChild is the request child of the exec tests (this test binary
// re-executed, see TestMain).
func testChild(ctx context.Context, stdout, stderr io.Writer, args []string) int {
	switch args[0] {
	case "echo":
		fmt.Fprintln(stdout, strings.Join(args[1:], " "))
		fmt.Fprintln(stderr, "to stderr")
		return 0
	case "pid":
		fmt.Fprintln(stdout, os.Getpid())
		return 0
	case "exit":
		n, _ := strconv.Atoi(args[1])
		return n
	case "panic-in-goroutine":
		// As bench metis -r -5 did: a worker goroutine panics, which no
		// recover in the request's goroutine can catch.
		done := make(chan struct{})
		go func() {
			var s []int
			n := -5
			_ = s[:n:n]
			close(done)
		}()
		<-done
		return 0
	case "spawn":
		// A grandchild in the request's process group, then wait for
		// cancellation and clean up as a command does.
		c := exec.Command("sleep", "1000")
		if err := c.Start(); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintln(stdout, c.Process.Pid)
		<-ctx.Done()
		fmt.Fprintln(stderr, "cleaned up")
		return ExitCanceled
	case "ignore-term":
		fmt.Fprintln(stdout, "ignoring")
		select {} // the context ends, the process does not
	case "roots":
		z := ResolverFrom(ctx)
		if z == nil {
			fmt.Fprintln(stdout, "no roots")
			return 0
		}
		p, err := z.Resolve(KindBench, "--dir", args[1])
		if err != nil {
			fmt.Fprintln(stderr, err)
			return ExitRefused
		}
		fmt.Fprintln(stdout, p)
		return 0
	}
	return 2
}

// execAgent serves requests through ExecRunner (this test binary as the
// child) on a unix socket.
func execAgent(t *testing.T, cfg Config, ecfg ExecConfig) (*testAgent, *syncBuffer) {
	log := &syncBuffer{}
	ecfg.Logf = log.printf
	cfg.Run = ExecRunner(ecfg)
	cfg.Logf = log.printf
	if cfg.Mutating == nil {
		cfg.Mutating = func([]string) bool { return false }
	}
	return startAgent(t, cfg), log
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(&s.b, format+"\n", args...)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestExecRunnerSurvivesCrash: a request whose worker goroutine panics
// (issue 11 item 8: it killed the agent) crashes only its child: the client
// gets one line and ExitPanic, the stack goes to the agent's log, and the
// next request is answered.
func TestExecRunnerSurvivesCrash(t *testing.T) {
	a, log := execAgent(t, Config{}, ExecConfig{})
	c := a.dial(t)
	r := run(context.Background(), c, "panic-in-goroutine")
	if r.err != nil || r.code != ExitPanic || strings.Count(r.stderr, "\n") != 1 ||
		!strings.Contains(r.stderr, "panic-in-goroutine crashed (panic: runtime error: slice bounds out of range") || strings.Contains(r.stderr, "[running]") {
		t.Fatalf("crashing request: %+v, want status %d and one line naming the panic", r, ExitPanic)
	}
	if !strings.Contains(log.String(), "[running]") {
		t.Fatalf("agent log %q, want the crash's stack", log.String())
	}
	r = run(context.Background(), c, "echo", "still", "here")
	if r.code != 0 || r.stdout != "still here\n" || r.stderr != "to stderr\n" {
		t.Fatalf("request after the crash: %+v", r)
	}
	if r := run(context.Background(), c, "exit", "42"); r.code != 42 {
		t.Fatalf("exit 42: %+v", r)
	}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// TestExecRunnerCancelEndsGroup: a cancelled request's child gets SIGTERM
// (it cleans up and says so) and nothing of its process group survives it.
func TestExecRunnerCancelEndsGroup(t *testing.T) {
	a, _ := execAgent(t, Config{}, ExecConfig{})
	c := a.dial(t)
	ctx, cancel := context.WithCancel(context.Background())
	pidc := make(chan int, 1)
	var errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		code, _ := c.Run(ctx, []string{"spawn"}, writerFunc(func(p []byte) (int, error) {
			if n, err := strconv.Atoi(strings.TrimSpace(string(p))); err == nil {
				pidc <- n
			}
			return len(p), nil
		}), &errb)
		done <- code
	}()
	var pid int
	select {
	case pid = <-pidc:
	case <-time.After(30 * time.Second):
		t.Fatal("spawn did not report its grandchild")
	}
	cancel()
	<-done
	deadline := time.Now().Add(30 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if alive(pid) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("grandchild %d outlived its cancelled request", pid)
	}
	if !strings.Contains(errb.String(), "cleaned up") {
		t.Errorf("stderr of the cancelled request %q, want the child's cleanup line (SIGTERM, not SIGKILL)", errb.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestExecRunnerKillsAfterGrace: a child that ignores SIGTERM is killed
// after KillGrace and the client is told so.
//
// The timeout leaves the child time to start and catch SIGTERM on a loaded
// machine: a SIGTERM that comes before the child's handler kills it at once
// (seen at load 20 with a 300 ms timeout), which is not what is tested here.
func TestExecRunnerKillsAfterGrace(t *testing.T) {
	a, _ := execAgent(t, Config{RequestTimeout: 3 * time.Second}, ExecConfig{KillGrace: 200 * time.Millisecond})
	r := run(context.Background(), a.dial(t), "ignore-term")
	if r.code != ExitTimeout || !strings.Contains(r.stderr, "did not stop within 200ms of SIGTERM; killed") {
		t.Fatalf("child ignoring SIGTERM: %+v, want the timeout status and the kill explained", r)
	}
}

// TestExecRunnerRoots: the child resolves paths against the agent's roots,
// opened when the request runs.
func TestExecRunnerRoots(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(root+"/d", 0o755); err != nil {
		t.Fatal(err)
	}
	a, _ := execAgent(t, Config{Roots: &Roots{Bench: []string{root}}}, ExecConfig{})
	if r := run(context.Background(), a.dial(t), "roots", root+"/d"); r.code != 0 || r.stdout != root+"/d\n" {
		t.Fatalf("path inside the root: %+v", r)
	}
	if r := run(context.Background(), a.dial(t), "roots", "/etc"); r.code != ExitRefused || !strings.Contains(r.stderr, "outside the bench roots") {
		t.Fatalf("path outside the root: %+v", r)
	}
}

// TestExecRunnerSpare: a request is served by the child started ahead
// (the spare), so it does not wait for a process to start.
func TestExecRunnerSpare(t *testing.T) {
	r := newExecRunner(ExecConfig{})
	a := startAgent(t, Config{Run: r.run, Mutating: func([]string) bool { return false }})
	c := a.dial(t)
	if res := run(context.Background(), c, "pid"); res.code != 0 {
		t.Fatalf("first request: %+v", res)
	}
	var spare *child
	deadline := time.Now().Add(30 * time.Second)
	for spare == nil && time.Now().Before(deadline) {
		select {
		case spare = <-r.spare:
			r.spare <- spare
		default:
			time.Sleep(10 * time.Millisecond)
		}
	}
	if spare == nil {
		t.Fatal("no spare child 30 s after a request")
	}
	res := run(context.Background(), c, "pid")
	if want := strconv.Itoa(spare.cmd.Process.Pid) + "\n"; res.code != 0 || res.stdout != want {
		t.Fatalf("second request: %+v, want it served by the spare, pid %s", res, want)
	}
}
