package e2e

import (
	"strings"
	"testing"
)

// TestHarnessBoot proves the harness itself: the guest is the layout asked
// for, the channel returns output and exit status, modules load.
func TestHarnessBoot(t *testing.T) {
	vm := Boot(t, Config{Sockets: 2, Cores: 2, Modules: []string{"vsock_loopback"}})
	if out := vm.MustRun(t, "nproc"); strings.TrimSpace(out) != "4" {
		t.Fatalf("nproc = %q, want 4", out)
	}
	if out := vm.MustRun(t, "ls /sys/devices/system/node | grep -c '^node[0-9]'"); strings.TrimSpace(out) != "2" {
		t.Fatalf("nodes = %q, want 2", out)
	}
	out, code := vm.Run(t, "echo to-stderr >&2; exit 3")
	if code != 3 || strings.TrimSpace(out) != "to-stderr" {
		t.Fatalf("status %d output %q, want 3 and to-stderr", code, out)
	}
	if out := vm.MustRun(t, "grep -c '^vsock_loopback ' /proc/modules"); strings.TrimSpace(out) != "1" {
		t.Fatalf("vsock_loopback not loaded: %q", out)
	}
	if out := vm.MustRun(t, "syncord version"); !strings.HasPrefix(out, "syncord ") {
		t.Fatalf("syncord version: %q", out)
	}
	vm.MustRun(t, "grep -q ' /sys/fs/bpf bpf ' /proc/mounts")
	vm.MustRun(t, "grep -q ' /sys/kernel/tracing tracefs ' /proc/mounts")
	t.Logf("boot to first check: %v", vm.BootTime)
}

// TestBuildInitramfsSynCordNoModules: the SynCord kernels have their
// drivers built in, so asking for modules is an error, not a silent skip.
func TestBuildInitramfsSynCordNoModules(t *testing.T) {
	cfg := Config{SynCord: &SynCordKernel{Branch: StockSynCord, Release: "5.4.0-stock-syncord"}, Modules: []string{"vsock_loopback"}}
	err := BuildInitramfs(t.TempDir()+"/initramfs.cpio", nil, cfg, "/bin/true", "/bin/true")
	if err == nil || !strings.Contains(err.Error(), "leave Modules empty") {
		t.Fatalf("BuildInitramfs with SynCord and modules: %v, want an error saying to leave Modules empty", err)
	}
}
