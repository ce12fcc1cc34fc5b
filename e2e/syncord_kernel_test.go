package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestSynCordStockBoot proves the harness on a real SynCord kernel: the
// stock-syncord bzImage boots 2 sockets x 2 cores from an initramfs with
// no modules, syncord sees a SynCord kernel, and an out-of-tree module
// built against the extracted headers with gcc-11 loads and unloads; and
// the run counters of policy status and install --stats work on 5.4.
func TestSynCordStockBoot(t *testing.T) {
	k := SynCordKernelFor(t, StockSynCord)
	ko := filepath.Join(BuildModuleFor(t, k, "testdata/hello-syncord"), "syncord_hello.ko")
	files := statsFiles(t)
	files["/root/syncord_hello.ko"] = ko
	vm := Boot(t, Config{Sockets: 2, Cores: 2, SynCord: k, Files: files})
	t.Run("uname", func(t *testing.T) {
		if out := strings.TrimSpace(vm.MustRun(t, "uname -r")); out != k.Release {
			t.Fatalf("uname -r = %q, want %q", out, k.Release)
		}
		if out := strings.TrimSpace(vm.MustRun(t, "nproc")); out != "4" {
			t.Fatalf("nproc = %q, want 4", out)
		}
		if out := vm.MustRun(t, "ls /sys/devices/system/node | grep -c '^node[0-9]'"); strings.TrimSpace(out) != "2" {
			t.Fatalf("nodes = %q, want 2", out)
		}
	})
	t.Run("status", func(t *testing.T) {
		out := vm.MustRun(t, "syncord policy status --json")
		var st struct {
			Kernel struct {
				Release   string `json:"release"`
				SynCord   bool   `json:"syncord"`
				Livepatch bool   `json:"livepatch"`
			} `json:"kernel"`
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("policy status --json: %v\n%s", err, out)
		}
		if st.Kernel.Release != k.Release || !st.Kernel.SynCord || !st.Kernel.Livepatch {
			t.Fatalf("policy status kernel = %+v, want release %s, syncord and livepatch", st.Kernel, k.Release)
		}
	})
	t.Run("module", func(t *testing.T) {
		vm.MustRun(t, "insmod /root/syncord_hello.ko")
		if out := vm.MustRun(t, "grep -c '^syncord_hello ' /proc/modules || true"); strings.TrimSpace(out) != "1" {
			t.Fatalf("syncord_hello not in /proc/modules after insmod: %q", out)
		}
		vm.MustRun(t, "rmmod syncord_hello")
		if out := vm.MustRun(t, "grep -c '^syncord_hello ' /proc/modules || true"); strings.TrimSpace(out) != "0" {
			t.Fatalf("syncord_hello still loaded after rmmod: %q", out)
		}
		log := vm.MustRun(t, "dmesg | grep syncord_hello")
		if !strings.Contains(log, "syncord_hello: loaded (num_policy=") || !strings.Contains(log, "syncord_hello: unloaded") {
			t.Fatalf("dmesg lacks the module's load and unload lines:\n%s", log)
		}
	})
	t.Run("stats", func(t *testing.T) { checkRunStats(t, vm) })
	t.Run("agent paths", func(t *testing.T) { checkAgentPaths(t, vm) })
	checkBranch(t, vm, k, map[string]string{"amp": "shfllock-syncord", "numa-scl": "shfllock-syncord", "numa-grouping-cna": "cna-syncord"})
	checkXDir(t, vm, true)
	t.Run("right-branch", func(t *testing.T) {
		for _, name := range []string{"lockstat", "bravo"} {
			vm.MustRun(t, "syncord policy install "+name+" && syncord policy uninstall "+name)
		}
	})
}

// checkAgentPaths runs an agent on a unix socket in the guest (on 5.4 there
// is no openat2: the path walk falls back to openat) and checks that paths
// are resolved under its bench root: a relative one lands there, one outside
// and one leading out through a link are refused with status 77.
func checkAgentPaths(t *testing.T, vm *VM) {
	vm.MustRun(t, "mkdir -p /tmp/br /tmp/out && ln -sfn /tmp/out /tmp/br/esc && "+
		"(syncord agent --listen unix:///run/pa.sock --bench-root /tmp/br --reconcile=false >/tmp/pa.log 2>&1 & echo $! >/tmp/pa.pid) && "+
		"for i in $(seq 50); do [ -S /run/pa.sock ] && break; sleep 0.1; done")
	defer vm.Run(t, "kill $(cat /tmp/pa.pid); rm -rf /tmp/br /tmp/out")
	g := "syncord-host guest --unix /run/pa.sock -- "
	if out, code := vm.Run(t, g+"bench xdir prepare --dir rel -n 3"); code != 0 || !strings.Contains(out, "/tmp/br/rel/dst_3_files (3 files") {
		log, _ := vm.Run(t, "cat /tmp/pa.log")
		t.Fatalf("relative --dir over the agent: status %d\n%s\nagent log:\n%s", code, out, log)
	}
	for _, dir := range []string{"/etc/x", "/tmp/br/esc/x", "/tmp/br/esc/../x"} {
		if out, code := vm.Run(t, g+"bench xdir prepare --dir "+dir+" -n 3"); code != 77 || !strings.Contains(out, "outside the bench roots") {
			t.Errorf("--dir %s over the agent: status %d, want 77\n%s", dir, code, out)
		}
	}
	if out := vm.MustRun(t, "ls -A /tmp/out; ls -d /tmp/x /etc/x 2>/dev/null; true"); strings.TrimSpace(out) != "" {
		t.Errorf("something was made outside the bench root: %q", out)
	}
}
