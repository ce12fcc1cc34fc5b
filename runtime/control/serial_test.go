package control

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pipePort is one "host session" of a serial port made of two pipes: the
// agent reads what the host writes and the other way round. Closing the
// host's write end gives the agent end of file, as virtio_console does when
// the host side closes.
type pipePort struct {
	agentR, agentW *os.File // the agent's ends
	hostR, hostW   *os.File // the host's ends
}

func newPipePort(t *testing.T) *pipePort {
	t.Helper()
	ar, hw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	hr, aw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &pipePort{agentR: ar, agentW: aw, hostR: hr, hostW: hw}
	t.Cleanup(func() {
		for _, f := range []*os.File{ar, aw, hr, hw} {
			f.Close()
		}
	})
	return p
}

// agentSide is the ReadWriteCloser the endpoint gets.
type agentSide struct{ p *pipePort }

func (a agentSide) Read(b []byte) (int, error)  { return a.p.agentR.Read(b) }
func (a agentSide) Write(b []byte) (int, error) { return a.p.agentW.Write(b) }
func (a agentSide) SetWriteDeadline(t time.Time) error {
	return a.p.agentW.SetWriteDeadline(t)
}
func (a agentSide) Close() error {
	a.p.agentR.Close()
	return a.p.agentW.Close()
}

// hostSide is what a host client talks to.
type hostSide struct{ p *pipePort }

func (h hostSide) Read(b []byte) (int, error)  { return h.p.hostR.Read(b) }
func (h hostSide) Write(b []byte) (int, error) { return h.p.hostW.Write(b) }
func (h hostSide) Close() error {
	h.p.hostW.Close()
	return h.p.hostR.Close()
}

// TestSerialResyncAndReconnect serves a serial endpoint whose "port" is
// reopened for each host session: garbage before a request is skipped,
// stale output of a dropped session is ignored by the next client, and the
// request of a host that closed is cancelled.
func TestSerialResyncAndReconnect(t *testing.T) {
	sessions := make(chan *pipePort, 4)
	opened := make(chan struct{}, 16)
	port := &SerialPort{Name: "test", Retry: 10 * time.Millisecond, open: func() (io.ReadWriteCloser, error) {
		select {
		case p := <-sessions:
			opened <- struct{}{}
			return agentSide{p}, nil
		case <-time.After(50 * time.Millisecond):
			return nil, errors.New("no host session")
		}
	}}
	ep := &serialEndpoint{p: port, addr: "virtio-serial://test", closed: make(chan struct{})}
	f := newFake()
	srv := NewServer(Config{Run: f.run, Mutating: fakeMutating, KeepaliveTimeout: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ep.Serve(ctx, srv) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()

	// Session 1: garbage, a half frame, then a request.
	s1 := newPipePort(t)
	sessions <- s1
	s1.hostW.Write([]byte("\x00\x13login: SCRD\x01garbage"))
	c1 := NewClient(hostSide{s1}, true)
	r := run(context.Background(), c1, "echo", "after", "garbage")
	if r.err != nil || r.code != 0 || r.stdout != "after garbage\n" {
		t.Fatalf("request after garbage: %+v", r)
	}
	// A long request, then the host side goes away.
	go run(context.Background(), c1, "bench", "will-it-scale", "60s")
	if got := <-f.started; got != "bench" {
		t.Fatalf("started %q", got)
	}
	s1.hostW.Close()
	select {
	case got := <-f.cancelled:
		if got != "bench" {
			t.Fatalf("cancelled %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("request not cancelled after the host side closed")
	}

	// Session 2: the port is reopened; stale frames of another request id
	// and garbage come first; the client ignores them.
	s2 := newPipePort(t)
	sessions <- s2
	stale := mustFrame(t, Frame{Type: TypeStdout, ID: 12345, Payload: []byte("stale output\n")})
	s2.hostW.Write(stale) // the agent skips a reply-type frame on serial
	c2 := NewClient(hostSide{s2}, true)
	c2.Queue = true // the slot of the cancelled request is released just after it returned
	r = run(context.Background(), c2, "sleep", "1ms")
	if r.err != nil || r.code != 0 || r.stdout != "slept\n" {
		t.Fatalf("request in a second host session: %+v", r)
	}
	if len(opened) < 2 {
		t.Fatalf("port opened %d times, want a reopen per session", len(opened))
	}
}

// TestSerialClientIgnoresStaleReplies puts a stale reply of another request
// and garbage in front of the agent's answer, as a host reconnecting to a
// serial port may see.
func TestSerialClientIgnoresStaleReplies(t *testing.T) {
	p := newPipePort(t)
	go func() {
		d := NewDecoder(agentSide{p})
		d.Resync = true
		f, err := d.Decode()
		if err != nil {
			return
		}
		var b []byte
		b = append(b, "noise"...)
		b, _ = AppendFrame(b, Frame{Type: TypeStdout, ID: f.ID + 1, Payload: []byte("old\n")})
		b, _ = AppendFrame(b, Frame{Type: TypeExit, ID: f.ID + 1, Payload: EncodeExit(9)})
		b, _ = AppendFrame(b, Frame{Type: TypeStdout, ID: f.ID, Payload: []byte("new\n")})
		b, _ = AppendFrame(b, Frame{Type: TypeExit, ID: f.ID, Payload: EncodeExit(0)})
		p.agentW.Write(b)
	}()
	r := run(context.Background(), NewClient(hostSide{p}, true), "topology")
	if r.err != nil || r.code != 0 || r.stdout != "new\n" {
		t.Fatalf("got %+v, want only the reply to this request", r)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSerialPortFind(t *testing.T) {
	sys := t.TempDir()
	writeFile(t, filepath.Join(sys, "class/virtio-ports/vport0p1/name"), "org.qemu.guest_agent.0\n")
	writeFile(t, filepath.Join(sys, "class/virtio-ports/vport1p2/name"), "org.syncord.agent\n")
	writeFile(t, filepath.Join(sys, "class/virtio-ports/vport1p3/name"), "\n")
	for _, tc := range []struct {
		name, port, want, errPart string
	}{
		{"found", "org.syncord.agent", "vport1p2", ""},
		{"other", "org.qemu.guest_agent.0", "vport0p1", ""},
		{"missing lists the ports", "org.syncord.other", "", "ports there: org.qemu.guest_agent.0, org.syncord.agent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := (&SerialPort{Name: tc.port, SysRoot: sys}).find()
			if tc.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errPart) {
					t.Fatalf("err = %v, want %q", err, tc.errPart)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("find = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestSerialPortMknod opens a port whose device node is missing: the node is
// made from the sysfs dev file. The fake port's dev number is /dev/null's
// (1:3), a char device every Linux machine has.
func TestSerialPortMknod(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: mknod needs root (run the tests as root)")
	}
	sys, dev := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(sys, "class/virtio-ports/vport0p1/name"), "org.syncord.agent\n")
	writeFile(t, filepath.Join(sys, "class/virtio-ports/vport0p1/dev"), "1:3\n")
	f, err := (&SerialPort{Name: "org.syncord.agent", SysRoot: sys, DevRoot: dev}).Open()
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			t.Skipf("skipping: %v (the temp dir is on a nodev mount; set TMPDIR elsewhere)", err)
		}
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := os.Stat(filepath.Join(dev, "vport0p1"))
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("node: %v %v, want a char device", fi, err)
	}
	if n, err := f.Write([]byte("x")); n != 1 || err != nil {
		t.Fatalf("write to the made node: %d %v", n, err)
	}
	// Opening again uses the existing node.
	f2, err := (&SerialPort{Name: "org.syncord.agent", SysRoot: sys, DevRoot: dev}).Open()
	if err != nil {
		t.Fatal(err)
	}
	f2.Close()
}

func TestParseDevNumber(t *testing.T) {
	for _, tc := range []struct {
		in         string
		maj, min   uint32
		shouldFail bool
	}{
		{"251:1", 251, 1, false},
		{"251", 0, 0, true},
		{"a:1", 0, 0, true},
	} {
		maj, min, err := parseDevNumber(tc.in)
		if (err != nil) != tc.shouldFail || maj != tc.maj || min != tc.min {
			t.Errorf("parseDevNumber(%q) = %d %d %v", tc.in, maj, min, err)
		}
	}
}

// TestClientNoAgent is a host client of a serial port with no agent behind
// it: the socket accepts the request and nothing answers.
func TestClientNoAgent(t *testing.T) {
	p := newPipePort(t)
	c := NewClient(hostSide{p}, true)
	c.AcceptTimeout = 100 * time.Millisecond
	r := run(context.Background(), c, "topology")
	if !errors.Is(r.err, ErrNoAgent) || r.code != -1 {
		t.Fatalf("got %+v, want ErrNoAgent", r)
	}
}

// TestSerialSessionOnOneFile serves a port that stays open across host
// sessions: a socketpair stands for the port (its peer for QEMU's side).
// A request is served, the host end's close ends the session (cancelling
// the running request), the endpoint then sees POLLHUP and waits without
// reopening the port or spinning.
func TestSerialSessionOnOneFile(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Non-blocking, so the runtime poller serves it as it does the port's
	// character device.
	unix.SetNonblock(fds[0], true)
	port := os.NewFile(uintptr(fds[0]), "port")
	hostFile := os.NewFile(uintptr(fds[1]), "host")
	host, err := net.FileConn(hostFile) // a dup
	hostFile.Close()
	if err != nil {
		t.Fatal(err)
	}
	opens := 0
	var logs atomic.Int64
	p := &SerialPort{Name: "test", Retry: 20 * time.Millisecond, Logf: t.Logf, openFile: func() (*os.File, error) {
		opens++
		if opens > 1 {
			return nil, errors.New("opened twice")
		}
		return port, nil
	}}
	ep := &serialEndpoint{p: p, addr: "virtio-serial://test", closed: make(chan struct{})}
	f := newFake()
	srv := NewServer(Config{Run: f.run, Mutating: fakeMutating, KeepaliveTimeout: 300 * time.Millisecond, Logf: func(format string, a ...any) {
		logs.Add(1)
		t.Logf(format, a...)
	}})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ep.Serve(ctx, srv) }()

	host.Write([]byte("garbage"))
	c := NewClient(host, true)
	if r := run(context.Background(), c, "echo", "one"); r.err != nil || r.code != 0 || r.stdout != "one\n" {
		t.Fatalf("first request: %+v", r)
	}
	go run(context.Background(), c, "bench", "60s")
	<-f.started
	host.Close()
	select {
	case <-f.cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("request not cancelled after the host side closed")
	}
	time.Sleep(200 * time.Millisecond)
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if opens != 1 {
		t.Fatalf("port opened %d times, want once", opens)
	}
	if n := logs.Load(); n != 3 {
		t.Fatalf("%d log lines, want the 2 requests' and the keepalive cancel only (no errors while the host is away)", n)
	}
}

// flappingPort returns end of file once when told, as a guest port does
// when the host side closes and reopens (the reopen may be seen after the
// new client's data).
type flappingPort struct {
	agentSide
	flap atomic.Bool
}

func (p *flappingPort) Read(b []byte) (int, error) {
	if p.flap.CompareAndSwap(true, false) {
		return 0, io.EOF
	}
	return p.agentSide.Read(b)
}

// TestSerialEOFKeepsLiveRequest: end of file on a serial port while a
// request runs does not cancel it while its client sends keepalives, and
// its reply still arrives.
func TestSerialEOFKeepsLiveRequest(t *testing.T) {
	pp := newPipePort(t)
	port := &flappingPort{agentSide: agentSide{pp}}
	f := newFake()
	srv := NewServer(Config{Run: f.run, Mutating: fakeMutating, KeepaliveTimeout: 3 * time.Second})
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(context.Background(), port, true) }()
	c := NewClient(hostSide{pp}, true)
	res := make(chan result, 1)
	go func() { res <- run(context.Background(), c, "sleep", "1500ms") }()
	<-f.started
	port.flap.Store(true)
	// Wake the agent's blocked read so that it sees the end of file.
	c.send(Frame{Type: TypeKeepalive, ID: 0})
	r := <-res
	if r.err != nil || r.code != 0 || r.stdout != "slept\n" {
		t.Fatalf("request across an end of file: %+v", r)
	}
	if port.flap.Load() {
		t.Fatal("the agent never read the end of file")
	}
	select {
	case got := <-f.cancelled:
		t.Fatalf("request %q cancelled", got)
	default:
	}
	pp.hostW.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
