package control

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// rssBytes is VmRSS of this process from /proc/self/status.
func rssBytes(t testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// floodEnv makes the test binary a flood helper (see TestMain): it opens
// SYNCORD_TEST_FLOOD_N unix connections to the socket, sends each half a
// frame header, says "ready" and holds them until its stdin closes.
// Helpers hold the client sockets so that the test process holds only the
// agent's: its memory is the agent's, and no process needs more file
// descriptors than RLIMIT_NOFILE allows without privileges.
const floodEnv = "SYNCORD_TEST_FLOOD_SOCK"

func TestMain(m *testing.M) {
	if IsRequestChild() {
		os.Exit(ChildMain(testChild))
	}
	if path := os.Getenv(floodEnv); path != "" {
		os.Exit(floodHelper(path))
	}
	os.Exit(m.Run())
}

func floodHelper(path string) int {
	n, _ := strconv.Atoi(os.Getenv("SYNCORD_TEST_FLOOD_N"))
	half, _ := AppendFrame(nil, Frame{Type: TypeRequest, ID: 1, Payload: []byte{0, 0, 0, 0}})
	half = half[:10]
	addr := &unix.SockaddrUnix{Name: path}
	for i := range n {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			err = unix.Connect(fd, addr)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "flood connection %d: %v\n", i, err)
			return 1
		}
		unix.Write(fd, half) // the agent may have closed it already
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// startFlood starts a helper holding n half-frame connections to path and
// waits until they are open.
func startFlood(t *testing.T, path string, n int) {
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), floodEnv+"="+path, "SYNCORD_TEST_FLOOD_N="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("flood helper: %q, %v", line, err)
	}
}

// TestServerIdleFlood: 20,000 connections that each send half a frame
// header and stop (issue 11 item 12: on main they took the agent to 1.38
// GB, 64 KiB each, and starved good clients). The agent serves at most
// MaxConns at once, closing the oldest silent ones to make room, and
// allocates no read buffer before a byte arrives. The witness is memory,
// measured while all 20,000 client sockets are open (in two helper
// processes, so this process's memory is the agent's): the Go heap and
// stacks in use, and the growth of the process's RSS, must stay under 64
// MB. Then a good client must be answered within 1 s: the agent only has
// to accept it and close one silent connection, a millisecond of work;
// one second leaves room for a loaded 2-core CI machine.
func TestServerIdleFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the 20,000-connection flood in -short mode")
	}
	const flood, helpers = 20000, 2
	a := startAgent(t, Config{})
	if r := run(context.Background(), a.dial(t), "echo", "warm"); r.code != 0 {
		t.Fatalf("warm-up: %+v", r)
	}
	runtime.GC()
	rss0 := rssBytes(t)
	for range helpers {
		startFlood(t, a.path, flood/helpers)
	}
	// Let the agent accept its backlog, so the good client below is not
	// queued behind flood connections the kernel still holds.
	deadline := time.Now().Add(60 * time.Second)
	for a.srv.accepted.Load() < flood+1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	a.srv.connMu.Lock()
	served := len(a.srv.conns)
	a.srv.connMu.Unlock()
	if served > DefaultMaxConns {
		t.Errorf("%d connections served at once, more than MaxConns %d", served, DefaultMaxConns)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	inUse := int64(ms.HeapInuse + ms.StackInuse)
	rss := rssBytes(t)
	const limit = 64 << 20
	t.Logf("%d half-frame connections open: Go heap+stacks in use %.1f MB, RSS %.1f MB (%.1f MB before the flood), %d goroutines",
		flood, float64(inUse)/(1<<20), float64(rss)/(1<<20), float64(rss0)/(1<<20), runtime.NumGoroutine())
	if inUse > limit || rss-rss0 > limit {
		t.Fatalf("agent memory with %d idle connections: heap+stacks %d bytes, RSS grew by %d bytes; want both under %d", flood, inUse, rss-rss0, limit)
	}

	start := time.Now()
	c, err := Dial(context.Background(), "unix://"+a.path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := run(ctx, c, "echo", "good")
	took := time.Since(start)
	t.Logf("good client answered in %v", took)
	if r.err != nil || r.code != 0 || r.stdout != "good\n" {
		t.Fatalf("good client after the flood: %+v", r)
	}
	if took > time.Second {
		t.Fatalf("good client answered after %v, want within 1s", took)
	}
}

// TestServerFrameTimeout: a client that sends half a header and stops is
// closed after FrameTimeout, one that sends nothing is not (IdleTimeout
// covers it).
func TestServerFrameTimeout(t *testing.T) {
	a := startAgent(t, Config{FrameTimeout: 200 * time.Millisecond})
	half, err := net.Dial("unix", a.path)
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	silent, err := net.Dial("unix", a.path)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	half.Write(mustFrame(t, Frame{Type: TypeRequest, ID: 1, Payload: mustArgs(t, "echo")})[:7])
	half.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := half.Read(make([]byte, 8)); !errors.Is(err, io.EOF) {
		t.Fatalf("half a header: read %v, want the agent to close the connection", err)
	}
	silent.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := silent.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("silent connection: read %v, want it kept open", err)
	}
}

// TestServerStopSendsExitStatus: an agent that stops (its context ends,
// as on SIGTERM) cancels a running request and sends its client a last
// stderr line and exit frame (ExitStopped) instead of dropping the
// connection (issue 11 item 16).
func TestServerStopSendsExitStatus(t *testing.T) {
	a := startAgent(t, Config{})
	c := a.dial(t)
	done := make(chan result, 1)
	go func() { done <- run(context.Background(), c, "sleep", "60s") }()
	<-a.fake.started
	a.stop()
	r := <-done
	if r.err != nil || r.code != ExitStopped || !strings.Contains(r.stderr, "the agent is stopping") {
		t.Fatalf("client of a stopping agent: %+v, want exit status %d and a last stderr line", r, ExitStopped)
	}
}

// TestServerPanicSendsNoStack: a request that panics in the agent process
// answers one line and ExitPanic; the Go stack goes to the agent's log.
func TestServerPanicSendsNoStack(t *testing.T) {
	var log bytes.Buffer
	var mu = make(chan struct{}, 1)
	a := startAgent(t, Config{Logf: func(format string, args ...any) {
		mu <- struct{}{}
		defer func() { <-mu }()
		log.WriteString(strings.TrimSpace(format) + "\n")
	}})
	r := run(context.Background(), a.dial(t), "panic")
	if r.code != ExitPanic || strings.Count(r.stderr, "\n") != 1 || strings.Contains(r.stderr, "goroutine") {
		t.Fatalf("panicking request: %+v, want status %d and one line without a stack", r, ExitPanic)
	}
	mu <- struct{}{}
	defer func() { <-mu }()
	if !strings.Contains(log.String(), "panicked") {
		t.Fatalf("agent log %q, want the panic", log.String())
	}
}
