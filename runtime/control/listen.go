package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/mdlayher/vsock"
)

// Defaults of the agent's transports.
const (
	// DefaultVsockPort is the agent's vsock port.
	DefaultVsockPort = 5250
	// DefaultPortName is the name of the agent's virtio-serial port
	// (QEMU: -device virtserialport,name=org.syncord.agent).
	DefaultPortName = "org.syncord.agent"
	// HostCID is the vsock context id of the host, the only peer accepted
	// by default.
	HostCID = 2
	// LocalCID is VMADDR_CID_LOCAL, the loopback of the vsock_loopback
	// module.
	LocalCID = 1
)

// ListenOptions configures Listen. The zero value means the defaults.
type ListenOptions struct {
	// AllowCIDs are vsock context ids accepted besides HostCID.
	AllowCIDs []uint32
	// AllowGIDs are the groups whose members (primary or supplementary
	// group, SO_PEERCRED and SO_PEERGROUPS) may connect to a unix socket
	// besides root and the agent's own user; the socket is then mode 0660
	// and owned by the first of them (else 0600).
	AllowGIDs []uint32
	// SysRoot is where sysfs is mounted ("/sys" when empty).
	SysRoot string
	// DevRoot is where device nodes are ("/dev" when empty).
	DevRoot string
	// Logf logs reconnections of serial ports; nil discards.
	Logf func(format string, args ...any)
}

// Endpoint is an open listen address.
type Endpoint interface {
	// Serve serves the endpoint with s until ctx is cancelled.
	Serve(ctx context.Context, s *Server) error
	// Close stops accepting; Serve returns.
	Close() error
	// String is the listen address.
	String() string
}

// Listen opens a listen address: unix:///path, vsock://:PORT (or
// vsock://CID:PORT to bind one CID) or virtio-serial://NAME. A unix socket
// accepts only root, the agent's own user and members of opt.AllowGIDs,
// whatever its file mode: others are answered "refused" (ExitRefused) and
// logged.
func Listen(addr string, opt ListenOptions) (Endpoint, error) {
	scheme, rest, ok := strings.Cut(addr, "://")
	if !ok {
		return nil, fmt.Errorf("listen %q: want unix:///path, vsock://:PORT or virtio-serial://NAME", addr)
	}
	switch scheme {
	case "unix":
		l, err := listenUnixCred(rest, opt.AllowGIDs, opt.Logf)
		if err != nil {
			return nil, err
		}
		return &listenerEndpoint{l: l, addr: addr}, nil
	case "vsock":
		cid, port, err := ParseVsockAddr(rest)
		if err != nil {
			return nil, fmt.Errorf("listen %q: %w", addr, err)
		}
		l, err := ListenVsock(cid, port, opt.AllowCIDs, opt.Logf)
		if err != nil {
			return nil, err
		}
		return &listenerEndpoint{l: l, addr: addr}, nil
	case "virtio-serial":
		if rest == "" {
			rest = DefaultPortName
		}
		p := &SerialPort{Name: rest, SysRoot: opt.SysRoot, DevRoot: opt.DevRoot, Logf: opt.Logf}
		// Fail now, not in Serve, when the port does not exist.
		if _, err := p.find(); err != nil {
			return nil, err
		}
		return &serialEndpoint{p: p, addr: addr, closed: make(chan struct{})}, nil
	}
	return nil, fmt.Errorf("listen %q: unknown scheme %q (want unix, vsock or virtio-serial)", addr, scheme)
}

type listenerEndpoint struct {
	l    net.Listener
	addr string
}

func (e *listenerEndpoint) Serve(ctx context.Context, s *Server) error { return s.Serve(ctx, e.l) }
func (e *listenerEndpoint) Close() error                               { return e.l.Close() }
func (e *listenerEndpoint) String() string                             { return e.addr }

// ListenUnix listens on a unix socket at path with mode 0600, removing a
// stale socket left by an agent that died (but not a live one, nor a file
// that is not a socket).
func ListenUnix(path string) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("listen unix: empty path")
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen unix %s: exists and is not a socket (remove it or choose another path)", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen unix %s: an agent is already listening there", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("listen unix %s: remove stale socket: %w", path, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("listen unix %s: %w", path, err)
	}
	// The socket is created with the umask applied; narrow it before
	// anyone can connect.
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen unix %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen unix %s: chmod 0600: %w", path, err)
	}
	return l, nil
}

// ListenVsock listens on vsock port (cid VMADDR_CID_ANY binds every local
// CID, which includes the loopback CID 1) and accepts only connections from
// the host (CID 2) and the CIDs in allow; others are closed and logged.
func ListenVsock(cid, port uint32, allow []uint32, logf func(string, ...any)) (net.Listener, error) {
	l, err := vsock.ListenContextID(cid, port, nil)
	if err != nil {
		return nil, fmt.Errorf("listen vsock port %d: %w (does the kernel have CONFIG_VSOCKETS and a transport: vmw_vsock_virtio_transport in a guest, vsock_loopback for CID 1?)", port, err)
	}
	ok := map[uint32]bool{HostCID: true}
	for _, c := range allow {
		ok[c] = true
	}
	return &cidListener{Listener: l, allow: ok, logf: logf}, nil
}

type cidListener struct {
	net.Listener
	allow map[uint32]bool
	logf  func(string, ...any)
}

func (l *cidListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		a, ok := c.RemoteAddr().(*vsock.Addr)
		if ok && l.allow[a.ContextID] {
			return c, nil
		}
		if l.logf != nil {
			l.logf("vsock: refused connection from %v (only the host CID %d is accepted; start the agent with --allow-cid to allow more)", c.RemoteAddr(), HostCID)
		}
		c.Close()
	}
}
