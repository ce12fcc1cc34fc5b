package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncord/syncord/numa"
	"github.com/syncord/syncord/vm"
)

// hostGuestInit runs in the guest booted by syncord-host vm (no harness
// command port: it reports on the console). It checks the NUMA layout the
// host asked for, runs syncord-host amp for real against the guest's own
// /sys (where a cpufreq driver exists; under TCG there is none and amp
// must refuse), and runs amp and amp restore on a copy of the 2x4 cpufreq
// fixture, printing what the files hold afterwards.
const hostGuestInit = `
exec 4>/dev/console
say() { echo "@@HOST-E2E $*" >&4; }
say "layout nproc=$(nproc) nodes=$(ls -d /sys/devices/system/node/node[0-9]* | wc -l) node0=$(cat /sys/devices/system/node/node0/cpulist) node1=$(cat /sys/devices/system/node/node1/cpulist)"
freqs() {
	r=""
	for d in "$1"/devices/system/cpu/cpu[0-9]*/cpufreq; do
		r="$r$(cat $d/scaling_min_freq)-$(cat $d/scaling_max_freq),"
	done
	echo "$r"
}
if [ -d /sys/devices/system/cpu/cpu0/cpufreq ]; then
	fast=$(cat /sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq)
	slow=$(cat /sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_min_freq)
	out=$(syncord-host amp --fast-freq $fast --slow-freq $slow --cores-per-socket 2 2>&1); rc=$?
	say "live cpufreq=yes fast=$fast slow=$slow amp-rc=$rc after=$(freqs /sys)"
	syncord-host amp restore >/dev/null 2>&1
	say "live restore-rc=$? after=$(freqs /sys)"
else
	out=$(syncord-host amp --fast-freq 2GHz --slow-freq 1GHz 2>&1); rc=$?
	say "live cpufreq=no amp-rc=$rc $out"
fi
fx=/fixture/synth-2x4-cpufreq
syncord-host amp --fast-freq 2.2GHz --slow-freq 1500MHz --sys-root $fx >/dev/null 2>&1
say "fixture amp-rc=$? after=$(freqs $fx)"
syncord-host amp restore --fast-freq 2.2GHz --slow-freq 1.5GHz --sys-root $fx >/dev/null 2>&1
say "fixture restore-rc=$? after=$(freqs $fx)"
say done
`

// TestHostVMPinAMP drives the host side the way a user does: the built
// syncord-host starts a 2x2 guest (Debian's kernel, the e2e initramfs)
// with `syncord-host vm --host-nodes auto` (guest memory bound to host
// nodes), pins its vCPUs with `syncord-host pin --plan
// identity --allow-oversubscribe` (this host has fewer CPUs than the
// guest), and the pinning is read back from /proc/PID/task/TID/status.
// Inside the guest, `syncord-host amp` runs against the guest's /sys and
// against a fixture copy. SIGTERM to syncord-host stops QEMU and removes
// its sockets.
func TestHostVMPinAMP(t *testing.T) {
	skipUnlessEnabled(t)
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 not found (apt-get install qemu-system-x86)")
	}
	_, hostBin := Binaries(t)
	k := Kernel(t)

	fixture := filepath.Join("..", "numa", "testdata", "synth-2x4-cpufreq")
	files := map[string]string{}
	err := filepath.WalkDir(fixture, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: only regular files go into the initramfs", p)
		}
		rel, _ := filepath.Rel(fixture, p)
		files["/fixture/synth-2x4-cpufreq/"+filepath.ToSlash(rel)] = p
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	initrd := Initramfs(t, Config{Sockets: 2, Cores: 2, Init: hostGuestInit, Files: files})

	// Short socket paths (108-byte limit).
	dir, err := os.MkdirTemp("", "sce2e-host-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	qmp, serial, console := filepath.Join(dir, "qmp.sock"), filepath.Join(dir, "agent.sock"), filepath.Join(dir, "console.log")
	hostLog, err := os.Create(filepath.Join(dir, "syncord-host.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer hostLog.Close()

	cmd := exec.Command(hostBin, "vm", "--sockets", "2", "--cores", "2", "--mem-per-node", "256",
		"--kernel", k.Vmlinuz, "--initrd", initrd, "--append", "console=ttyS0 panic=-1 loglevel=4 rdinit=/init",
		"--qmp", qmp, "--serial", serial, "--console", console, "--host-nodes", "auto")
	cmd.Stdout, cmd.Stderr = hostLog, hostLog
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{}) // closed when syncord-host has exited
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	qemuPID := 0
	t.Cleanup(func() {
		// Kill only what this test started, by PID.
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
		if qemuPID != 0 {
			if _, err := vm.QEMUProcess("", qemuPID); err == nil {
				syscall.Kill(qemuPID, syscall.SIGKILL)
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(hostLog.Name())
			c, _ := os.ReadFile(console)
			t.Logf("syncord-host log:\n%s\n--- console ---\n%s", b, tailLines(string(c), 40))
		}
	})

	// The monitor comes up as soon as QEMU runs; the guest boots meanwhile.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var cpus []vm.CPU
	for {
		c, err := vm.DialQMP(ctx, qmp)
		if err == nil {
			cpus, err = c.QueryCPUsFast(ctx)
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		select {
		case <-exited:
			t.Fatalf("syncord-host vm exited early: %v", waitErr)
		case <-ctx.Done():
			t.Fatalf("QMP %s never answered: %v", qmp, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if len(cpus) != 4 {
		t.Fatalf("guest has %d vCPUs, want 4: %+v", len(cpus), cpus)
	}
	qemuPID, err = vm.QEMUProcess("", cpus[0].ThreadID)
	if err != nil {
		t.Fatal(err)
	}

	// Pin with the command, as a user would.
	pin := exec.Command(hostBin, "pin", "--qmp", qmp, "--plan", "identity", "--allow-oversubscribe", "--json")
	var pinOut, pinErr bytes.Buffer
	pin.Stdout, pin.Stderr = &pinOut, &pinErr
	if err := pin.Run(); err != nil {
		t.Fatalf("syncord-host pin: %v\n%s", err, pinErr.String())
	}
	var res struct {
		Plan           string          `json:"plan"`
		Oversubscribed bool            `json:"oversubscribed"`
		QEMUPID        int             `json:"qemu_pid"`
		Assignments    []vm.Assignment `json:"assignments"`
	}
	if err := json.Unmarshal(pinOut.Bytes(), &res); err != nil {
		t.Fatalf("pin --json: %v\n%s", err, pinOut.String())
	}
	if res.QEMUPID != qemuPID || len(res.Assignments) != 4 {
		t.Fatalf("pin result %+v, want 4 vCPUs of QEMU %d", res, qemuPID)
	}
	online, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		t.Fatal(err)
	}
	hostCPUs, err := numa.ParseCPUList(string(online))
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range res.Assignments {
		want := hostCPUs[i%hostCPUs.Len()] // identity, wrapped on a small host
		if hostCPUs.Contains(i) {
			want = i
		}
		if a.VCPU != i || a.ThreadID != cpus[i].ThreadID || a.HostCPU != want {
			t.Errorf("plan row %+v, want vCPU %d thread %d on CPU %d", a, i, cpus[i].ThreadID, want)
		}
		got := cpusAllowedList(t, qemuPID, a.ThreadID)
		if got != strconv.Itoa(want) {
			t.Errorf("vCPU %d thread %d: /proc/%d/task/%d/status Cpus_allowed_list %q, want %d", i, a.ThreadID, qemuPID, a.ThreadID, got, want)
		}
	}
	t.Logf("pinned 4 vCPUs of QEMU %d on %d host CPUs (oversubscribed %v)", qemuPID, hostCPUs.Len(), res.Oversubscribed)

	// Re-pin the running guest with the numa plan: every row of the plan
	// it prints is what /proc shows afterwards, and each guest socket
	// stays on one host node.
	pin = exec.Command(hostBin, "pin", "--qmp", qmp, "--plan", "numa", "--allow-oversubscribe", "--json")
	pinOut.Reset()
	pinErr.Reset()
	pin.Stdout, pin.Stderr = &pinOut, &pinErr
	if err := pin.Run(); err != nil {
		t.Fatalf("syncord-host pin --plan numa: %v\n%s", err, pinErr.String())
	}
	res.Assignments = nil
	if err := json.Unmarshal(pinOut.Bytes(), &res); err != nil || res.Plan != "numa" || len(res.Assignments) != 4 {
		t.Fatalf("pin --plan numa --json: %v\n%s", err, pinOut.String())
	}
	socketNode := map[int]int{}
	for _, a := range res.Assignments {
		if got := cpusAllowedList(t, qemuPID, a.ThreadID); got != strconv.Itoa(a.HostCPU) {
			t.Errorf("numa plan vCPU %d: Cpus_allowed_list %q, plan says %d", a.VCPU, got, a.HostCPU)
		}
		if n, ok := socketNode[a.GuestSocket]; ok && n != a.HostNode {
			t.Errorf("guest socket %d split over host nodes %d and %d", a.GuestSocket, n, a.HostNode)
		}
		socketNode[a.GuestSocket] = a.HostNode
	}

	// The guest, pinned, finishes its init and reports.
	report := waitConsole(t, console, "@@HOST-E2E done", 240*time.Second, exited, &waitErr)
	line := func(prefix string) string {
		for _, l := range strings.Split(report, "\n") {
			if i := strings.Index(l, "@@HOST-E2E "+prefix); i >= 0 {
				return strings.TrimSpace(l[i+len("@@HOST-E2E "):])
			}
		}
		t.Fatalf("no %q line in the guest report:\n%s", prefix, report)
		return ""
	}
	if l := line("layout"); l != "layout nproc=4 nodes=2 node0=0-1 node1=2-3" {
		t.Errorf("guest layout %q, want 4 CPUs in nodes 0-1 and 2-3", l)
	}
	live := line("live")
	switch {
	case strings.Contains(live, "cpufreq=no"):
		// TCG exposes no cpufreq driver: amp must refuse, with its reason.
		if !strings.Contains(live, "amp-rc=1") || !strings.Contains(live, "cpufreq not available on this machine") {
			t.Errorf("amp in a guest without cpufreq: %q", live)
		}
		t.Logf("guest has no cpufreq (TCG): amp refused as it should; amp proven on the fixture copy in the guest")
	default:
		if !strings.Contains(live, "amp-rc=0") {
			t.Errorf("amp against the guest's cpufreq: %q", live)
		}
		t.Logf("guest cpufreq: %s", live)
	}
	// Fixture (2 sockets x 4 CPUs): CPUs 0,1,4,5 fast.
	if l := line("fixture amp"); l != "fixture amp-rc=0 after=2200000-2200000,2200000-2200000,1500000-1500000,1500000-1500000,2200000-2200000,2200000-2200000,1500000-1500000,1500000-1500000," {
		t.Errorf("amp on the fixture in the guest: %q", l)
	}
	if l := line("fixture restore"); l != "fixture restore-rc=0 after="+strings.Repeat("1500000-2200000,", 8) {
		t.Errorf("amp restore on the fixture in the guest: %q", l)
	}

	// SIGTERM to syncord-host: QEMU stops, the sockets go.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("syncord-host vm after SIGTERM: %v", waitErr)
		}
	case <-time.After(vm.StopGrace + 20*time.Second):
		t.Fatal("syncord-host vm did not exit after SIGTERM")
	}
	if _, err := vm.QEMUProcess("", qemuPID); err == nil {
		t.Errorf("QEMU %d still running after syncord-host stopped", qemuPID)
	}
	for _, s := range []string{qmp, serial} {
		if _, err := os.Lstat(s); err == nil {
			t.Errorf("socket %s left behind", s)
		}
	}
}

// cpusAllowedList reads Cpus_allowed_list from /proc/PID/task/TID/status.
func cpusAllowedList(t *testing.T, pid, tid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^Cpus_allowed_list:\s*(\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no Cpus_allowed_list in /proc/%d/task/%d/status", pid, tid)
	}
	return string(m[1])
}

// waitConsole polls the console log until it holds marker.
func waitConsole(t *testing.T, path, marker string, limit time.Duration, exited <-chan struct{}, waitErr *error) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte(marker)) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("guest did not print %q within %v:\n%s", marker, limit, tailLines(string(b), 40))
		}
		select {
		case <-exited:
			t.Fatalf("syncord-host vm exited before the guest reported: %v\n%s", *waitErr, tailLines(string(b), 40))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
