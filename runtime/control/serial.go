package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/syncord/syncord/internal/pseudofs"
	"golang.org/x/sys/unix"
)

// DefaultSerialRetry is how often a serial endpoint reopens its port while
// the host side is closed.
const DefaultSerialRetry = 200 * time.Millisecond

// SerialPort is a guest virtio-serial port found by name.
//
// The guest's virtio_console driver returns end of file from read while no
// host client is connected, and blocks writes; the endpoint then ends the
// session (cancelling a running request, like a dropped socket connection)
// and polls the port every Retry until a host client is back, so host
// clients can come and go.
type SerialPort struct {
	Name    string // the port name, QEMU's virtserialport name=
	SysRoot string // "/sys" when empty
	DevRoot string // "/dev" when empty
	Retry   time.Duration
	Logf    func(format string, args ...any)

	// Test hooks: open makes every call one host session (pipes);
	// openFile replaces Open (a socketpair standing for the port).
	open     func() (io.ReadWriteCloser, error)
	openFile func() (*os.File, error)
}

func (p *SerialPort) sysRoot() string {
	if p.SysRoot == "" {
		return "/sys"
	}
	return p.SysRoot
}

func (p *SerialPort) devRoot() string {
	if p.DevRoot == "" {
		return "/dev"
	}
	return p.DevRoot
}

// find returns the device name (vportNpM) of the port named p.Name by
// reading /sys/class/virtio-ports/*/name.
func (p *SerialPort) find() (string, error) {
	if p.open != nil || p.openFile != nil {
		return "test", nil
	}
	dir := filepath.Join(p.sysRoot(), "class", "virtio-ports")
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return "", fmt.Errorf("find virtio-serial port %q: %w", p.Name, err)
	}
	var names []string
	for _, e := range ents {
		b, err := pseudofs.Read(filepath.Join(dir, e.Name(), "name"), 256)
		if err != nil {
			continue // a port without a name
		}
		n := string(bytes.TrimSpace(b))
		if n == p.Name {
			return e.Name(), nil
		}
		if n != "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	others := "none"
	if len(names) > 0 {
		others = strings.Join(names, ", ")
	}
	return "", fmt.Errorf("find virtio-serial port %q: not in %s (ports there: %s; start QEMU with -device virtserialport,name=%s and a kernel with CONFIG_VIRTIO_CONSOLE)", p.Name, dir, others, p.Name)
}

// Open finds the port and opens /dev/<vportNpM> for reading and writing. When
// the node is missing (no udev, or a private /dev) it is made with mknod from
// the major:minor in /sys/class/virtio-ports/<vportNpM>/dev.
func (p *SerialPort) Open() (*os.File, error) {
	dev, err := p.find()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(p.devRoot(), dev)
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err == nil {
		return f, nil
	}
	if !os.IsNotExist(err) {
		return nil, fmt.Errorf("open virtio-serial port %q: %w (is another agent running?)", p.Name, err)
	}
	devFile := filepath.Join(p.sysRoot(), "class", "virtio-ports", dev, "dev")
	b, err := pseudofs.Read(devFile, 256)
	if err != nil {
		return nil, fmt.Errorf("open virtio-serial port %q: %s missing and %w", p.Name, path, err)
	}
	major, minor, err := parseDevNumber(string(bytes.TrimSpace(b)))
	if err != nil {
		return nil, fmt.Errorf("open virtio-serial port %q: %s: %w", p.Name, devFile, err)
	}
	if err := unix.Mknod(path, unix.S_IFCHR|0o600, int(unix.Mkdev(major, minor))); err != nil && !os.IsExist(err) {
		return nil, fmt.Errorf("open virtio-serial port %q: mknod %s c %d %d: %w (needs CAP_MKNOD)", p.Name, path, major, minor, err)
	}
	f, err = os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("open virtio-serial port %q: %w", p.Name, err)
	}
	return f, nil
}

func parseDevNumber(s string) (major, minor uint32, err error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("device number %q: want MAJOR:MINOR", s)
	}
	ma, err1 := strconv.ParseUint(a, 10, 32)
	mi, err2 := strconv.ParseUint(b, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("device number %q: want MAJOR:MINOR", s)
	}
	return uint32(ma), uint32(mi), nil
}

type serialEndpoint struct {
	p      *SerialPort
	addr   string
	once   sync.Once
	closed chan struct{}
}

func (e *serialEndpoint) String() string { return e.addr }

func (e *serialEndpoint) Close() error {
	e.once.Do(func() { close(e.closed) })
	return nil
}

// Serve opens the port and serves one host session after another on it
// until ctx is cancelled or the endpoint closed.
//
// The port stays open across host sessions: closing it would make the guest
// driver discard input that a reconnecting host client may already have
// sent. A session starts when poll(2) on the port shows a connected host
// (no POLLHUP) and ends when read returns end of file (the host closed), which
// cancels its running request. While the host is away the port is polled
// every Retry. A read or write error other than end of file closes the port
// (hot unplug) and it is opened again, found by name.
func (e *serialEndpoint) Serve(ctx context.Context, s *Server) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-e.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	retry := e.p.Retry
	if retry <= 0 {
		retry = DefaultSerialRetry
	}
	logf := func(format string, a ...any) {
		if e.p.Logf != nil {
			e.p.Logf(format, a...)
		}
	}
	sleep := func() {
		select {
		case <-ctx.Done():
		case <-time.After(retry):
		}
	}
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	var lastErr string
	for ctx.Err() == nil {
		if e.p.open != nil {
			// Tests: every open is one host session.
			if rwc, err := e.p.open(); err == nil {
				if err := s.ServeConn(ctx, rwc, true); err != nil {
					logf("%s: %v", e.addr, err)
				}
			}
			sleep()
			continue
		}
		if f == nil {
			var err error
			open := e.p.Open
			if e.p.openFile != nil {
				open = e.p.openFile
			}
			if f, err = open(); err != nil {
				if msg := err.Error(); msg != lastErr {
					logf("%s: %v; retrying every %v", e.addr, err, retry)
					lastErr = msg
				}
				sleep()
				continue
			}
			if lastErr != "" {
				logf("%s: open again", e.addr)
			}
			lastErr = ""
		}
		present, err := hostPresent(f, retry)
		if err != nil {
			logf("%s: poll: %v; reopening", e.addr, err)
			f.Close()
			f = nil
			sleep()
			continue
		}
		if !present {
			sleep()
			continue
		}
		sess := &serialSession{f: f}
		if err := s.ServeConn(ctx, sess, true); err != nil {
			logf("%s: %v", e.addr, err)
		}
		f.SetDeadline(time.Time{})
		if err := sess.failure(); err != nil {
			logf("%s: %v; reopening", e.addr, err)
			f.Close()
			f = nil
			sleep()
		}
	}
	return nil
}

// hostPresent polls the port for up to wait: true when input is waiting
// or the host side is connected (no POLLHUP; virtio_console reports POLLHUP
// while no host client is connected, and POLLIN too, since read would not
// block: it returns end of file).
func hostPresent(f *os.File, wait time.Duration) (bool, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return false, err
	}
	var revents int16
	var perr error
	cerr := rc.Control(func(fd uintptr) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			_, perr = unix.Poll(pfd, int(wait.Milliseconds()))
			if perr != unix.EINTR {
				break
			}
		}
		revents = pfd[0].Revents
	})
	if cerr != nil {
		return false, cerr
	}
	if perr != nil {
		return false, perr
	}
	if revents&(unix.POLLERR|unix.POLLNVAL) != 0 {
		return false, fmt.Errorf("port error (revents %#x)", revents)
	}
	return revents&unix.POLLHUP == 0, nil
}

// serialSession is one host session on an open port. Closing it ends the
// session (unblocking its reads and writes with a deadline) but leaves the
// port open.
type serialSession struct {
	f      *os.File
	mu     sync.Mutex
	closed bool
	err    error // the first read error other than end of file, a deadline or closing
}

func (s *serialSession) Read(b []byte) (int, error) {
	n, err := s.f.Read(b)
	return n, s.filter(err, true)
}

// Write errors end the session but do not count as a port failure: a
// write racing the host's close is no reason to reopen.
func (s *serialSession) Write(b []byte) (int, error) {
	n, err := s.f.Write(b)
	return n, s.filter(err, false)
}

func (s *serialSession) filter(err error, record bool) error {
	if err == nil || err == io.EOF {
		return err
	}
	if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) {
		return io.EOF // the host side went away
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return os.ErrClosed
	}
	if record && s.err == nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		s.err = err
	}
	return err
}

func (s *serialSession) SetWriteDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return os.ErrClosed
	}
	return s.f.SetWriteDeadline(t)
}

func (s *serialSession) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.f.SetDeadline(time.Now())
	}
	return nil
}

func (s *serialSession) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
