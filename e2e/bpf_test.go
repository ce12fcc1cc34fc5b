package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestBPFPolicyObjects runs the bpf side in a Debian guest (another kernel
// than the host's): built-in policies listed, a lock policy refused on a
// stock kernel with nothing pinned, an object with a legacy BTF-less
// SEC("maps") lockstat map (the stock-loadable lockstat stand-in) loaded
// and pinned, syncord lockstat reading that pinned map, and nothing left.
func TestBPFPolicyObjects(t *testing.T) {
	skipUnlessEnabled(t)
	const stockpol = "../bpf/testdata/output/stockpol/eBPFGen"
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	vm := Boot(t, Config{Sockets: 2, Cores: 1, MemPerNodeMB: 256, Files: map[string]string{
		"/root/stockpol/manifest.json":   abs(filepath.Join(stockpol, "manifest.json")),
		"/root/stockpol/stockpol_kern.o": abs(filepath.Join(stockpol, "stockpol_kern.o")),
	}})
	clean := func(when string) {
		t.Helper()
		out := vm.MustRun(t, "ls -A /sys/fs/bpf")
		for _, f := range strings.Fields(out) {
			if f != "maps.debug" && f != "progs.debug" {
				t.Errorf("%s: bpffs holds %q", when, out)
				break
			}
		}
	}

	out := vm.MustRun(t, "syncord policy list --json")
	var list []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 7 {
		t.Fatalf("policy list --json: %v\n%s", err, out)
	}

	out, code := vm.Run(t, "syncord policy install lockstat")
	if code == 0 || !strings.Contains(out, "not a SynCord kernel") || !strings.Contains(out, "-syncord") {
		t.Fatalf("install lockstat on a stock kernel: exit %d\n%s", code, out)
	}
	clean("after refused install")

	out = vm.MustRun(t, "syncord policy install /root/stockpol")
	t.Logf("install stockpol:\n%s", out)
	pins := strings.Fields(vm.MustRun(t, "ls /sys/fs/bpf | grep -v debug"))
	if strings.Join(pins, " ") != "hash_map stockpol_lock_acquired stockpol_lock_to_release stockpol_to_enter_slow_path" {
		t.Fatalf("pins %v", pins)
	}
	table := vm.MustRun(t, "syncord lockstat")
	rule := strings.Repeat("=", 150)
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if len(lines) != 3 || lines[0] != rule || lines[2] != rule || !strings.HasPrefix(lines[1], "           lock addr     contentions") {
		t.Fatalf("syncord lockstat on the empty map:\n%s", table)
	}
	var js struct {
		Batched bool              `json:"batched"`
		Locks   []json.RawMessage `json:"locks"`
	}
	if out := vm.MustRun(t, "syncord lockstat --json"); json.Unmarshal([]byte(out), &js) != nil || !js.Batched || len(js.Locks) != 0 {
		t.Fatalf("lockstat --json: %s", out)
	}
	vm.MustRun(t, "syncord policy uninstall")
	clean("after uninstall")
	if _, code := vm.Run(t, "syncord lockstat"); code != 1 {
		t.Errorf("lockstat without a map: exit %d, want 1", code)
	}
}
