package control

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PeerCred is the identity of a unix socket peer at connect time.
type PeerCred struct {
	PID    int32
	UID    uint32
	GID    uint32
	Groups []uint32 // supplementary groups (SO_PEERGROUPS)
}

// peerCred reads SO_PEERCRED and SO_PEERGROUPS of c.
func peerCred(c *net.UnixConn) (*PeerCred, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var pc PeerCred
	var serr error
	err = rc.Control(func(fd uintptr) {
		u, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			serr = fmt.Errorf("getsockopt SO_PEERCRED: %w", err)
			return
		}
		pc.PID, pc.UID, pc.GID = u.Pid, u.Uid, u.Gid
		pc.Groups, serr = peerGroups(int(fd))
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return nil, err
	}
	return &pc, nil
}

// peerGroups reads SO_PEERGROUPS (Linux 4.13): the peer's supplementary
// groups at connect time.
func peerGroups(fd int) ([]uint32, error) {
	buf := make([]uint32, 32)
	for {
		n := uint32(len(buf) * 4)
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		switch e {
		case 0:
			return buf[:n/4], nil
		case unix.ERANGE:
			if int(n/4) <= len(buf) || n > 1<<20 {
				return nil, fmt.Errorf("getsockopt SO_PEERGROUPS: %w", e)
			}
			buf = make([]uint32, n/4)
		case unix.ENOPROTOOPT:
			return nil, nil // before Linux 4.13: the primary group only
		default:
			return nil, fmt.Errorf("getsockopt SO_PEERGROUPS: %w", e)
		}
	}
}

// credListener accepts unix socket peers that are root, the agent's own
// user, or members (primary or supplementary) of an allowed group.
type credListener struct {
	*net.UnixListener
	uid   uint32
	allow []uint32
	logf  func(string, ...any)
}

// allowed tells whether pc may use the agent.
func (l *credListener) allowed(pc *PeerCred) bool {
	if pc.UID == 0 || pc.UID == l.uid || slices.Contains(l.allow, pc.GID) {
		return true
	}
	for _, g := range pc.Groups {
		if slices.Contains(l.allow, g) {
			return true
		}
	}
	return false
}

func (l *credListener) who() string {
	s := "root"
	if l.uid != 0 {
		s += ", uid " + strconv.FormatUint(uint64(l.uid), 10)
	}
	if len(l.allow) == 0 {
		return s + " (start the agent with --allow-group to let a group in)"
	}
	gs := make([]string, len(l.allow))
	for i, g := range l.allow {
		gs[i] = strconv.FormatUint(uint64(g), 10)
	}
	return s + " and members of the groups " + strings.Join(gs, ", ")
}

func (l *credListener) Accept() (net.Conn, error) {
	for {
		c, err := l.UnixListener.AcceptUnix()
		if err != nil {
			return nil, err
		}
		pc, err := peerCred(c)
		if err == nil && l.allowed(pc) {
			return c, nil
		}
		var why string
		if err != nil {
			why = fmt.Sprintf("unix: refused a connection: %v", err)
		} else {
			why = fmt.Sprintf("unix: refused a connection from pid %d uid %d gid %d: only %s may connect", pc.PID, pc.UID, pc.GID, l.who())
		}
		if l.logf != nil {
			l.logf("%s", why)
		}
		go refuse(c, why)
	}
}

// refuseTimeout is how long a refused peer has to send its request and
// read the answer.
const refuseTimeout = 5 * time.Second

// refuse answers the first request of a refused peer with the reason and
// ExitRefused, then closes the connection.
func refuse(c net.Conn, why string) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(refuseTimeout))
	f, err := NewDecoder(c).Decode()
	if err != nil || f.Type != TypeRequest {
		return
	}
	var b []byte
	b, _ = AppendFrame(b, Frame{Type: TypeStderr, ID: f.ID, Payload: []byte("syncord agent: " + why + "\n")})
	b, _ = AppendFrame(b, Frame{Type: TypeExit, ID: f.ID, Payload: EncodeExit(ExitRefused)})
	c.Write(b)
}

// listenUnixCred is ListenUnix with the peer check: mode 0600, or 0660 and
// owned by the first allowed group when groups are allowed.
func listenUnixCred(path string, allow []uint32, logf func(string, ...any)) (net.Listener, error) {
	l, err := ListenUnix(path)
	if err != nil {
		return nil, err
	}
	if len(allow) > 0 {
		if err := os.Chown(path, -1, int(allow[0])); err != nil {
			l.Close()
			return nil, fmt.Errorf("listen unix %s: chown to group %d: %w", path, allow[0], err)
		}
		if err := os.Chmod(path, 0o660); err != nil {
			l.Close()
			return nil, fmt.Errorf("listen unix %s: chmod 0660: %w", path, err)
		}
	}
	return &credListener{UnixListener: l.(*net.UnixListener), uid: uint32(os.Geteuid()), allow: allow, logf: logf}, nil
}
