package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fake is a Runner with a few commands, recording cancellations.
type fake struct {
	cancelled chan string // receives the command of every request whose ctx ended
	started   chan string // receives the command when sleep starts
}

func newFake() *fake {
	return &fake{cancelled: make(chan string, 100), started: make(chan string, 100)}
}

func (f *fake) run(ctx context.Context, stdout, stderr io.Writer, args []string) int {
	switch args[0] {
	case "echo", "status":
		fmt.Fprintln(stdout, strings.Join(args[1:], " "))
		return 0
	case "fail":
		n, _ := strconv.Atoi(args[1])
		fmt.Fprintf(stderr, "failing with %d\n", n)
		return n
	case "spam":
		n, _ := strconv.Atoi(args[1])
		b := bytes.Repeat([]byte("0123456789abcdef"), n/16)
		stdout.Write(b)
		return 0
	case "panic":
		panic("boom")
	case "resolve": // resolve KIND PATH: what a command does with a path argument
		z := ResolverFrom(ctx)
		if z == nil {
			fmt.Fprintln(stdout, args[2])
			return 0
		}
		p, err := z.Resolve(args[1], "", args[2])
		if err != nil {
			fmt.Fprintln(stderr, err)
			return ExitRefused
		}
		fmt.Fprintln(stdout, p)
		return 0
	case "policy":
		if len(args) > 1 && args[1] == "status" {
			fmt.Fprintln(stdout, "no policy installed")
			return 0
		}
		fallthrough
	case "sleep", "bench":
		d := 10 * time.Second
		if len(args) > 1 {
			if v, err := time.ParseDuration(args[len(args)-1]); err == nil {
				d = v
			}
		}
		select {
		case f.started <- args[0]:
		default: // nobody watches (stress test)
		}
		select {
		case <-time.After(d):
			fmt.Fprintln(stdout, "slept")
			return 0
		case <-ctx.Done():
			f.cancelled <- args[0]
			fmt.Fprintln(stderr, "interrupted")
			return 1
		}
	}
	fmt.Fprintf(stderr, "unknown command %q\n", args[0])
	return 2
}

func fakeMutating(args []string) bool {
	switch args[0] {
	case "sleep", "bench", "resolve":
		return true
	case "policy":
		return len(args) < 2 || (args[1] != "status" && args[1] != "list")
	}
	return false
}

type testAgent struct {
	path string
	fake *fake
	srv  *Server
	stop func()
}

// startAgent serves a fake runner on a unix socket in t.TempDir().
func startAgent(t testing.TB, cfg Config) *testAgent {
	t.Helper()
	f := newFake()
	if cfg.Run == nil {
		cfg.Run = f.run
	}
	if cfg.Mutating == nil {
		cfg.Mutating = fakeMutating
	}
	path := filepath.Join(t.TempDir(), "agent.sock")
	l, err := ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("Serve did not return 20s after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return &testAgent{path: path, fake: f, srv: srv, stop: stop}
}

func (a *testAgent) dial(t testing.TB) *Client {
	t.Helper()
	c, err := Dial(context.Background(), "unix://"+a.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type result struct {
	code           int
	stdout, stderr string
	err            error
}

func run(ctx context.Context, c *Client, args ...string) result {
	var o, e bytes.Buffer
	code, err := c.Run(ctx, args, &o, &e)
	return result{code, o.String(), e.String(), err}
}

func TestServerRequests(t *testing.T) {
	a := startAgent(t, Config{})
	for _, tc := range []struct {
		name       string
		args       []string
		code       int
		stdout     string
		stderrPart string
	}{
		{"echo", []string{"echo", "a", "b"}, 0, "a b\n", ""},
		{"exit status", []string{"fail", "3"}, 3, "", "failing with 3"},
		{"large output in chunks", []string{"spam", "200000"}, 0, strings.Repeat("0123456789abcdef", 12500), ""},
		{"empty request", []string{}, ExitUsage, "", "empty request"},
		{"agent refused", []string{"agent", "--listen", "unix:///tmp/x"}, ExitRefused, "", "cannot run over the control connection"},
		{"panic", []string{"panic"}, ExitPanic, "", "internal error"},
		{"unknown", []string{"nope"}, 2, "", "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := a.dial(t)
			r := run(context.Background(), c, tc.args...)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.code != tc.code || r.stdout != tc.stdout || !strings.Contains(r.stderr, tc.stderrPart) {
				t.Fatalf("got status %d stdout %.60q stderr %q; want %d %.60q stderr containing %q", r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderrPart)
			}
		})
	}
}

func TestServerSequentialRequestsOneConnection(t *testing.T) {
	a := startAgent(t, Config{})
	c := a.dial(t)
	for i := range 20 {
		r := run(context.Background(), c, "echo", strconv.Itoa(i))
		if r.err != nil || r.code != 0 || r.stdout != strconv.Itoa(i)+"\n" {
			t.Fatalf("request %d: %+v", i, r)
		}
	}
}

func TestServerBusyAndConcurrentReadOnly(t *testing.T) {
	a := startAgent(t, Config{})
	long := a.dial(t)
	ctx, cancel := context.WithCancel(context.Background())
	longDone := make(chan result, 1)
	go func() { longDone <- run(ctx, long, "bench", "will-it-scale", "lock1", "30s") }()
	<-a.fake.started

	r := run(context.Background(), a.dial(t), "sleep", "1ms")
	if r.code != ExitBusy || !strings.Contains(r.stderr, "busy: bench will-it-scale is running (started 0s ago); try again") {
		t.Fatalf("second mutating request: %+v, want busy", r)
	}
	r = run(context.Background(), a.dial(t), "policy", "status")
	if r.code != 0 {
		t.Fatalf("read-only policy status while busy: %+v", r)
	}
	// Read-only requests run concurrently with each other too.
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			r := run(context.Background(), a.dial(t), "status", strconv.Itoa(i))
			if r.code != 0 || r.stdout != strconv.Itoa(i)+"\n" {
				t.Errorf("concurrent status %d: %+v", i, r)
			}
		})
	}
	wg.Wait()

	cancel()
	lr := <-longDone
	if !errors.Is(lr.err, ErrCanceled) || lr.code != 1 || !strings.Contains(lr.stderr, "interrupted") {
		t.Fatalf("cancelled request: %+v, want the runner's status 1 and ErrCanceled", lr)
	}
	if got := <-a.fake.cancelled; got != "bench" {
		t.Fatalf("cancelled %q", got)
	}
	// The slot is free again (released just after the runner returned:
	// queue rather than race it).
	c := a.dial(t)
	c.Queue = true
	if r := run(context.Background(), c, "sleep", "1ms"); r.code != 0 {
		t.Fatalf("mutating request after cancel: %+v", r)
	}
}

func TestServerQueue(t *testing.T) {
	for _, tc := range []struct {
		name      string
		server    bool
		clientReq bool
	}{{"server flag", true, false}, {"client flag", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			a := startAgent(t, Config{Queue: tc.server})
			first := make(chan result, 1)
			go func() { first <- run(context.Background(), a.dial(t), "sleep", "300ms") }()
			<-a.fake.started
			c := a.dial(t)
			c.Queue = tc.clientReq
			r := run(context.Background(), c, "sleep", "1ms")
			if r.code != 0 || r.stdout != "slept\n" {
				t.Fatalf("queued request: %+v", r)
			}
			if f := <-first; f.code != 0 {
				t.Fatalf("first request: %+v", f)
			}
		})
	}
}

func TestServerCancelOnDisconnect(t *testing.T) {
	a := startAgent(t, Config{})
	conn, err := net.Dial("unix", a.path)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(conn, false)
	go run(context.Background(), c, "bench", "fxmark", "60s")
	<-a.fake.started
	conn.Close()
	select {
	case got := <-a.fake.cancelled:
		if got != "bench" {
			t.Fatalf("cancelled %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("request not cancelled 10s after its client disconnected")
	}
	// The slot is released just after the runner returns: queue.
	c2 := a.dial(t)
	c2.Queue = true
	if r := run(context.Background(), c2, "sleep", "1ms"); r.code != 0 {
		t.Fatalf("agent after disconnect: %+v", r)
	}
}

func TestServerNewRequestCancelsOld(t *testing.T) {
	a := startAgent(t, Config{})
	c := a.dial(t)
	p := mustArgs(t, "sleep", "60s")
	if err := c.send(Frame{Type: TypeRequest, ID: 1, Payload: p}); err != nil {
		t.Fatal(err)
	}
	<-a.fake.started
	r := run(context.Background(), c, "echo", "next")
	if r.code != 0 || r.stdout != "next\n" {
		t.Fatalf("second request on the connection: %+v", r)
	}
	if got := <-a.fake.cancelled; got != "sleep" {
		t.Fatalf("cancelled %q", got)
	}
}

func TestServerMalformedClosesOnlyThatConnection(t *testing.T) {
	a := startAgent(t, Config{})
	good := a.dial(t)
	goodDone := make(chan result, 1)
	go func() { goodDone <- run(context.Background(), good, "sleep", "500ms") }()
	<-a.fake.started
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"garbage", []byte("GET / HTTP/1.0\r\n\r\nxxxxxxxx")},
		{"bad checksum", flip(mustFrame(t, Frame{Type: TypeRequest, ID: 1, Payload: mustArgs(t, "echo")}), 21)},
		{"reply type from client", mustFrame(t, Frame{Type: TypeStdout, ID: 1})},
		{"bad request payload", mustFrame(t, Frame{Type: TypeRequest, ID: 1, Payload: []byte{0, 0, 0, 9}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("unix", a.path)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.Write(tc.in)
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := conn.Read(make([]byte, 64))
			if !errors.Is(err, io.EOF) {
				t.Fatalf("read after %s: %d bytes, %v; want the agent to close the connection", tc.name, n, err)
			}
		})
	}
	if r := <-goodDone; r.code != 0 || r.stdout != "slept\n" {
		t.Fatalf("well-formed request beside malformed ones: %+v", r)
	}
}

func TestServerIdleTimeout(t *testing.T) {
	a := startAgent(t, Config{IdleTimeout: 100 * time.Millisecond})
	c := a.dial(t)
	// A request resets the idle timer; so does its end.
	if r := run(context.Background(), c, "sleep", "300ms"); r.code != 0 {
		t.Fatalf("request longer than the idle timeout: %+v", r)
	}
	conn, err := net.Dial("unix", a.path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: %v, want closed by the agent", err)
	}
}

func TestServerRequestTimeout(t *testing.T) {
	a := startAgent(t, Config{RequestTimeout: 100 * time.Millisecond})
	r := run(context.Background(), a.dial(t), "sleep", "30s")
	if r.code != ExitTimeout || !strings.Contains(r.stderr, "request timed out after 100ms") {
		t.Fatalf("got %+v, want status %d and a timeout message", r, ExitTimeout)
	}
}

func TestServerRoots(t *testing.T) {
	root := t.TempDir()
	a := startAgent(t, Config{Roots: &Roots{Policy: []string{root}, Bench: []string{root}}})
	r := run(context.Background(), a.dial(t), "resolve", KindPolicy, "/etc")
	if r.code != ExitRefused || !strings.Contains(r.stderr, `path "/etc" is outside the policy roots `+root) {
		t.Fatalf("policy outside root: %+v", r)
	}
	r = run(context.Background(), a.dial(t), "resolve", KindPolicy, "lockstat")
	if r.code != 0 || r.stdout != filepath.Join(root, "lockstat")+"\n" {
		t.Fatalf("relative policy path: %+v, want it under the root", r)
	}
}

// TestServerResolvesWhenRunning queues a request behind a running one,
// swaps its directory for a link out of the root while it waits, and
// checks that the path is resolved (and refused) when the request runs.
func TestServerResolvesWhenRunning(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	dir := filepath.Join(root, "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	waiting := make(chan struct{}, 1)
	a := startAgent(t, Config{Roots: &Roots{Bench: []string{root}}, Queue: true, Mutating: func(args []string) bool {
		if args[0] == "resolve" {
			waiting <- struct{}{} // called just before the request waits for the slot
		}
		return fakeMutating(args)
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sleeping := make(chan result, 1)
	go func() { sleeping <- run(ctx, a.dial(t), "sleep", "60s") }()
	<-a.fake.started
	queued := make(chan result, 1)
	go func() { queued <- run(context.Background(), a.dial(t), "resolve", KindBench, dir+"/x") }()
	<-waiting
	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, dir); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-sleeping
	r := <-queued
	if r.code != ExitRefused || !strings.Contains(r.stderr, "resolves to "+outside+"/x, which is outside the bench roots") {
		t.Fatalf("queued request after the swap: %+v, want refused", r)
	}
}

func TestServeReturnsOnCancel(t *testing.T) {
	a := startAgent(t, Config{})
	c := a.dial(t)
	done := make(chan result, 1)
	go func() { done <- run(context.Background(), c, "sleep", "60s") }()
	<-a.fake.started
	a.stop()
	if got := <-a.fake.cancelled; got != "sleep" {
		t.Fatalf("cancelled %q", got)
	}
	// The client sees either the interrupted command's status or the
	// connection closing, never success.
	if r := <-done; r.err == nil && (r.code == 0 || !strings.Contains(r.stderr, "interrupted")) {
		t.Fatalf("client of a stopped agent: %+v, want an error or the interrupted status", r)
	}
}

func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "a.sock")
	l, err := ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := ListenUnix(path); err == nil || !strings.Contains(err.Error(), "already listening") {
		t.Errorf("second listener on a live socket: %v", err)
	}
	// A socket left by a dead agent is replaced.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	l2, err := ListenUnix(path)
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	l2.Close()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := ListenUnix(file); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("listen over a regular file: %v", err)
	}
}

func TestListenAddresses(t *testing.T) {
	for _, tc := range []struct {
		addr, errPart string
	}{
		{"tcp://127.0.0.1:1", "unknown scheme"},
		{"/run/x.sock", "want unix:///path"},
		{"vsock://:x", "bad port"},
		{"virtio-serial://no.such.port", "not in"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			_, err := Listen(tc.addr, ListenOptions{SysRoot: t.TempDir()})
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Fatalf("Listen(%q) = %v, want error containing %q", tc.addr, err, tc.errPart)
			}
		})
	}
}

// TestClientTiming: Accepted and Exited bracket the command's own run
// time, which syncord-host experiment subtracts from a point's wall time.
// The agent sends the accepted frame and then starts the command, so on a
// busy machine the client may read that frame after the command started:
// what holds whatever the weather is that the command ran between before
// and Exited, and that Exited-Accepted misses at most the time from
// before to Accepted.
func TestClientTiming(t *testing.T) {
	const cmd = 200 * time.Millisecond
	a := startAgent(t, Config{})
	c := a.dial(t)
	before := time.Now()
	if r := run(context.Background(), c, "sleep", cmd.String()); r.err != nil || r.code != 0 {
		t.Fatalf("sleep: %+v", r)
	}
	after := time.Now()
	d := c.Exited.Sub(c.Accepted)
	late := c.Accepted.Sub(before)
	if c.Accepted.Before(before) || c.Exited.After(after) || c.Exited.Sub(before) < cmd || d < cmd-late {
		t.Errorf("accepted %v, exited %v (%v, the accepted frame read %v after the request) for a %v command run between %v and %v",
			c.Accepted, c.Exited, d, late, cmd, before, after)
	}
}
