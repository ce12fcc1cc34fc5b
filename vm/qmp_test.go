package vm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Lines captured from QEMU 7.2.22 (Debian 12) started with
// -smp 4,sockets=2,cores=2 and two -numa nodes, answering a session that
// sent cont, stop and query-cpus-fast.
const (
	greeting7_2 = `{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}`
	eventResume = `{"timestamp": {"seconds": 1795627733, "microseconds": 516748}, "event": "RESUME"}`
	eventStop   = `{"timestamp": {"seconds": 1795627733, "microseconds": 816917}, "event": "STOP"}`
	cpus2x2     = `[{"thread-id": 16003, "props": {"core-id": 0, "thread-id": 0, "node-id": 0, "socket-id": 0}, "qom-path": "/machine/unattached/device[0]", "cpu-index": 0, "target": "x86_64"}, {"thread-id": 16004, "props": {"core-id": 1, "thread-id": 0, "node-id": 0, "socket-id": 0}, "qom-path": "/machine/unattached/device[2]", "cpu-index": 1, "target": "x86_64"}, {"thread-id": 16005, "props": {"core-id": 0, "thread-id": 0, "node-id": 1, "socket-id": 1}, "qom-path": "/machine/unattached/device[3]", "cpu-index": 2, "target": "x86_64"}, {"thread-id": 16006, "props": {"core-id": 1, "thread-id": 0, "node-id": 1, "socket-id": 1}, "qom-path": "/machine/unattached/device[4]", "cpu-index": 3, "target": "x86_64"}]`
	errNotFound = `{"class": "CommandNotFound", "desc": "The command nope has not been found"}`
)

// fakeMonitor speaks QMP on conn: the greeting, then for each request the
// lines reply(req) returns, written in one go ("\r\n" ended like QEMU's).
// It records the requests it read.
type fakeMonitor struct {
	greeting string
	reply    func(execute string, id json.RawMessage) []string
	reqs     chan map[string]any
}

func (f *fakeMonitor) serve(conn net.Conn) {
	defer conn.Close()
	w := bufio.NewWriter(conn)
	w.WriteString(f.greeting + "\r\n")
	w.Flush()
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		var req map[string]any
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			w.WriteString(`{"error": {"class": "GenericError", "desc": "JSON parse error"}}` + "\r\n")
			w.Flush()
			continue
		}
		if f.reqs != nil {
			f.reqs <- req
		}
		exec, _ := req["execute"].(string)
		id, _ := json.Marshal(req["id"])
		for _, l := range f.reply(exec, id) {
			w.WriteString(l + "\r\n")
		}
		w.Flush()
	}
}

func withID(body string, id json.RawMessage) string {
	return strings.TrimSuffix(body, "}") + `, "id": ` + string(id) + "}"
}

// qemuLike answers like QEMU 7.2 with events interleaved before replies.
func qemuLike(execute string, id json.RawMessage) []string {
	switch execute {
	case "qmp_capabilities":
		return []string{withID(`{"return": {}}`, id)}
	case "cont":
		return []string{eventResume, withID(`{"return": {}}`, id)}
	case "query-cpus-fast":
		// An event, a reply to someone else's command, then ours.
		return []string{eventStop, `{"return": {}, "id": "other-client-7"}`, "", withID(`{"return": `+cpus2x2+`}`, id)}
	}
	return []string{withID(`{"error": `+errNotFound+`}`, id)}
}

func pipeClient(t *testing.T, f *fakeMonitor) (*QMPClient, error) {
	t.Helper()
	a, b := net.Pipe()
	go f.serve(b)
	t.Cleanup(func() { a.Close(); b.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return NewQMPClient(ctx, a)
}

func TestQMPFakeMonitorTranscript(t *testing.T) {
	reqs := make(chan map[string]any, 10)
	c, err := pipeClient(t, &fakeMonitor{greeting: greeting7_2, reply: qemuLike, reqs: reqs})
	if err != nil {
		t.Fatal(err)
	}
	if first := <-reqs; first["execute"] != "qmp_capabilities" {
		t.Fatalf("first request %v, want qmp_capabilities", first)
	}
	if v := c.Greeting().Version(); v != "7.2.22" {
		t.Errorf("greeting version %q", v)
	}
	ctx := context.Background()
	if _, err := c.Execute(ctx, "cont", nil); err != nil {
		t.Fatalf("cont: %v", err)
	}
	<-reqs
	cpus, err := c.QueryCPUsFast(ctx)
	if err != nil {
		t.Fatalf("query-cpus-fast: %v", err)
	}
	<-reqs
	want := []CPU{
		{Index: 0, ThreadID: 16003, Props: CPUProps{NodeID: 0, SocketID: 0, CoreID: 0}},
		{Index: 1, ThreadID: 16004, Props: CPUProps{NodeID: 0, SocketID: 0, CoreID: 1}},
		{Index: 2, ThreadID: 16005, Props: CPUProps{NodeID: 1, SocketID: 1, CoreID: 0}},
		{Index: 3, ThreadID: 16006, Props: CPUProps{NodeID: 1, SocketID: 1, CoreID: 1}},
	}
	if len(cpus) != len(want) {
		t.Fatalf("got %d CPUs: %+v", len(cpus), cpus)
	}
	for i := range want {
		g := cpus[i]
		if g.Index != want[i].Index || g.ThreadID != want[i].ThreadID || g.Props != want[i].Props || g.Target != "x86_64" {
			t.Errorf("cpu %d = %+v, want %+v", i, g, want[i])
		}
	}
	ev := c.Events()
	if len(ev) != 2 || ev[0].Event != "RESUME" || ev[1].Event != "STOP" || ev[1].Timestamp.Microseconds != 816917 {
		t.Errorf("events %+v, want RESUME then STOP", ev)
	}
	if len(c.Events()) != 0 {
		t.Errorf("Events did not forget what it returned")
	}
	_, err = c.Execute(ctx, "nope", map[string]any{"x": 1})
	var qe *QMPError
	if !errors.As(err, &qe) || qe.Class != "CommandNotFound" || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown command: %v, want a CommandNotFound QMPError", err)
	}
	if req := <-reqs; req["arguments"].(map[string]any)["x"] != 1.0 {
		t.Errorf("arguments not sent: %v", req)
	}
}

func TestQMPPropsAbsent(t *testing.T) {
	c, err := pipeClient(t, &fakeMonitor{greeting: greeting7_2, reply: func(e string, id json.RawMessage) []string {
		if e == "query-cpus-fast" {
			return []string{withID(`{"return": [{"thread-id": 9, "cpu-index": 1, "props": {"core-id": 0}}, {"thread-id": 8, "cpu-index": 0}]}`, id)}
		}
		return []string{withID(`{"return": {}}`, id)}
	}})
	if err != nil {
		t.Fatal(err)
	}
	cpus, err := c.QueryCPUsFast(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cpus[0].Index != 0 || cpus[0].ThreadID != 8 || cpus[0].Props.NodeID != -1 || cpus[0].Props.SocketID != -1 {
		t.Errorf("cpu 0 = %+v, want sorted by index with absent props -1", cpus[0])
	}
	if cpus[1].Props.CoreID != 0 || cpus[1].Props.NodeID != -1 {
		t.Errorf("cpu 1 = %+v", cpus[1])
	}
}

func TestQMPBadMonitors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		greeting string
		reply    func(string, json.RawMessage) []string
		query    bool
		want     string
	}{
		{name: "HMP banner", greeting: "QEMU 7.2.22 monitor - type 'help' for more information", want: "not a QMP greeting"},
		{name: "capabilities refused", greeting: greeting7_2, reply: func(_ string, id json.RawMessage) []string {
			return []string{withID(`{"error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete"}}`, id)}
		}, want: "already complete"},
		{name: "garbage reply", greeting: greeting7_2, reply: func(e string, id json.RawMessage) []string {
			if e == "qmp_capabilities" {
				return []string{withID(`{"return": {}}`, id)}
			}
			return []string{"{not json"}
		}, query: true, want: "malformed reply"},
		{name: "no thread id", greeting: greeting7_2, reply: func(e string, id json.RawMessage) []string {
			if e == "qmp_capabilities" {
				return []string{withID(`{"return": {}}`, id)}
			}
			return []string{withID(`{"return": [{"cpu-index": 0, "thread-id": 0}]}`, id)}
		}, query: true, want: "no host thread id"},
		{name: "duplicate index", greeting: greeting7_2, reply: func(e string, id json.RawMessage) []string {
			if e == "qmp_capabilities" {
				return []string{withID(`{"return": {}}`, id)}
			}
			return []string{withID(`{"return": [{"cpu-index": 0, "thread-id": 5}, {"cpu-index": 0, "thread-id": 6}]}`, id)}
		}, query: true, want: "reported twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply := tc.reply
			if reply == nil {
				reply = qemuLike
			}
			c, err := pipeClient(t, &fakeMonitor{greeting: tc.greeting, reply: reply})
			if err == nil && tc.query {
				_, err = c.QueryCPUsFast(context.Background())
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestQMPContextCancelsSilentMonitor(t *testing.T) {
	c, err := pipeClient(t, &fakeMonitor{greeting: greeting7_2, reply: func(e string, id json.RawMessage) []string {
		if e == "qmp_capabilities" {
			return []string{withID(`{"return": {}}`, id)}
		}
		return []string{eventStop} // never the reply
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = c.Execute(ctx, "query-status", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the context's deadline", err)
	}
}

func TestDialQMPUnixAndLoopbackTCP(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []net.Listener{ul, tl} {
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				go (&fakeMonitor{greeting: greeting7_2, reply: qemuLike}).serve(conn)
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, addr := range []string{sock, "unix:" + sock, "tcp:" + tl.Addr().String()} {
		c, err := DialQMP(ctx, addr)
		if err != nil {
			t.Fatalf("DialQMP %s: %v", addr, err)
		}
		cpus, err := c.QueryCPUsFast(ctx)
		c.Close()
		if err != nil || len(cpus) != 4 {
			t.Fatalf("%s: query-cpus-fast %v %v", addr, cpus, err)
		}
	}
}

func TestDialQMPRefusesRemoteHosts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, addr := range []string{"tcp:192.0.2.1:5555", "tcp:10.0.0.2:4444", "tcp:qemu.example:5555", "tcp:0.0.0.0:5555"} {
		start := time.Now()
		_, err := DialQMP(ctx, addr)
		if err == nil || !strings.Contains(err.Error(), "not a loopback") {
			t.Errorf("DialQMP(%s) = %v, want a loopback refusal", addr, err)
		}
		if time.Since(start) > time.Second {
			t.Errorf("DialQMP(%s) took %v: it must refuse before dialing", addr, time.Since(start))
		}
	}
}

func FuzzQMPReply(f *testing.F) {
	f.Add([]byte(withID(`{"return": `+cpus2x2+`}`, json.RawMessage(`"syncord-2"`))))
	f.Add([]byte(eventStop))
	f.Add([]byte(`{"error": ` + errNotFound + `}`))
	f.Add([]byte(`{"return": [{"cpu-index": 0}]}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		if len(line) > 1<<16 {
			return
		}
		c, err := pipeClient(t, &fakeMonitor{greeting: greeting7_2, reply: func(e string, id json.RawMessage) []string {
			if e == "qmp_capabilities" {
				return []string{withID(`{"return": {}}`, id)}
			}
			return []string{strings.ReplaceAll(string(line), "\n", " ")}
		}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		cpus, err := c.QueryCPUsFast(ctx)
		if err == nil {
			for _, cpu := range cpus {
				if cpu.ThreadID <= 0 {
					t.Fatalf("accepted vCPU without thread id: %+v", cpu)
				}
			}
		}
	})
}
