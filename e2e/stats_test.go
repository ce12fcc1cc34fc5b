package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	progrunOnce sync.Once
	progrunPath string
	progrunErr  error
)

// progrunBin builds e2e/cmd/progrun (static) once per test process.
func progrunBin(t *testing.T) string {
	t.Helper()
	Binaries(t)
	progrunOnce.Do(func() {
		top, err := repoRoot()
		if err != nil {
			progrunErr = err
			return
		}
		progrunPath = filepath.Join(binDir, "progrun")
		cmd := exec.Command("go", "build", "-trimpath", "-o", progrunPath, "./e2e/cmd/progrun")
		cmd.Dir = top
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			progrunErr = fmt.Errorf("go build ./e2e/cmd/progrun: %v\n%s", err, b)
		}
	})
	if progrunErr != nil {
		t.Fatal(progrunErr)
	}
	return progrunPath
}

// statsPolicyDir is a policy of one helper-free socket filter, pinned as
// syncord_stats_filter with hook "test_run".
const statsPolicyDir = "testdata/stats-policy"

// statsFiles are the guest files checkRunStats needs.
func statsFiles(t *testing.T) map[string]string {
	t.Helper()
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	return map[string]string{
		"/bin/progrun":                        progrunBin(t),
		"/root/statspolicy/manifest.json":     abs(filepath.Join(statsPolicyDir, "manifest.json")),
		"/root/statspolicy/stats_test_kern.o": abs(filepath.Join(statsPolicyDir, "stats_test_kern.o")),
	}
}

type statusJSON struct {
	Kernel struct {
		BPFStats bool `json:"bpf_stats_enabled"`
	} `json:"kernel"`
	Policies []struct {
		Record struct {
			Name  string `json:"name"`
			Stats *struct {
				Previous string `json:"previous"`
				Restore  bool   `json:"restore"`
			} `json:"stats"`
		} `json:"record"`
		Programs []struct {
			Pin       string `json:"pin"`
			RunCount  uint64 `json:"run_count"`
			RunTimeNs uint64 `json:"run_time_ns"`
			Error     string `json:"error"`
		} `json:"programs"`
	} `json:"policies"`
}

func statsStatus(t *testing.T, vm *VM) statusJSON {
	t.Helper()
	out := vm.MustRun(t, "syncord policy status --json")
	var st statusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("policy status --json: %v\n%s", err, out)
	}
	if len(st.Policies) != 1 || len(st.Policies[0].Programs) != 1 {
		t.Fatalf("policy status: want one policy with one program:\n%s", out)
	}
	return st
}

// checkRunStats proves policy install --stats and the run counters in
// policy status on the guest's real kernel: without --stats a program run
// 500 times counts nothing and status says why; with --stats
// kernel.bpf_stats_enabled goes 0 -> 1, the same 500 runs count exactly
// 500 with a run time, and uninstall puts the sysctl back to 0. The
// program is a helper-free socket filter (testdata/stats-policy), run with BPF_PROG_TEST_RUN
// (progrun): a lock policy program cannot be run that way, and which
// program runs does not matter to the counters.
func checkRunStats(t *testing.T, vm *VM) {
	const pin, runs = "/sys/fs/bpf/syncord_stats_filter", 500
	sysctl := func() string { return strings.TrimSpace(vm.MustRun(t, "cat /proc/sys/kernel/bpf_stats_enabled")) }
	if v := sysctl(); v != "0" {
		t.Fatalf("bpf_stats_enabled=%s at boot, want 0", v)
	}
	vm.MustRun(t, "syncord policy install /root/statspolicy")
	vm.MustRun(t, fmt.Sprintf("progrun %s %d", pin, runs))
	st := statsStatus(t, vm)
	if p := st.Policies[0].Programs[0]; st.Kernel.BPFStats || p.Error != "" || p.RunCount != 0 {
		t.Fatalf("without --stats: stats_enabled=%v program %+v, want off and run_count 0", st.Kernel.BPFStats, p)
	}
	if out := vm.MustRun(t, "syncord policy status"); !strings.Contains(out, "kernel.bpf_stats_enabled is 0") ||
		!strings.Contains(out, "hook test_run "+pin+": run_count=0 run_time_ns=0") {
		t.Fatalf("policy status does not say the counters are off:\n%s", out)
	}
	vm.MustRun(t, "syncord policy uninstall")

	vm.MustRun(t, "syncord policy install /root/statspolicy --stats")
	if v := sysctl(); v != "1" {
		t.Fatalf("bpf_stats_enabled=%s after install --stats, want 1", v)
	}
	vm.MustRun(t, fmt.Sprintf("progrun %s %d", pin, runs))
	st = statsStatus(t, vm)
	p := st.Policies[0].Programs[0]
	if !st.Kernel.BPFStats || p.Pin != pin || p.RunCount != runs || p.RunTimeNs == 0 {
		t.Fatalf("with --stats after %d runs: stats_enabled=%v program %+v, want run_count %d and a run time", runs, st.Kernel.BPFStats, p, runs)
	}
	if s := st.Policies[0].Record.Stats; s == nil || s.Previous != "0" || !s.Restore {
		t.Fatalf("record stats %+v, want previous 0 to restore", s)
	}
	out := vm.MustRun(t, "syncord policy status")
	if !strings.Contains(out, fmt.Sprintf("hook test_run %s: run_count=%d run_time_ns=", pin, runs)) || strings.Contains(out, "is 0;") {
		t.Fatalf("policy status text:\n%s", out)
	}
	t.Logf("%d test runs of the socket filter: run_time_ns=%d (%.0f ns/run)", runs, p.RunTimeNs, float64(p.RunTimeNs)/runs)
	vm.MustRun(t, "syncord policy uninstall")
	if v := sysctl(); v != "0" {
		t.Fatalf("bpf_stats_enabled=%s after uninstall, want 0 restored", v)
	}
}

// TestPolicyStats: run counters and --stats on Debian's kernel.
func TestPolicyStats(t *testing.T) {
	skipUnlessEnabled(t)
	vm := Boot(t, Config{Sockets: 1, Cores: 2, Files: statsFiles(t)})
	checkRunStats(t, vm)
}
