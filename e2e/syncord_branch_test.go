package e2e

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kallsymsExcerpt is the guest shell that prints the /proc/kallsyms lines
// kernel.Probe's SynCord and branch detection reads (and a few neighbours
// for context), sorted by name, modules' symbols left out.
const kallsymsExcerpt = `awk 'BEGIN {
	n = split("_stext _etext d_move rename_lock num_policy bpf_queued_spin_lock bpf_queued_spin_unlock bpf_back_off bpf_back_off_proto bpf_loop_until bpf_loop_until_proto __x64_sys_rename2 __ia32_sys_rename2 queued_spin_lock_slowpath native_queued_spin_lock_slowpath bpf_prog_should_reorder bpf_prog_skip_reorder", w, " ")
	for (i = 1; i <= n; i++) want[w[i]] = 1
}
NF == 3 && (($3 in want) || $3 ~ /^(bpf_prog_lock_|syncord_|__cna_|cna_)/)' /proc/kallsyms | sort -k3`

// kallsymsFixtures is where captured excerpts go (package kernel's tests).
const kallsymsFixtures = "../kernel/testdata/kallsyms"

// captureKallsyms writes the guest's excerpt to
// kernel/testdata/kallsyms/<branch>.txt (SYNCORD_UPDATE_FIXTURES=1), or
// checks that the committed one names the same symbols with the same types
// (addresses aside).
func captureKallsyms(t *testing.T, vm *VM, k *SynCordKernel) {
	t.Helper()
	out := vm.MustRun(t, kallsymsExcerpt)
	path := filepath.Join(kallsymsFixtures, k.Branch+".txt")
	header := "# CAPTURED from /proc/kallsyms of " + k.Release + " booted in the e2e VM (QEMU TCG, 2x2);\n# refresh: SYNCORD_E2E=1 SYNCORD_UPDATE_FIXTURES=1 go test ./e2e -run TestSynCord\n"
	if updateFixtures() {
		if err := os.MkdirAll(kallsymsFixtures, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(header+out), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no committed excerpt %s (SYNCORD_UPDATE_FIXTURES=1 writes it): %v", path, err)
	}
	if got, want := symbolSet(out), symbolSet(string(b)); got != want {
		t.Errorf("%s no longer matches the booted kernel (refresh with SYNCORD_UPDATE_FIXTURES=1)\nguest:\n%s\ncommitted:\n%s", path, got, want)
	}
}

// symbolSet is "type name" per line, without addresses and comments.
func symbolSet(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && !strings.HasPrefix(l, "#") {
			b.WriteString(f[1] + " " + f[2] + "\n")
		}
	}
	return b.String()
}

// TestSynCordCapture (only with SYNCORD_UPDATE_FIXTURES=1) boots each
// SynCord kernel and captures its kallsyms excerpt.
func TestSynCordCapture(t *testing.T) {
	if !updateFixtures() {
		t.Skip("skipping: captures fixtures only with SYNCORD_UPDATE_FIXTURES=1")
	}
	for _, b := range []string{StockSynCord, ShfllockSynCord, CNASynCord} {
		t.Run(b, func(t *testing.T) {
			k := SynCordKernelFor(t, b)
			vm := Boot(t, Config{Sockets: 2, Cores: 2, SynCord: k})
			captureKallsyms(t, vm, k)
		})
	}
}

// checkBranch proves on a booted SynCord kernel that syncord names its
// branch from kallsyms, that the committed kallsyms excerpt still matches,
// and that each policy of refused is turned down naming the branch it
// needs, with nothing left behind: no bpffs entry, no record, no module.
func checkBranch(t *testing.T, vm *VM, k *SynCordKernel, refused map[string]string) {
	t.Run("branch", func(t *testing.T) {
		out := vm.MustRun(t, "syncord policy status --json")
		var st struct {
			Kernel struct {
				Branch     string `json:"branch"`
				BranchFrom string `json:"branch_from"`
			} `json:"kernel"`
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("policy status --json: %v\n%s", err, out)
		}
		if st.Kernel.Branch != k.Branch || !strings.HasPrefix(st.Kernel.BranchFrom, "kallsyms: ") {
			t.Fatalf("policy status: branch %q (%s), want %s from kallsyms", st.Kernel.Branch, st.Kernel.BranchFrom, k.Branch)
		}
		if txt := vm.MustRun(t, "syncord policy status"); !strings.Contains(txt, "\nbranch "+k.Branch+" (kallsyms: ") {
			t.Fatalf("policy status text lacks the branch line:\n%s", txt)
		}
		captureKallsyms(t, vm, k)
	})
	t.Run("wrong-branch", func(t *testing.T) {
		const snapshot = "ls -A /sys/fs/bpf; echo --; ls -A /run/syncord/policies 2>/dev/null; echo --; cut -d' ' -f1 /proc/modules | sort"
		before := vm.MustRun(t, snapshot)
		for name, need := range refused {
			out, code := vm.Run(t, "syncord policy install "+name+" --stats")
			if code == 0 || !strings.Contains(out, "needs a "+need+" kernel") || strings.Contains(out, "bad address") ||
				strings.Contains(out, "EFAULT") || strings.Contains(out, "verifier") {
				t.Errorf("install %s on %s: exit %d\n%s\nwant a refusal naming %s before the verifier", name, k.Branch, code, out, need)
			}
		}
		if after := vm.MustRun(t, snapshot); after != before {
			t.Errorf("refused installs left something behind:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if v := strings.TrimSpace(vm.MustRun(t, "cat /proc/sys/kernel/bpf_stats_enabled")); v != "0" {
			t.Errorf("a refused install --stats left bpf_stats_enabled=%s", v)
		}
	})
}

// TestSynCordCNA boots cna-syncord: branch detection and refusals, and
// bench xdir, which falls back from the missing syscall 436.
func TestSynCordCNA(t *testing.T) {
	k := SynCordKernelFor(t, CNASynCord)
	files := map[string]string{}
	buildPolicyOut(t, k, "lockstat", files)
	buildPolicyOut(t, k, "numa-grouping-cna", files)
	vm := Boot(t, Config{Sockets: 2, Cores: 2, SynCord: k, Files: files, Append: noTimerCheck})
	if log := vm.MustRun(t, "dmesg | grep -c 'Enabling CNA spinlock' || true"); strings.TrimSpace(log) != "1" {
		t.Errorf("dmesg lacks \"Enabling CNA spinlock\" (CNA not active?)")
	}
	checkBranch(t, vm, k, map[string]string{"numa-grouping": "shfllock-syncord", "amp": "shfllock-syncord", "bravo": "stock-syncord"})
	checkXDir(t, vm, false)
	checkLockstatCNA(t, vm)
	checkNumaGroupingCNA(t, vm)
}

// TestSynCordCNAInactive boots cna-syncord on one NUMA node, where the
// kernel keeps the plain qspinlock slow path (no "Enabling CNA spinlock"):
// numa-grouping-cna's module refuses to load, saying why, and the install
// is rolled back completely.
func TestSynCordCNAInactive(t *testing.T) {
	k := SynCordKernelFor(t, CNASynCord)
	files := map[string]string{}
	buildPolicyOut(t, k, "numa-grouping-cna", files)
	vm := Boot(t, Config{Sockets: 1, Cores: 2, SynCord: k, Files: files, Append: noTimerCheck})
	if n := strings.TrimSpace(vm.MustRun(t, "dmesg | grep -c 'Enabling CNA spinlock' || true")); n != "0" {
		t.Fatalf("CNA is active on one node (dmesg says so %s times)", n)
	}
	out, code := vm.Run(t, "syncord policy install /root/out/numa-grouping-cna --stats 2>&1")
	if code == 0 || !strings.Contains(out, "finit_module") {
		t.Fatalf("install of numa-grouping-cna without CNA: exit %d\n%s", code, out)
	}
	if log := vm.MustRun(t, "dmesg | tail -5"); !strings.Contains(log, "concord: policy numa-grouping-cna: CNA is not active on this boot") {
		t.Fatalf("dmesg does not say why the module refused:\n%s", log)
	}
	assertNoPolicyLeft(t, vm, "livepatch_concord_")
	if got := strings.TrimSpace(vm.MustRun(t, "cat /proc/sys/kernel/bpf_stats_enabled; ls /run/syncord/policies 2>/dev/null | wc -l")); got != "0\n0" {
		t.Fatalf("after the refused install: bpf_stats_enabled, records = %q, want 0 0", got)
	}
	assertNoKernelProblem(t, vm)
}

// TestSynCordShfllock boots shfllock-syncord: branch detection and
// refusals, amp and numa-grouping through our concord livepatch, and scl
// and numa-scl on s_vfs_rename_mutex under xdir (ext4 image without
// dir_index at /dev/vda).
func TestSynCordShfllock(t *testing.T) {
	k := SynCordKernelFor(t, ShfllockSynCord)
	files := map[string]string{}
	buildPolicyOut(t, k, "amp", files)
	buildPolicyOut(t, k, "numa-grouping", files)
	buildNumaGrouping2(t, k, files)
	buildPolicyOut(t, k, "scl", files)
	buildPolicyOut(t, k, "numa-scl", files)
	vm := Boot(t, Config{Sockets: 2, Cores: 2, SynCord: k, Files: files, Append: noTimerCheck, Disks: []string{sclXDirImage(t)}})
	checkBranch(t, vm, k, map[string]string{"numa-grouping-cna": "cna-syncord", "bravo": "stock-syncord"})
	checkAmpLivepatch(t, vm)
	checkNumaGroupingLivepatch(t, vm)
	checkNumaGroupingWithAmp(t, vm)
	checkSclLivepatch(t, vm)
	checkNumaSclLivepatch(t, vm)
}

// checkXDir runs bench xdir on the SynCord guest (tmpfs is enough to run;
// the figures need ext4 without dir_index). With syscall 436 the JSON says
// lock_hold is TSC cycles, converts it with the TSC frequency from the
// kernel's log, and the text output keeps the artifact's exact lines with
// the unit on stderr; without 436 (cna-syncord) the run falls back to the
// measured rename duration in ns and says so.
func checkXDir(t *testing.T, vm *VM, syscall436 bool) {
	t.Run("xdir", func(t *testing.T) {
		vm.MustRun(t, "syncord bench xdir prepare --dir /tmp/xd -n 200 >/dev/null")
		const run = "syncord bench xdir run /tmp/xd/src_empty /tmp/xd/dst_200_files /tmp/xd/dst_empty 1 1 1"
		out, _ := withoutProgress(vm.MustRun(t, run+" --json"))
		var res struct {
			Source    string  `json:"lock_hold_source"`
			Unit      string  `json:"lock_hold_unit"`
			TSCHz     float64 `json:"tsc_hz"`
			TSCSource string  `json:"tsc_hz_source"`
			Note      string  `json:"note"`
			Tasks     []struct {
				LockHold   uint64   `json:"lock_hold"`
				LockHoldNs *float64 `json:"lock_hold_ns"`
				Runs       int64    `json:"runs"`
			} `json:"tasks"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("xdir --json: %v\n%s", err, out)
		}
		if len(res.Tasks) != 2 {
			t.Fatalf("xdir: %d tasks\n%s", len(res.Tasks), out)
		}
		for i, tk := range res.Tasks {
			if tk.Runs <= 0 || tk.LockHold == 0 || tk.LockHoldNs == nil {
				t.Fatalf("task %d: %+v\n%s", i, tk, out)
			}
		}
		if syscall436 {
			if res.Source != "syscall436" || res.Unit != "tsc_cycles" || res.TSCHz < 1e8 || res.TSCHz > 1e10 ||
				!strings.HasPrefix(res.TSCSource, "kernel log: ") || !strings.Contains(res.TSCSource, "tsc: ") {
				t.Fatalf("xdir on a kernel with syscall 436: %s", out)
			}
			for i, tk := range res.Tasks {
				if want := float64(tk.LockHold) * 1e9 / res.TSCHz; math.Abs(*tk.LockHoldNs-want) > 1e-6*want+1 {
					t.Errorf("task %d: lock_hold_ns %v, want %d cycles at %v Hz = %v", i, *tk.LockHoldNs, tk.LockHold, res.TSCHz, want)
				}
			}
			t.Logf("TSC %.3f MHz from %q", res.TSCHz/1e6, res.TSCSource)
		} else if res.Source != "rename_duration" || res.Unit != "ns" || !strings.Contains(res.Note, "no syscall 436") {
			t.Fatalf("xdir without syscall 436: want the rename duration in ns and a note: %s", out)
		}
		text := vm.MustRun(t, run+" 2>/tmp/xd.err")
		if !strings.HasPrefix(text, "[b] task 0: lock_hold=") || !strings.Contains(text, "\n[v] task 1: lock_hold=") || !strings.Contains(text, "\nfairness=") ||
			strings.Contains(text, "syncord:") {
			t.Errorf("xdir text output is not the artifact's:\n%s", text)
		}
		stderr := vm.MustRun(t, "cat /tmp/xd.err")
		if want := map[bool]string{true: "lock_hold is in TSC cycles", false: "no syscall 436"}[syscall436]; !strings.Contains(stderr, want) {
			t.Errorf("xdir stderr lacks %q:\n%s", want, stderr)
		}
		vm.MustRun(t, "rm -rf /tmp/xd /tmp/xd.err")
	})
}
