package vm

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
)

// maxQMPLine bounds one QMP message; query-cpus-fast of a 4096-vCPU guest
// is well under it.
const maxQMPLine = 16 << 20

// QMPError is an error reply from the monitor ({"error": {"class", "desc"}}).
type QMPError struct {
	Command string
	Class   string
	Desc    string
}

func (e *QMPError) Error() string {
	return fmt.Sprintf("qmp %s: %s (%s)", e.Command, e.Desc, e.Class)
}

// Event is an asynchronous QMP event, kept in arrival order.
type Event struct {
	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data,omitempty"`
	Timestamp struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp"`
}

// Greeting is the monitor's first message.
type Greeting struct {
	QMP struct {
		Version struct {
			QEMU struct {
				Major int `json:"major"`
				Minor int `json:"minor"`
				Micro int `json:"micro"`
			} `json:"qemu"`
			Package string `json:"package"`
		} `json:"version"`
		Capabilities []string `json:"capabilities"`
	} `json:"QMP"`
}

// Version is the QEMU version from the greeting, "7.2.22".
func (g Greeting) Version() string {
	v := g.QMP.Version.QEMU
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Micro)
}

// QMPClient is a QMP session: greeting read and capabilities negotiated.
// Execute calls are serialised; it is safe for concurrent use.
type QMPClient struct {
	conn     net.Conn
	r        *bufio.Reader
	mu       sync.Mutex
	id       uint64
	greeting Greeting
	events   []Event
}

// DialQMP connects to the monitor at addr (see ParseMonitorAddr: a socket
// path, unix:PATH or tcp:LOOPBACK:PORT; other hosts are refused before any
// connection is made) and negotiates capabilities.
func DialQMP(ctx context.Context, addr string) (*QMPClient, error) {
	network, a, err := ParseMonitorAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("dial qmp: %w", err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, a)
	if err != nil {
		return nil, fmt.Errorf("dial qmp %s: %w (is QEMU running with -qmp %s,server=on?)", addr, err, qmpChardev(addr))
	}
	c, err := NewQMPClient(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// NewQMPClient runs the QMP handshake on conn: it reads the greeting and
// sends qmp_capabilities. The client owns conn from then on.
func NewQMPClient(ctx context.Context, conn net.Conn) (*QMPClient, error) {
	c := &QMPClient{conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}
	stop := c.deadline(ctx)
	line, err := c.readLine()
	stop()
	if err != nil {
		return nil, fmt.Errorf("qmp: read greeting: %w", err)
	}
	if err := json.Unmarshal(line, &c.greeting); err != nil || !bytes.Contains(line, []byte(`"QMP"`)) {
		return nil, fmt.Errorf("qmp: greeting %.80q is not a QMP greeting (is this a QMP monitor, not HMP?)", line)
	}
	if _, err := c.Execute(ctx, "qmp_capabilities", nil); err != nil {
		return nil, err
	}
	return c, nil
}

// Greeting returns the monitor's greeting.
func (c *QMPClient) Greeting() Greeting { return c.greeting }

// Events returns and forgets the asynchronous events read so far.
func (c *QMPClient) Events() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	ev := c.events
	c.events = nil
	return ev
}

// Close closes the connection.
func (c *QMPClient) Close() error { return c.conn.Close() }

// deadline makes conn reads and writes fail when ctx ends; the returned
// function undoes it.
func (c *QMPClient) deadline(ctx context.Context) func() {
	if dl, ok := ctx.Deadline(); ok {
		c.conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	return func() {
		stop()
		c.conn.SetDeadline(time.Time{})
	}
}

func (c *QMPClient) readLine() ([]byte, error) {
	var buf []byte
	for {
		frag, err := c.r.ReadSlice('\n')
		buf = append(buf, frag...)
		if len(buf) > maxQMPLine {
			return nil, fmt.Errorf("message longer than %d bytes", maxQMPLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return nil, err
		}
		if line := bytes.TrimSpace(buf); len(line) > 0 {
			return line, nil
		}
		buf = buf[:0]
	}
}

type qmpReply struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string          `json:"event"`
	ID    json.RawMessage `json:"id"`
}

// Execute runs a QMP command with args (nil for none, else anything that
// marshals to a JSON object) and returns its "return" value. Events that
// arrive before the reply are kept (see Events); replies carrying another
// id are skipped. An error reply is a *QMPError.
func (c *QMPClient) Execute(ctx context.Context, cmd string, args any) (json.RawMessage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.id++
	id := "syncord-" + strconv.FormatUint(c.id, 10)
	req := struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
		ID        string `json:"id"`
	}{cmd, args, id}
	msg, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("qmp %s: encode arguments: %w", cmd, err)
	}
	stop := c.deadline(ctx)
	defer stop()
	if _, err := c.conn.Write(append(msg, '\n')); err != nil {
		return nil, fmt.Errorf("qmp %s: send: %w", cmd, ctxErr(ctx, err))
	}
	wantID, _ := json.Marshal(id)
	for {
		line, err := c.readLine()
		if err != nil {
			return nil, fmt.Errorf("qmp %s: read reply: %w", cmd, ctxErr(ctx, err))
		}
		var r qmpReply
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("qmp %s: malformed reply %.80q: %w", cmd, line, err)
		}
		if r.Event != "" {
			var ev Event
			if json.Unmarshal(line, &ev) == nil {
				c.events = append(c.events, ev)
			}
			continue
		}
		if len(r.ID) > 0 && !bytes.Equal(r.ID, wantID) {
			continue // a reply to a command that is not ours
		}
		if r.Error != nil {
			return nil, &QMPError{Command: cmd, Class: r.Error.Class, Desc: r.Error.Desc}
		}
		if r.Return == nil {
			return nil, fmt.Errorf("qmp %s: reply %.80q has neither return nor error", cmd, line)
		}
		return r.Return, nil
	}
}

// ctxErr prefers the context's error over the i/o error its deadline or
// cancellation caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return err
}

// CPUProps is where a vCPU sits in the guest topology; -1 when QEMU did
// not report the property.
type CPUProps struct {
	NodeID   int `json:"node-id"`
	SocketID int `json:"socket-id"`
	CoreID   int `json:"core-id"`
	ThreadID int `json:"thread-id"`
}

// CPU is one vCPU of query-cpus-fast.
type CPU struct {
	Index    int      `json:"cpu-index"`
	ThreadID int      `json:"thread-id"` // host thread id of the vCPU
	QOMPath  string   `json:"qom-path"`
	Target   string   `json:"target"`
	Props    CPUProps `json:"props"`
}

// UnmarshalJSON fills absent props with -1, so "node 0" and "no node" differ.
func (c *CPU) UnmarshalJSON(b []byte) error {
	type plain CPU
	p := plain{Props: CPUProps{NodeID: -1, SocketID: -1, CoreID: -1, ThreadID: -1}}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*c = CPU(p)
	return nil
}

// QueryCPUsFast runs query-cpus-fast (QEMU >= 2.12; query-cpus, which the
// artifact used, was removed in 6.0) and returns the vCPUs by index.
func (c *QMPClient) QueryCPUsFast(ctx context.Context) ([]CPU, error) {
	raw, err := c.Execute(ctx, "query-cpus-fast", nil)
	if err != nil {
		return nil, err
	}
	var cpus []CPU
	if err := json.Unmarshal(raw, &cpus); err != nil {
		return nil, fmt.Errorf("qmp query-cpus-fast: decode %.80q: %w", raw, err)
	}
	sortCPUs(cpus)
	for i, cpu := range cpus {
		if cpu.ThreadID <= 0 {
			return nil, fmt.Errorf("qmp query-cpus-fast: vCPU %d has no host thread id", cpu.Index)
		}
		if i > 0 && cpus[i-1].Index == cpu.Index {
			return nil, fmt.Errorf("qmp query-cpus-fast: vCPU index %d reported twice", cpu.Index)
		}
	}
	return cpus, nil
}

func sortCPUs(cpus []CPU) {
	slices.SortFunc(cpus, func(a, b CPU) int { return cmp.Compare(a.Index, b.Index) })
}
