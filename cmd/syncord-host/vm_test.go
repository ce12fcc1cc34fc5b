package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/syncord/syncord/numa"
	"github.com/syncord/syncord/numa/numatest"
	"github.com/syncord/syncord/vm"
)

func vmTestRun(t *testing.T, ctx context.Context, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = Run(ctx, &Env{Stdout: &o, Stderr: &e}, args)
	return o.String(), e.String(), code
}

func TestVMPrint(t *testing.T) {
	dir := t.TempDir()
	qmp, ser := filepath.Join(dir, "q.sock"), filepath.Join(dir, "a.sock")
	out, errOut, code := vmTestRun(t, context.Background(), "vm", "--sockets", "2", "--cores", "2", "--mem-per-node", "256",
		"--kernel", "/k/vmlinuz", "--initrd", "/k/initrd", "--append", "console=ttyS0 rdinit=/init",
		"--qmp", qmp, "--serial", ser, "--console", filepath.Join(dir, "c.log"), "--print")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"-smp cpus=4,sockets=2,cores=2,threads=1 \\\n",
		"-numa node,nodeid=1,cpus=2-3,memdev=mem1 \\\n",
		"-qmp unix:" + qmp + ",server=on,wait=off \\\n",
		"-append 'console=ttyS0 rdinit=/init'\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--print lacks %q:\n%s", want, out)
		}
	}
	// --json gives the exact argv, the same one vm.Config builds.
	out, _, code = vmTestRun(t, context.Background(), "vm", "--kernel", "/k", "--qmp", "tcp:127.0.0.1:5555", "--serial", ser,
		"--disk", "/d1.img", "--disk", "/d2.img", "--qemu-arg", "-S", "--qemu-arg=-d", "--qemu-arg", "guest_errors", "--print", "--json")
	var got struct{ Command []string }
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("--print --json: exit %d, %q", code, out)
	}
	want := vm.Config{Kernel: "/k", QMP: "tcp:127.0.0.1:5555", SerialPath: ser,
		ExtraDisks: []string{"/d1.img", "/d2.img"}, ExtraArgs: []string{"-S", "-d", "guest_errors"}}.Command()
	if strings.Join(got.Command, "\x00") != strings.Join(want, "\x00") {
		t.Errorf("argv %q\nwant %q", got.Command, want)
	}
}

func TestVMHostNodes(t *testing.T) {
	root := vmTestFixture(t, "synth-2x4-cpufreq") // two host nodes
	out, errOut, code := vmTestRun(t, context.Background(), "vm", "--kernel", "/k", "--sockets", "2", "--host-nodes", "auto", "--sys-root", root, "--print")
	if code != 0 || !strings.Contains(out, "id=mem1,size=512M,host-nodes=1,policy=bind") || !strings.Contains(out, "id=mem0,size=512M,host-nodes=0,policy=bind") {
		t.Fatalf("--host-nodes auto on two nodes: exit %d %s\n%s", code, errOut, out)
	}
	out, _, code = vmTestRun(t, context.Background(), "vm", "--kernel", "/k", "--sockets", "2", "--host-nodes", "1,0", "--print")
	if code != 0 || !strings.Contains(out, "id=mem0,size=512M,host-nodes=1,policy=bind") {
		t.Fatalf("--host-nodes 1,0: exit %d\n%s", code, out)
	}
	for _, bad := range []string{"x", "0", "0,1,2"} {
		if _, _, code := vmTestRun(t, context.Background(), "vm", "--kernel", "/k", "--sockets", "2", "--host-nodes", bad, "--print"); code == 0 {
			t.Errorf("--host-nodes %q accepted for 2 sockets", bad)
		}
	}
}

func TestVMImageManifest(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "guest.img")
	os.WriteFile(img, nil, 0o600)
	m := map[string]string{"image": img, "kernel": img + ".vmlinuz", "initrd": img + ".initrd", "append": "root=/dev/vda console=ttyS0"}
	b, _ := json.Marshal(m)
	if err := os.WriteFile(img+".json", b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := vmTestRun(t, context.Background(), "vm", "--image", img, "--print")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"-drive file=" + img + ",format=raw,if=virtio", "-kernel " + img + ".vmlinuz", "-initrd " + img + ".initrd", "-append 'root=/dev/vda console=ttyS0'"} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
}

func TestVMRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"nothing to boot", []string{"vm", "--print"}, 1, "nothing to boot"},
		{"remote qmp", []string{"vm", "--kernel", "/k", "--qmp", "tcp:192.0.2.7:5555", "--print"}, 1, "not a loopback"},
		{"bad flag", []string{"vm", "--sockets", "x"}, 2, "invalid value"},
		{"stray argument", []string{"vm", "--kernel", "/k", "extra"}, 1, "unexpected argument"},
		{"reserved cid", []string{"vm", "--kernel", "/k", "--vsock-cid", "2", "--print"}, 1, "reserved"},
		{"pin without qmp", []string{"pin"}, 1, "--qmp is required"},
		{"pin unknown plan", []string{"pin", "--qmp", "/nonexistent", "--plan", "random"}, 1, "unknown plan"},
		{"pin remote", []string{"pin", "--qmp", "tcp:10.1.2.3:5555"}, 1, "not a loopback"},
		{"pin no monitor", []string{"pin", "--qmp", "/nonexistent/qmp.sock"}, 1, "is QEMU running"},
		{"amp without freqs", []string{"amp"}, 1, "are required"},
		{"amp bad freq", []string{"amp", "--fast-freq", "fast", "--slow-freq", "1GHz"}, 1, "--fast-freq"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := vmTestRun(t, context.Background(), tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, tc.code, tc.want)
			}
		})
	}
}

// TestVMRunAndStop runs real QEMU through the command, as a user would,
// and stops it the way SIGINT does (the context main cancels). An empty
// disk: the firmware finds nothing to boot and waits, which is enough.
func TestVMRunAndStop(t *testing.T) {
	if _, err := exec.LookPath(vm.DefaultBinary); err != nil {
		t.Skipf("skipping: %s not found (apt-get install qemu-system-x86)", vm.DefaultBinary)
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "empty.img")
	os.WriteFile(img, make([]byte, 1<<20), 0o600)
	qmp, ser := filepath.Join(dir, "q.sock"), filepath.Join(dir, "a.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	go func() {
		o, e, code := vmTestRun(t, ctx, "vm", "--sockets", "1", "--cores", "2", "--mem-per-node", "64", "--image", img,
			"--qmp", qmp, "--serial", ser, "--console", filepath.Join(dir, "console.log"))
		done <- result{code, o, e}
	}()
	qctx, qcancel := context.WithTimeout(ctx, 30*time.Second)
	defer qcancel()
	var c *vm.QMPClient
	var err error
	for {
		if c, err = vm.DialQMP(qctx, qmp); err == nil {
			break
		}
		if qctx.Err() != nil {
			cancel()
			r := <-done
			t.Fatalf("monitor never answered: %v; exit %d %s", err, r.code, r.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cpus, err := c.QueryCPUsFast(qctx)
	c.Close()
	if err != nil || len(cpus) != 2 {
		t.Fatalf("query-cpus-fast: %v %v", cpus, err)
	}
	pid, err := vm.QEMUProcess("", cpus[0].ThreadID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vmTestKillQEMU(pid) })
	cancel() // what SIGINT does to main's context
	var r result
	select {
	case r = <-done:
	case <-time.After(vm.StopGrace + 10*time.Second):
		t.Fatal("syncord-host vm did not return after its context was cancelled")
	}
	if r.code != 0 || !strings.Contains(r.stderr, "stopped QEMU pid "+strconv.Itoa(pid)) {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid), "status")); err == nil {
		if b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat")); !strings.Contains(string(b), ") Z ") {
			t.Fatalf("QEMU %d still running", pid)
		}
	}
	for _, s := range []string{qmp, ser} {
		if _, err := os.Lstat(s); err == nil {
			t.Errorf("%s left behind", s)
		}
	}
}

func vmTestKillQEMU(pid int) {
	if _, err := vm.QEMUProcess("", pid); err == nil {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
	}
}

// vmTestPausedQEMU starts a paused QEMU (no guest code runs) for pin tests; it
// is stopped by PID in Cleanup.
func vmTestPausedQEMU(t *testing.T, sockets, cores int) (*vm.Process, []vm.CPU) {
	t.Helper()
	if _, err := exec.LookPath(vm.DefaultBinary); err != nil {
		t.Skipf("skipping: %s not found (apt-get install qemu-system-x86)", vm.DefaultBinary)
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "d.img")
	os.WriteFile(img, make([]byte, 4096), 0o600)
	p, err := vm.Start(vm.Config{Sockets: sockets, Cores: cores, MemPerNodeMB: 32, Image: img, RunDir: dir,
		ConsoleLog: filepath.Join(dir, "console.log"), DevRoot: dir, ExtraArgs: []string{"-S"}}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := p.WaitQMP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cpus, err := c.QueryCPUsFast(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return p, cpus
}

func TestPinCommand(t *testing.T) {
	p, cpus := vmTestPausedQEMU(t, 2, 2)
	qmp := p.Config.QMP
	host, err := vm.ReadHostTopology("/sys")
	if err != nil {
		t.Fatal(err)
	}
	all := host.CPUs()
	affinity := func(tid int) string {
		s, err := vm.ThreadAffinity("/proc", p.PID(), tid)
		if err != nil {
			t.Fatal(err)
		}
		return s.String()
	}
	before := affinity(cpus[3].ThreadID)

	// Dry run: the table, nothing pinned.
	out, errOut, code := vmTestRun(t, context.Background(), "pin", "--qmp", qmp, "--plan", "identity", "--allow-oversubscribe", "--dry-run")
	if code != 0 {
		t.Fatalf("dry run: exit %d %s", code, errOut)
	}
	if !strings.HasPrefix(out, "vcpu  thread-id  guest-socket  guest-node  host-cpu  host-node\n") || strings.Count(out, "\n") < 5 {
		t.Errorf("dry-run table:\n%s", out)
	}
	if after := affinity(cpus[3].ThreadID); after != before {
		t.Fatalf("--dry-run changed vCPU 3's affinity from %s to %s", before, after)
	}

	if all.Len() < 4 {
		_, errOut, code = vmTestRun(t, context.Background(), "pin", "--qmp", qmp, "--plan", "identity")
		if code != 1 || !strings.Contains(errOut, "--allow-oversubscribe") {
			t.Errorf("identity of 4 vCPUs on %d CPUs without oversubscription: exit %d %s", all.Len(), code, errOut)
		}
	}

	out, errOut, code = vmTestRun(t, context.Background(), "pin", "--qmp", "unix:"+qmp, "--plan", "identity", "--allow-oversubscribe", "--json")
	if code != 0 {
		t.Fatalf("pin: exit %d %s", code, errOut)
	}
	var res struct {
		Plan        string
		QEMUPID     int `json:"qemu_pid"`
		Assignments []vm.Assignment
		Verified    []vm.PinCheck
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res.Plan != "identity" || res.QEMUPID != p.PID() || len(res.Verified) != 4 {
		t.Fatalf("result %+v", res)
	}
	for i, a := range res.Assignments {
		want := all[i%all.Len()]
		if all.Contains(i) {
			want = i
		}
		if a.HostCPU != want || affinity(a.ThreadID) != strconv.Itoa(want) || !res.Verified[i].OK {
			t.Errorf("vCPU %d: %+v, status %s, want CPU %d", i, a, affinity(a.ThreadID), want)
		}
	}
	// The numa plan onto this host, when it has room.
	if all.Len() >= 4 {
		if _, errOut, code := vmTestRun(t, context.Background(), "pin", "--qmp", qmp); code != 0 {
			t.Errorf("numa plan: %s", errOut)
		}
	}
}

func vmTestFixture(t *testing.T, name string) string { return numatest.CopyFixture(t, name) }

func TestAMPCommandOnFixtureCopy(t *testing.T) {
	root := vmTestFixture(t, "synth-2x4-cpufreq")
	read := func(cpu int, f string) string {
		b, err := os.ReadFile(filepath.Join(root, "devices/system/cpu/cpu"+strconv.Itoa(cpu)+"/cpufreq", f))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	out, errOut, code := vmTestRun(t, context.Background(), "amp", "--fast-freq", "2.2GHz", "--slow-freq", "1500MHz", "--dry-run", "--sys-root", root)
	if code != 0 {
		t.Fatalf("dry run: %d %s", code, errOut)
	}
	if n := strings.Count(out, " write "); n != 16 || !strings.Contains(out, "cpu2 slow    write "+root+"/devices/system/cpu/cpu2/cpufreq/scaling_min_freq 1500000\n") {
		t.Errorf("dry run (%d writes):\n%s", n, out)
	}
	if read(2, "scaling_min_freq") != "1200000" {
		t.Fatal("--dry-run wrote")
	}
	if _, errOut, code = vmTestRun(t, context.Background(), "amp", "--fast-freq", "2200000", "--slow-freq", "1500000", "--sys-root", root); code != 0 {
		t.Fatalf("amp: %d %s", code, errOut)
	}
	for cpu := 0; cpu < 8; cpu++ {
		want := "1500000"
		if numa.IsFast(cpu, 4) {
			want = "2200000"
		}
		if read(cpu, "scaling_min_freq") != want || read(cpu, "scaling_max_freq") != want {
			t.Errorf("cpu%d: %s-%s, want %s", cpu, read(cpu, "scaling_min_freq"), read(cpu, "scaling_max_freq"), want)
		}
	}
	if _, errOut, code = vmTestRun(t, context.Background(), "amp", "restore", "--fast-freq", "2.2GHz", "--slow-freq", "1.5GHz", "--sys-root", root); code != 0 {
		t.Fatalf("restore: %d %s", code, errOut)
	}
	for cpu := 0; cpu < 8; cpu++ {
		if read(cpu, "scaling_min_freq") != "1500000" || read(cpu, "scaling_max_freq") != "2200000" {
			t.Errorf("cpu%d after restore: %s-%s", cpu, read(cpu, "scaling_min_freq"), read(cpu, "scaling_max_freq"))
		}
	}
}

func TestAMPCommandRefusesWithoutCPUFreq(t *testing.T) {
	root := vmTestFixture(t, "host") // this machine's capture: no cpufreq
	_, errOut, code := vmTestRun(t, context.Background(), "amp", "--fast-freq", "2GHz", "--slow-freq", "1GHz", "--sys-root", root)
	if code != 1 || !strings.Contains(errOut, "cpufreq not available on this machine") {
		t.Fatalf("exit %d %q", code, errOut)
	}
	// And the live host, read only (--dry-run): refused where it has none.
	if _, err := os.Stat("/sys/devices/system/cpu/cpu0/cpufreq"); err != nil && runtime.GOOS == "linux" {
		_, errOut, code := vmTestRun(t, context.Background(), "amp", "--fast-freq", "2GHz", "--slow-freq", "1GHz", "--dry-run")
		if code != 1 || !strings.Contains(errOut, "needs CONFIG_CPU_FREQ") {
			t.Fatalf("live host without cpufreq: exit %d %q", code, errOut)
		}
	}
}
