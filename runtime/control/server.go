package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Runner runs one syncord command (argv without the program name) writing
// to stdout and stderr and returns its exit status. It must return soon after
// ctx is cancelled.
type Runner func(ctx context.Context, stdout, stderr io.Writer, args []string) int

// Exit statuses produced by the agent itself rather than by the command.
const (
	ExitUsage    = 2
	ExitPanic    = 70
	ExitBusy     = 75
	ExitRefused  = 77
	ExitTimeout  = 124
	ExitCanceled = 130
)

// Defaults for the zero values of Config.
const (
	DefaultIdleTimeout    = 10 * time.Minute
	DefaultRequestTimeout = 12 * time.Hour
	DefaultWriteTimeout   = time.Minute
	// DefaultKeepaliveTimeout cancels a serial request whose client sent
	// no keepalive for that long.
	DefaultKeepaliveTimeout = 10 * time.Second
	// KeepaliveInterval is how often serial clients send keepalives.
	KeepaliveInterval = time.Second
	// serialPoll is how often a serial session reads again after end of
	// file while a request runs.
	serialPoll = 100 * time.Millisecond
)

// Config configures a Server. The zero value of every field but Run means
// the default.
type Config struct {
	// Run runs a request. Required.
	Run Runner
	// Mutating tells whether a request changes kernel state or loads the
	// machine; those run one at a time. Nil means every request is mutating.
	Mutating func(args []string) bool
	// Roots, when not nil, are the roots of path arguments: the server
	// opens them when a request starts running and hands the Runner a
	// Resolver in its context (ResolverFrom); the command resolves its
	// path arguments through it.
	Roots *Roots
	// Queue makes a mutating request wait for the running one instead of
	// being refused as busy; a client can ask for this per request too.
	Queue bool
	// IdleTimeout closes a socket connection without a request for that
	// long (not serial ports: they have no connection to close). Negative:
	// never.
	IdleTimeout time.Duration
	// RequestTimeout cancels a request running that long. Negative: never.
	RequestTimeout time.Duration
	// WriteTimeout gives up on a client that does not read its output for
	// that long, cancelling its request. Negative: never.
	WriteTimeout time.Duration
	// KeepaliveTimeout cancels a request on a serial port whose client
	// sent no frame for that long. Negative: never.
	KeepaliveTimeout time.Duration
	// Logf logs one line per request and per connection problem; nil
	// discards.
	Logf func(format string, args ...any)
}

// Server serves the control protocol.
type Server struct {
	cfg  Config
	slot chan struct{} // capacity 1: the mutating request running

	mu      sync.Mutex
	current string    // command of the mutating request holding slot
	since   time.Time // when it started
}

// NewServer returns a server for cfg.
func NewServer(cfg Config) *Server {
	if cfg.Run == nil {
		panic("control.NewServer: Config.Run is nil")
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.KeepaliveTimeout == 0 {
		cfg.KeepaliveTimeout = DefaultKeepaliveTimeout
	}
	return &Server{cfg: cfg, slot: make(chan struct{}, 1)}
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

// Serve accepts connections on l and serves each until ctx is cancelled;
// it then closes l and the connections, cancels their requests and returns
// nil once they have finished. An Accept error that is not temporary is
// returned.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if isTemporary(err) {
				// Out of file descriptors or a connection aborted before
				// accept: wait a little instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logf("accept on %s: %v; retrying in %v", l.Addr(), err, backoff)
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
					return nil
				}
				continue
			}
			return fmt.Errorf("accept on %s: %w", l.Addr(), err)
		}
		backoff = 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.ServeConn(ctx, c, false); err != nil {
				s.logf("connection from %s: %v", remoteName(c), err)
			}
		}()
	}
}

func isTemporary(err error) bool {
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ENOBUFS, syscall.ENOMEM, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func remoteName(c any) string {
	if nc, ok := c.(net.Conn); ok && nc.RemoteAddr() != nil {
		if a := nc.RemoteAddr().String(); a != "" && a != "@" {
			return nc.RemoteAddr().Network() + ":" + a
		}
		return nc.RemoteAddr().Network() + " peer"
	}
	return "serial port"
}

// conn is the write side of one connection.
type conn struct {
	rwc     io.ReadWriteCloser
	timeout time.Duration
	kill    context.CancelFunc // ends the connection after a write failure

	mu   sync.Mutex
	buf  []byte
	dead error
}

type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

func (c *conn) send(f Frame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead != nil {
		return c.dead
	}
	var err error
	c.buf, err = AppendFrame(c.buf[:0], f)
	if err != nil {
		return err
	}
	wd, canDeadline := c.rwc.(writeDeadliner)
	if canDeadline && c.timeout > 0 {
		wd.SetWriteDeadline(time.Now().Add(c.timeout))
	}
	if _, err = c.rwc.Write(c.buf); err != nil {
		c.dead = fmt.Errorf("write %s frame: %w", f.Type, err)
		c.kill()
		return c.dead
	}
	return nil
}

// stream is an io.Writer sending stdout or stderr frames of one request.
type stream struct {
	c  *conn
	t  Type
	id uint32
}

// chunk is the largest payload of one output frame.
const chunk = 32 << 10

func (w *stream) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		m := min(len(p), chunk)
		if err := w.c.send(Frame{Type: w.t, ID: w.id, Payload: p[:m]}); err != nil {
			return n, err
		}
		n += m
		p = p[m:]
	}
	return n, nil
}

// request is one running request of a connection.
type request struct {
	id       uint32
	cancel   context.CancelFunc
	done     chan struct{}
	lastSeen atomic.Int64 // unix nanoseconds of the client's last frame
}

func (r *request) finished() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// watch cancels r when its client sends nothing for timeout (serial ports);
// if r then does not finish within a grace period (a write blocked while
// the host side is closed), kill ends the session.
func (s *Server) watch(r *request, timeout time.Duration, kill context.CancelFunc) {
	t := time.NewTicker(min(timeout/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
		}
		if silent := time.Since(time.Unix(0, r.lastSeen.Load())); silent > timeout {
			s.logf("serial port: no keepalive from the client for %v, cancelling its request", silent.Round(time.Millisecond))
			r.cancel()
			select {
			case <-r.done:
			case <-time.After(2 * time.Second):
				kill()
			}
			return
		}
	}
}

// ServeConn serves one connection until the peer closes it, a frame is
// malformed (unless resync) or ctx is cancelled; it closes rwc and returns
// after the request it ran has finished. resync is for serial ports: garbage
// is skipped instead of ending the connection. The error is nil when the
// peer closed the connection cleanly.
func (s *Server) ServeConn(ctx context.Context, rwc io.ReadWriteCloser, resync bool) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { rwc.Close() })
	defer stop()
	defer rwc.Close()

	c := &conn{rwc: rwc, timeout: s.cfg.WriteTimeout, kill: cancel}
	var idle *time.Timer
	if s.cfg.IdleTimeout > 0 && !resync {
		idle = time.AfterFunc(s.cfg.IdleTimeout, func() {
			s.logf("connection from %s: idle for %v, closing", remoteName(rwc), s.cfg.IdleTimeout)
			cancel()
		})
		defer idle.Stop()
	}
	var cur *request
	defer func() {
		if cur != nil {
			// Close first: a request blocked writing to a peer that is
			// gone must not wait for the write timeout.
			cancel()
			rwc.Close()
			cur.cancel()
			<-cur.done
		}
	}()
	dec := NewDecoder(rwc)
	dec.Resync = resync
	for {
		f, err := dec.Decode()
		if err != nil {
			if resync && ctx.Err() == nil && cur != nil && !cur.finished() &&
				(errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
				// The host side closed, or the guest has not yet seen it
				// reopen: the request may belong to a client that is
				// back. Keep reading; the keepalive watch cancels it if
				// its client is gone.
				select {
				case <-ctx.Done():
				case <-time.After(serialPoll):
				}
				continue
			}
			if ctx.Err() != nil || errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		switch f.Type {
		case TypeRequest:
			if cur != nil {
				// One request at a time per connection: a new one means
				// the client gave up on the old one.
				cur.cancel()
				<-cur.done
				cur = nil
			}
			args, err := DecodeArgs(f.Payload)
			if err != nil {
				if !resync {
					return err
				}
				s.logf("serial port: %v", err)
				continue
			}
			if idle != nil {
				idle.Stop()
			}
			rctx, rcancel := context.WithCancel(ctx)
			cur = &request{id: f.ID, cancel: rcancel, done: make(chan struct{})}
			cur.lastSeen.Store(time.Now().UnixNano())
			if resync && s.cfg.KeepaliveTimeout > 0 {
				go s.watch(cur, s.cfg.KeepaliveTimeout, cancel)
			}
			go func(r *request) {
				defer close(r.done)
				defer rcancel()
				s.run(rctx, c, r.id, f.Flags, args)
				if idle != nil {
					idle.Reset(s.cfg.IdleTimeout)
				}
			}(cur)
		case TypeCancel:
			if cur != nil && cur.id == f.ID {
				cur.cancel()
			}
		case TypeKeepalive:
			if cur != nil && cur.id == f.ID {
				cur.lastSeen.Store(time.Now().UnixNano())
			}
		default:
			if !resync {
				return fmt.Errorf("decode frame: %w: %s frame from a client", ErrMalformed, f.Type)
			}
		}
	}
}

// run runs one request and sends its exit frame.
func (s *Server) run(ctx context.Context, c *conn, id uint32, flags uint16, args []string) {
	start := time.Now()
	c.send(Frame{Type: TypeAccepted, ID: id})
	stdout := &stream{c: c, t: TypeStdout, id: id}
	stderr := &stream{c: c, t: TypeStderr, id: id}
	code := s.runChecked(ctx, stdout, stderr, flags, args)
	s.logf("request %q: exit status %d after %v", strings.Join(args, " "), code, time.Since(start).Round(time.Millisecond))
	c.send(Frame{Type: TypeExit, ID: id, Payload: EncodeExit(code)})
}

func (s *Server) runChecked(ctx context.Context, stdout, stderr io.Writer, flags uint16, args []string) (code int) {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "syncord agent: empty request (send the arguments of a syncord command)")
		return ExitUsage
	}
	if args[0] == "agent" {
		fmt.Fprintln(stderr, "syncord agent: refused: the agent command cannot run over the control connection (start it in the guest)")
		return ExitRefused
	}
	if s.cfg.Mutating == nil || s.cfg.Mutating(args) {
		release, err := s.acquire(ctx, flags&FlagQueue != 0 || s.cfg.Queue, args)
		if err != nil {
			fmt.Fprintf(stderr, "syncord agent: %v\n", err)
			if errors.Is(err, errBusy) {
				return ExitBusy
			}
			return ExitCanceled
		}
		defer release()
	}
	// Paths are resolved now that the request runs, not when it arrived:
	// a queued request sees the file system as it is when it starts.
	if s.cfg.Roots != nil {
		z, err := s.cfg.Roots.Open()
		if err != nil {
			fmt.Fprintf(stderr, "syncord agent: refused: %v\n", err)
			return ExitRefused
		}
		defer z.Close()
		ctx = WithResolver(ctx, z)
	}
	if s.cfg.RequestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.RequestTimeout)
		defer cancel()
	}
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(stderr, "syncord agent: internal error in %q: %v\n%s", args[0], p, debug.Stack())
			code = ExitPanic
		}
	}()
	code = s.cfg.Run(ctx, stdout, stderr, args)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		fmt.Fprintf(stderr, "syncord agent: request timed out after %v (the agent's --request-timeout)\n", s.cfg.RequestTimeout)
		code = ExitTimeout
	}
	return code
}

var errBusy = errors.New("busy")

type busyError struct {
	cmd   string
	since time.Duration
}

func (e *busyError) Error() string {
	return fmt.Sprintf("busy: %s is running (started %.0fs ago); try again", e.cmd, e.since.Seconds())
}
func (e *busyError) Unwrap() error { return errBusy }

// acquire takes the mutating slot, waiting for it when queue is set.
func (s *Server) acquire(ctx context.Context, queue bool, args []string) (release func(), err error) {
	name := commandName(args)
	take := func() func() {
		s.mu.Lock()
		s.current, s.since = name, time.Now()
		s.mu.Unlock()
		return func() {
			s.mu.Lock()
			s.current = ""
			s.mu.Unlock()
			<-s.slot
		}
	}
	select {
	case s.slot <- struct{}{}:
		return take(), nil
	default:
	}
	if !queue {
		s.mu.Lock()
		defer s.mu.Unlock()
		return nil, &busyError{cmd: s.current, since: time.Since(s.since)}
	}
	select {
	case s.slot <- struct{}{}:
		return take(), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("cancelled while waiting for the running %s", name)
	}
}

// commandName is the command and its subcommand words, for messages:
// "bench will-it-scale", "policy install".
func commandName(args []string) string {
	var words []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") || len(words) == 2 {
			break
		}
		words = append(words, a)
	}
	return strings.Join(words, " ")
}
