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
}
