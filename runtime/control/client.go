package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/vsock"
	"golang.org/x/sys/unix"
)

// DefaultCancelGrace is how long Client.Run waits for the exit frame after
// sending a cancel before it drops the connection.
const DefaultCancelGrace = 10 * time.Second

// Client runs commands on an agent over one connection.
type Client struct {
	rwc io.ReadWriteCloser
	dec *Decoder

	// Queue asks the agent to wait for a busy mutating command instead of
	// refusing.
	Queue bool
	// CancelGrace overrides DefaultCancelGrace.
	CancelGrace time.Duration
	// AcceptTimeout, when positive, bounds the wait for the agent to
	// acknowledge a request; without it a client of a serial port whose
	// agent is not running waits forever.
	AcceptTimeout time.Duration
	// Accepted and Exited are when the last Run received the agent's
	// accepted and exit frames: the command's run time as the host sees
	// it, so a caller can tell its own overhead from the command's. The
	// agent sends the accepted frame just before it starts the command,
	// so on a busy host the span can be shorter than the command by the
	// time that frame took to be read.
	Accepted, Exited time.Time

	wmu  sync.Mutex
	wbuf []byte
}

// NewClient returns a client on an open connection. resync is for the host
// side of a serial port, where stale bytes of an earlier session may arrive.
func NewClient(rwc io.ReadWriteCloser, resync bool) *Client {
	d := NewDecoder(rwc)
	d.Resync = resync
	return &Client{rwc: rwc, dec: d}
}

// Dial connects to an agent at addr: unix:///path, vsock://CID:PORT, or
// serial:///path for the host-side unix socket of the agent's virtio-serial
// port (QEMU's chardev socket).
func Dial(ctx context.Context, addr string) (*Client, error) {
	scheme, rest, ok := strings.Cut(addr, "://")
	if !ok {
		return nil, fmt.Errorf("dial %q: want unix:///path, vsock://CID:PORT or serial:///path", addr)
	}
	switch scheme {
	case "unix", "serial":
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", rest)
		if err != nil {
			return nil, fmt.Errorf("dial agent at %s: %w (is the agent or the VM running?)", addr, err)
		}
		return NewClient(c, scheme == "serial"), nil
	case "vsock":
		cid, port, err := ParseVsockAddr(rest)
		if err != nil {
			return nil, fmt.Errorf("dial %q: %w", addr, err)
		}
		c, err := dialVsock(ctx, cid, port)
		if err != nil {
			return nil, fmt.Errorf("dial agent at vsock CID %d port %d: %w (is the agent listening on vsock://:%d? for CID 1 the guest needs the vsock_loopback module)", cid, port, err, port)
		}
		return NewClient(c, false), nil
	}
	return nil, fmt.Errorf("dial %q: unknown scheme %q (want unix, vsock or serial)", addr, scheme)
}

func dialVsock(ctx context.Context, cid, port uint32) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	if cid == LocalCID {
		// Without vsock_loopback the kernel would send CID 1 to the
		// hypervisor's transport; make sure the loopback is there first.
		if err := LocalVsockAvailable(); err != nil {
			return nil, err
		}
	}
	ch := make(chan result, 1)
	go func() {
		c, err := vsock.Dial(cid, port, nil)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// ParseVsockAddr parses "CID:PORT" (CID may be empty, meaning any).
func ParseVsockAddr(s string) (cid, port uint32, err error) {
	c, p, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("vsock address %q: want CID:PORT", s)
	}
	if c == "" {
		cid = unix.VMADDR_CID_ANY
	} else {
		v, err := strconv.ParseUint(c, 10, 32)
		if err != nil {
			return 0, 0, fmt.Errorf("vsock address %q: bad CID: %w", s, err)
		}
		cid = uint32(v)
	}
	v, err := strconv.ParseUint(p, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("vsock address %q: bad port: %w", s, err)
	}
	return cid, uint32(v), nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.rwc.Close() }

func (c *Client) send(f Frame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var err error
	if c.wbuf, err = AppendFrame(c.wbuf[:0], f); err != nil {
		return err
	}
	_, err = c.rwc.Write(c.wbuf)
	return err
}

// ErrNoAgent is returned by Run when the agent did not acknowledge the
// request within AcceptTimeout.
var ErrNoAgent = errors.New("no agent answering (is syncord agent running in the guest and listening on this transport?)")

// ErrCanceled is returned by Run, with the agent's exit status, when ctx
// ended the request.
var ErrCanceled = errors.New("request cancelled")

// Run runs syncord args on the agent, copying its output to stdout and
// stderr, and returns its exit status. When ctx is done it sends a cancel
// and waits up to CancelGrace for the exit status, then returns it with an
// error wrapping ErrCanceled (or drops the connection and returns -1). A
// connection failure returns -1 and the error.
func (c *Client) Run(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	p, err := EncodeArgs(args)
	if err != nil {
		return -1, err
	}
	id := rand.Uint32()
	var flags uint16
	if c.Queue {
		flags |= FlagQueue
	}
	if err := c.send(Frame{Type: TypeRequest, Flags: flags, ID: id, Payload: p}); err != nil {
		return -1, fmt.Errorf("send request: %w", err)
	}
	grace := c.CancelGrace
	if grace <= 0 {
		grace = DefaultCancelGrace
	}
	var giveUp *time.Timer
	stop := context.AfterFunc(ctx, func() {
		c.send(Frame{Type: TypeCancel, ID: id})
		c.wmu.Lock()
		giveUp = time.AfterFunc(grace, func() { c.rwc.Close() })
		c.wmu.Unlock()
	})
	defer func() {
		stop()
		c.wmu.Lock()
		if giveUp != nil {
			giveUp.Stop()
		}
		c.wmu.Unlock()
	}()
	var noAgent atomic.Bool
	var ack *time.Timer
	if c.AcceptTimeout > 0 {
		ack = time.AfterFunc(c.AcceptTimeout, func() {
			noAgent.Store(true)
			c.rwc.Close()
		})
		defer ack.Stop()
	}
	if c.dec.Resync {
		// Serial: tell the agent this client is still there.
		stopKeep := make(chan struct{})
		defer close(stopKeep)
		go func() {
			t := time.NewTicker(KeepaliveInterval)
			defer t.Stop()
			for {
				select {
				case <-stopKeep:
					return
				case <-t.C:
					if c.send(Frame{Type: TypeKeepalive, ID: id}) != nil {
						return
					}
				}
			}
		}()
	}
	for {
		f, err := c.dec.Decode()
		if err != nil {
			if noAgent.Load() {
				return -1, fmt.Errorf("%w: no answer within %v", ErrNoAgent, c.AcceptTimeout)
			}
			if ctx.Err() != nil {
				return -1, fmt.Errorf("%w: no exit status from the agent within %v: %v", ErrCanceled, grace, ctx.Err())
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return -1, fmt.Errorf("read reply: %w (the agent closed the connection)", err)
		}
		if f.ID != id {
			continue // the tail of an earlier request on a serial port
		}
		if ack != nil {
			ack.Stop() // any frame of this request shows the agent is there
		}
		switch f.Type {
		case TypeAccepted:
			c.Accepted = time.Now()
		case TypeStdout:
			if _, err := stdout.Write(f.Payload); err != nil {
				return -1, fmt.Errorf("write output: %w", err)
			}
		case TypeStderr:
			if _, err := stderr.Write(f.Payload); err != nil {
				return -1, fmt.Errorf("write output: %w", err)
			}
		case TypeExit:
			c.Exited = time.Now()
			code, err := DecodeExit(f.Payload)
			if err != nil {
				return -1, err
			}
			if ctx.Err() != nil {
				return code, fmt.Errorf("%w: %v", ErrCanceled, ctx.Err())
			}
			return code, nil
		default:
			if !c.dec.Resync {
				return -1, fmt.Errorf("read reply: %w: %s frame from the agent", ErrMalformed, f.Type)
			}
		}
	}
}

// LocalVsockAvailable reports whether vsock loopback (CID 1) works here: a
// socket binds to VMADDR_CID_LOCAL only when the vsock_loopback transport is
// loaded. It connects to nothing.
func LocalVsockAvailable() error {
	l, err := vsock.ListenContextID(LocalCID, 0, nil)
	if err != nil {
		return fmt.Errorf("no vsock loopback (CID 1): %w (try: modprobe vsock_loopback)", err)
	}
	return l.Close()
}
