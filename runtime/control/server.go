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
	// ExitStopped ends a request the agent cancelled because it is
	// stopping (SIGTERM): 128+SIGTERM.
	ExitStopped = 143
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
	// DefaultMaxConns bounds the socket connections served at once.
	DefaultMaxConns = 256
	// DefaultFrameTimeout bounds how long the rest of a frame may take to
	// arrive once its first byte has.
	DefaultFrameTimeout = 10 * time.Second
	// DefaultStopGrace is how long a stopping agent waits for cancelled
	// requests to end and send their exit frames before it closes their
	// connections.
	DefaultStopGrace = 10 * time.Second
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
	// MaxConns bounds the socket connections Serve serves at once. A new
	// connection beyond it closes an idle one (no request running) to make
	// room: the oldest of those that never sent a whole frame, else the
	// one idle the longest; when every connection runs a request the new
	// one is closed. Negative: no bound.
	MaxConns int
	// FrameTimeout closes a socket connection whose frame, once its first
	// byte arrived, is not complete within that long (a client that sends
	// half a header and stops). Negative: never.
	FrameTimeout time.Duration
	// StopGrace is how long Serve, when its context ends, waits for the
	// cancelled requests to send their exit frames (status ExitStopped)
	// before closing their connections. Negative: do not wait.
	StopGrace time.Duration
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

	accepted  atomic.Int64 // socket connections accepted
	connMu    sync.Mutex
	conns     map[*tracked]struct{} // socket connections being served
	evicted   int                   // connections closed for the bound since the last log line
	evictLog  time.Time             // when that line was logged
	refused   int
	refuseLog time.Time
}

// tracked is one socket connection under MaxConns.
type tracked struct {
	close   context.CancelFunc
	running atomic.Bool  // a request runs
	framed  atomic.Bool  // a whole frame arrived
	last    atomic.Int64 // unix nanoseconds of the last frame (or accept)
}

// evictBefore orders eviction candidates: connections that never sent a
// whole frame (silent, or half a header) before clients that did, the
// oldest first.
func (t *tracked) evictBefore(u *tracked) bool {
	if tf, uf := t.framed.Load(), u.framed.Load(); tf != uf {
		return !tf
	}
	return t.last.Load() < u.last.Load()
}

// admit registers a new connection, closing the longest idle one when
// MaxConns are served already; it returns nil when every connection runs
// a request (the new one is then to be closed).
func (s *Server) admit(close context.CancelFunc) *tracked {
	t := &tracked{close: close}
	t.last.Store(time.Now().UnixNano())
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.cfg.MaxConns > 0 && len(s.conns) >= s.cfg.MaxConns {
		var oldest *tracked
		for c := range s.conns {
			if !c.running.Load() && (oldest == nil || c.evictBefore(oldest)) {
				oldest = c
			}
		}
		if oldest == nil {
			s.refused++
			if time.Since(s.refuseLog) > 10*time.Second {
				s.logf("%d connections refused: all %d connections run a request (the agent's --max-conns)", s.refused, s.cfg.MaxConns)
				s.refused, s.refuseLog = 0, time.Now()
			}
			return nil
		}
		delete(s.conns, oldest)
		oldest.close()
		s.evicted++
		if time.Since(s.evictLog) > 10*time.Second {
			s.logf("%d idle connections closed to make room: %d connections at once at most (the agent's --max-conns)", s.evicted, s.cfg.MaxConns)
			s.evicted, s.evictLog = 0, time.Now()
		}
	}
	s.conns[t] = struct{}{}
	return t
}

func (s *Server) release(t *tracked) {
	s.connMu.Lock()
	delete(s.conns, t)
	s.connMu.Unlock()
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
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.FrameTimeout == 0 {
		cfg.FrameTimeout = DefaultFrameTimeout
	}
	if cfg.StopGrace == 0 {
		cfg.StopGrace = DefaultStopGrace
	}
	return &Server{cfg: cfg, slot: make(chan struct{}, 1), conns: map[*tracked]struct{}{}}
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
		s.accepted.Add(1)
		cctx, ccancel := context.WithCancel(ctx)
		t := s.admit(ccancel)
		if t == nil {
			ccancel()
			c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.release(t)
			defer ccancel()
			if err := s.serveConn(ctx, cctx, c, false, t); err != nil {
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
// peer closed the connection cleanly. When ctx ends (the agent stops), a
// running request is cancelled and, within StopGrace, ends with an exit
// frame of status ExitStopped before the connection closes.
func (s *Server) ServeConn(ctx context.Context, rwc io.ReadWriteCloser, resync bool) error {
	return s.serveConn(ctx, ctx, rwc, resync, nil)
}

type readDeadliner interface{ SetReadDeadline(time.Time) error }

// serveConn is ServeConn; stop is the agent's context, ctx may end
// earlier to close this connection alone (MaxConns); t, when not nil,
// tracks it under MaxConns.
func (s *Server) serveConn(stop, ctx context.Context, rwc io.ReadWriteCloser, resync bool, t *tracked) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var curMu sync.Mutex
	var cur *request
	running := func() *request {
		curMu.Lock()
		defer curMu.Unlock()
		if cur != nil && !cur.finished() {
			return cur
		}
		return nil
	}
	closeOnce := sync.OnceFunc(func() { rwc.Close() })
	afterStop := context.AfterFunc(ctx, func() {
		if r := running(); r != nil && stop.Err() != nil && s.cfg.StopGrace > 0 {
			// The agent stops: the request, cancelled with it, sends
			// its exit frame before the connection closes.
			select {
			case <-r.done:
			case <-time.After(s.cfg.StopGrace):
			}
		}
		closeOnce()
	})
	defer afterStop()
	defer closeOnce()

	c := &conn{rwc: rwc, timeout: s.cfg.WriteTimeout, kill: cancel}
	var idle *time.Timer
	if s.cfg.IdleTimeout > 0 && !resync {
		idle = time.AfterFunc(s.cfg.IdleTimeout, func() {
			s.logf("connection from %s: idle for %v, closing", remoteName(rwc), s.cfg.IdleTimeout)
			cancel()
		})
		defer idle.Stop()
	}
	defer func() {
		if r := running(); r != nil {
			if stop.Err() != nil && s.cfg.StopGrace > 0 {
				// Stopping: let the request send its exit frame.
				select {
				case <-r.done:
				case <-time.After(s.cfg.StopGrace):
				}
			}
			// Close first: a request blocked writing to a peer that is
			// gone must not wait for the write timeout.
			cancel()
			closeOnce()
			r.cancel()
			<-r.done
		}
	}()
	rd, canDeadline := rwc.(readDeadliner)
	frameTimeout := !resync && canDeadline && s.cfg.FrameTimeout > 0
	dec := NewDecoder(rwc)
	dec.Resync = resync
	for {
		if frameTimeout {
			// Idle connections wait without a deadline (IdleTimeout and
			// MaxConns bound them); a frame once begun must arrive
			// within FrameTimeout.
			if err := dec.Wait(); err != nil {
				if ctx.Err() != nil || errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed) {
					return nil
				}
				return err
			}
			rd.SetReadDeadline(time.Now().Add(s.cfg.FrameTimeout))
		}
		f, err := dec.Decode()
		if frameTimeout {
			rd.SetReadDeadline(time.Time{})
		}
		if err != nil {
			if resync && ctx.Err() == nil && running() != nil &&
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
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("frame not complete within %v (the agent's frame timeout), closing", s.cfg.FrameTimeout)
			}
			return err
		}
		if t != nil {
			t.last.Store(time.Now().UnixNano())
			t.framed.Store(true)
		}
		switch f.Type {
		case TypeRequest:
			if r := cur; r != nil {
				// One request at a time per connection: a new one means
				// the client gave up on the old one.
				r.cancel()
				<-r.done
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
			r := &request{id: f.ID, cancel: rcancel, done: make(chan struct{})}
			r.lastSeen.Store(time.Now().UnixNano())
			if t != nil {
				t.running.Store(true)
			}
			curMu.Lock()
			cur = r
			curMu.Unlock()
			if resync && s.cfg.KeepaliveTimeout > 0 {
				go s.watch(r, s.cfg.KeepaliveTimeout, cancel)
			}
			go func(r *request) {
				defer close(r.done)
				defer rcancel()
				s.run(stop, rctx, c, r.id, f.Flags, args)
				if t != nil {
					t.last.Store(time.Now().UnixNano())
					t.running.Store(false)
				}
				if idle != nil {
					idle.Reset(s.cfg.IdleTimeout)
				}
			}(r)
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

// run runs one request and sends its exit frame; stop is the agent's
// context: a request it cancelled ends with ExitStopped.
func (s *Server) run(stop, ctx context.Context, c *conn, id uint32, flags uint16, args []string) {
	start := time.Now()
	c.send(Frame{Type: TypeAccepted, ID: id})
	stdout := &stream{c: c, t: TypeStdout, id: id}
	stderr := &stream{c: c, t: TypeStderr, id: id}
	code := s.runChecked(ctx, stdout, stderr, flags, args)
	if stop.Err() != nil && code != 0 {
		fmt.Fprintln(stderr, "syncord agent: the agent is stopping (SIGTERM or shutdown); request cancelled")
		code = ExitStopped
	}
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
			// The stack goes to the agent's log, never to a client.
			s.logf("request %q panicked: %v\n%s", strings.Join(args, " "), p, debug.Stack())
			fmt.Fprintf(stderr, "syncord agent: internal error: %s crashed (%v); the details are in the agent's log\n", commandName(args), p)
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
