package control

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultSerialRetry is how often a serial endpoint reopens its port while
// the host side is closed.
const DefaultSerialRetry = 200 * time.Millisecond

// SerialPort is a guest virtio-serial port found by name.
//
// The guest's virtio_console driver returns end of file from read while no
// host client is connected, and blocks writes; the endpoint then closes the
// port (cancelling a running request, like a dropped socket connection),
// waits Retry and opens it again, so host clients can come and go.
type SerialPort struct {
	Name    string // the port name, QEMU's virtserialport name=
	SysRoot string // "/sys" when empty
	DevRoot string // "/dev" when empty
	Retry   time.Duration
	Logf    func(format string, args ...any)

	// open replaces Open in tests.
	open func() (io.ReadWriteCloser, error)
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
	if p.open != nil {
		return "test", nil
	}
	dir := filepath.Join(p.sysRoot(), "class", "virtio-ports")
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return "", fmt.Errorf("find virtio-serial port %q: %w", p.Name, err)
	}
	var names []string
	for _, e := range ents {
		b, err := readSmall(filepath.Join(dir, e.Name(), "name"))
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

// readSmall reads a sysfs attribute with one bounded read.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 256)
	n, err := f.Read(b)
	if err != nil && err != io.EOF {
		return nil, err
	}
	return b[:n], nil
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
	b, err := readSmall(devFile)
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

func (p *SerialPort) openRW() (io.ReadWriteCloser, error) {
	if p.open != nil {
		return p.open()
	}
	return p.Open()
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

// Serve opens the port, serves it until the host side closes, and opens it
// again, until ctx is cancelled or the endpoint closed.
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
	var lastErr string
	for ctx.Err() == nil {
		rwc, err := e.p.openRW()
		if err != nil {
			if msg := err.Error(); msg != lastErr && e.p.Logf != nil {
				e.p.Logf("%s: %v; retrying every %v", e.addr, err, retry)
				lastErr = msg
			}
		} else {
			if lastErr != "" && e.p.Logf != nil {
				e.p.Logf("%s: open again", e.addr)
			}
			lastErr = ""
			if err := s.ServeConn(ctx, rwc, true); err != nil && e.p.Logf != nil {
				e.p.Logf("%s: %v", e.addr, err)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(retry):
		}
	}
	return nil
}
