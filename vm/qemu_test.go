package vm

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncord/syncord/numa"
)

// startPausedQEMU starts a real QEMU from cfg with -S: the guest never
// runs, so no kernel is needed and the vCPU threads exist but sleep. It is
// stopped by PID in Cleanup, also when the test fails.
func startPausedQEMU(t testing.TB, cfg Config) (*Process, *QMPClient) {
	t.Helper()
	if _, err := exec.LookPath(DefaultBinary); err != nil {
		t.Skipf("skipping: %s not found (apt-get install qemu-system-x86)", DefaultBinary)
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Image = img
	cfg.RunDir = dir
	cfg.ConsoleLog = filepath.Join(dir, "console.log")
	cfg.DevRoot = dir // no vhost-vsock device in tests
	cfg.ExtraArgs = append(cfg.ExtraArgs, "-S")
	errLog, err := os.Create(filepath.Join(dir, "qemu.stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer errLog.Close()
	p, err := Start(cfg, nil, nil, errLog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(5 * time.Second); err != nil {
			t.Logf("qemu stop: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := p.WaitQMP(ctx)
	if err != nil {
		msg, _ := os.ReadFile(errLog.Name())
		t.Fatalf("%v; qemu stderr:\n%s", err, msg)
	}
	t.Cleanup(func() { c.Close() })
	return p, c
}

func TestRealQEMUQueryCPUsFast(t *testing.T) {
	p, c := startPausedQEMU(t, Config{Sockets: 2, Cores: 2, MemPerNodeMB: 64})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c.Greeting().QMP.Version.QEMU.Major < 6 {
		t.Logf("QEMU %s predates the removal of query-cpus", c.Greeting().Version())
	}
	cpus, err := c.QueryCPUsFast(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cpus) != 4 {
		t.Fatalf("%d vCPUs, want 4: %+v", len(cpus), cpus)
	}
	for i, cpu := range cpus {
		if cpu.Index != i || cpu.Props.SocketID != i/2 || cpu.Props.NodeID != i/2 || cpu.Props.CoreID != i%2 {
			t.Errorf("vCPU %d = %+v, want socket and node %d, core %d", i, cpu, i/2, i%2)
		}
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(p.PID()), "task", strconv.Itoa(cpu.ThreadID))); err != nil {
			t.Errorf("vCPU %d thread %d is not a task of QEMU %d: %v", i, cpu.ThreadID, p.PID(), err)
		}
	}
	// The monitor still works after a command error, and events are
	// skipped: stop on a paused guest emits none, cont emits RESUME.
	if _, err := c.Execute(ctx, "no-such-command", nil); err == nil {
		t.Fatal("unknown command accepted")
	}
	if _, err := c.Execute(ctx, "cont", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Execute(ctx, "stop", nil); err != nil {
		t.Fatal(err)
	}
	raw, err := c.Execute(ctx, "query-status", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("QEMU %s, status %s, events %d", c.Greeting().Version(), raw, len(c.Events()))
}

func TestRealQEMUPinIdentity(t *testing.T) {
	p, c := startPausedQEMU(t, Config{Sockets: 2, Cores: 2, MemPerNodeMB: 64})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cpus, err := c.QueryCPUsFast(ctx)
	if err != nil {
		t.Fatal(err)
	}
	host, err := ReadHostTopology("/sys")
	if err != nil {
		t.Fatal(err)
	}
	// The host's own CPUs may be fewer than 4: oversubscribe when needed.
	plan, err := NewPlan(cpus, host, PlanOptions{Kind: PlanIdentity, AllowOversubscribe: true})
	if err != nil {
		t.Fatal(err)
	}
	checks, err := Apply(plan, ApplyOptions{PID: p.PID()})
	if err != nil {
		t.Fatal(err)
	}
	all := host.CPUs()
	for i, ch := range checks {
		want := all[i%all.Len()]
		if all.Contains(i) {
			want = i
		}
		st, err := ThreadAffinity("/proc", p.PID(), cpus[i].ThreadID)
		if err != nil {
			t.Fatal(err)
		}
		if !ch.OK || ch.Want != want || st.String() != strconv.Itoa(want) || ch.Syscall.String() != strconv.Itoa(want) {
			t.Errorf("vCPU %d: check %+v, status %s, want CPU %d", i, ch, st, want)
		}
	}
	// A plan for another CPU is applied too: pinning is not a no-op.
	for i := range plan.Assignments {
		plan.Assignments[i].HostCPU = all[all.Len()-1-i%all.Len()]
	}
	if _, err := Apply(plan, ApplyOptions{}); err != nil {
		t.Fatalf("re-pin: %v", err)
	}
	for _, a := range plan.Assignments {
		st, _ := ThreadAffinity("/proc", p.PID(), a.ThreadID)
		if !slicesEqual(st, numa.NewCPUSet(a.HostCPU)) {
			t.Errorf("thread %d after re-pin: %s, want %d", a.ThreadID, st, a.HostCPU)
		}
	}
}

func TestApplyRefusesNonQEMU(t *testing.T) {
	// The test binary itself is not QEMU: Apply must refuse before any
	// sched_setaffinity call.
	self := os.Getpid()
	plan := &Plan{Kind: PlanIdentity, Assignments: []Assignment{{VCPU: 0, ThreadID: self, HostCPU: 0}}}
	var before = mustAffinity(t, self)
	_, err := Apply(plan, ApplyOptions{})
	if err == nil {
		t.Fatal("Apply pinned a process that is not QEMU")
	}
	if after := mustAffinity(t, self); after.String() != before.String() {
		t.Fatalf("affinity changed from %s to %s", before, after)
	}
	t.Log(err)
}

func TestApplyRefusesThreadsOfTwoProcesses(t *testing.T) {
	p1, c1 := startPausedQEMU(t, Config{Sockets: 1, Cores: 1, MemPerNodeMB: 32})
	p2, c2 := startPausedQEMU(t, Config{Sockets: 1, Cores: 1, MemPerNodeMB: 32})
	ctx := context.Background()
	a, err := c1.QueryCPUsFast(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c2.QueryCPUsFast(ctx)
	if err != nil {
		t.Fatal(err)
	}
	plan := &Plan{Assignments: []Assignment{{VCPU: 0, ThreadID: a[0].ThreadID, HostCPU: 0}, {VCPU: 1, ThreadID: b[0].ThreadID, HostCPU: 0}}}
	if _, err := Apply(plan, ApplyOptions{PID: p1.PID()}); err == nil {
		t.Fatalf("Apply accepted threads of QEMU %d and %d in one plan", p1.PID(), p2.PID())
	}
}

func mustAffinity(t *testing.T, tid int) numa.CPUSet {
	t.Helper()
	st, err := ThreadAffinity("/proc", os.Getpid(), tid)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func slicesEqual(a, b numa.CPUSet) bool { return a.String() == b.String() }

func TestStartRefusesSocketInUse(t *testing.T) {
	_, c := startPausedQEMU(t, Config{Sockets: 1, Cores: 1, MemPerNodeMB: 32})
	// A second VM on the same sockets must not steal them.
	dir := t.TempDir()
	img := filepath.Join(dir, "d.img")
	os.WriteFile(img, make([]byte, 4096), 0o600)
	first := c.conn.RemoteAddr().String()
	_, err := Start(Config{Image: img, QMP: first, SerialPath: filepath.Join(dir, "a.sock"), DevRoot: dir}, nil, nil, nil)
	if err == nil {
		t.Fatalf("second QEMU started on the live monitor socket %s", first)
	}
	t.Log(err)
}

func TestProcessRemovesSocketsOnExit(t *testing.T) {
	p, c := startPausedQEMU(t, Config{Sockets: 1, Cores: 1, MemPerNodeMB: 32})
	c.Close()
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{p.Config.QMP, p.Config.SerialPath} {
		if _, err := os.Lstat(s); err == nil {
			t.Errorf("socket %s left after QEMU exited", s)
		}
	}
	if err := syscall.Kill(p.PID(), 0); err == nil {
		t.Errorf("QEMU %d still alive after Stop", p.PID())
	}
}

// The artifact's monitor form, -qmp tcp:127.0.0.1:PORT, against real QEMU.
func TestRealQEMUTCPMonitor(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // QEMU binds it next; a race with another binder only fails this test
	_, c := startPausedQEMU(t, Config{Sockets: 2, Cores: 1, MemPerNodeMB: 32, QMP: "tcp:" + addr})
	if got := c.conn.RemoteAddr().String(); got != addr {
		t.Fatalf("connected to %s, want %s", got, addr)
	}
	cpus, err := c.QueryCPUsFast(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(cpus) != 2 || cpus[1].Props.NodeID != 1 {
		t.Fatalf("cpus %+v", cpus)
	}
}

// A QEMU that refuses its command line: Wait reports its failure and the
// stale sockets are not left behind.
func TestProcessWaitReportsQEMUFailure(t *testing.T) {
	if _, err := exec.LookPath(DefaultBinary); err != nil {
		t.Skipf("skipping: %s not found (apt-get install qemu-system-x86)", DefaultBinary)
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "d.img")
	os.WriteFile(img, make([]byte, 4096), 0o600)
	p, err := Start(Config{Image: img, RunDir: dir, DevRoot: dir, ConsoleLog: filepath.Join(dir, "c.log"),
		ExtraArgs: []string{"-no-such-option"}}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = p.Wait(ctx)
	if err == nil || !strings.Contains(err.Error(), "exit status 1") {
		t.Fatalf("Wait = %v, want QEMU's exit status 1", err)
	}
	if ctx.Err() != nil {
		t.Fatal("QEMU did not exit by itself")
	}
}

// Guest memory bound to host node 0 (every host has it): QEMU accepts the
// binding and the guest still has its two nodes.
func TestRealQEMUHostNodeBinding(t *testing.T) {
	_, c := startPausedQEMU(t, Config{Sockets: 2, Cores: 1, MemPerNodeMB: 32, HostNodes: []int{0, 0}})
	raw, err := c.Execute(context.Background(), "query-memdev", nil)
	if err != nil {
		t.Fatal(err)
	}
	var devs []struct {
		ID        string `json:"id"`
		HostNodes []int  `json:"host-nodes"`
		Policy    string `json:"policy"`
	}
	if err := json.Unmarshal(raw, &devs); err != nil {
		t.Fatal(err)
	}
	if len(devs) != 2 {
		t.Fatalf("memdevs %s", raw)
	}
	for _, d := range devs {
		if d.Policy != "bind" || len(d.HostNodes) != 1 || d.HostNodes[0] != 0 {
			t.Errorf("memdev %+v, want bound to host node 0", d)
		}
	}
}
