package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// kernelStall matches the kernel's lockup and RCU stall reports.
var kernelStall = regexp.MustCompile(`soft lockup|hard LOCKUP|self-detected stall|detected stalls|hung_task|blocked for more than`)

// mwrlExact runs MWRL with n workers for secs seconds in a fresh dir and
// checks its result: each worker renames its file N -> N+1, so a rename the
// kernel lost or misplaced fails the next one and the run (unpinned:
// more workers than vCPUs); the run must
// exit 0, every worker must have renamed, and the total must be the sum of
// the workers'. It returns the total.
func mwrlExact(t *testing.T, vm *VM, dir string, n, secs int) uint64 {
	t.Helper()
	out := vm.MustRun(t, mwrlCmd(dir, n, secs))
	works := mwrlCheck(t, out, n)
	vm.MustRun(t, "rm -rf "+dir)
	return works
}

// mwrlCmd is the guest command of mwrlExact: its JSON report on stdout,
// status lines on stderr.
func mwrlCmd(dir string, n, secs int) string {
	return fmt.Sprintf("rm -rf %s && mkdir -p %s && syncord bench fxmark --type MWRL --ncore %d --duration %d --root %s --no-affinity --json", dir, dir, n, secs, dir)
}

// mwrlCheck checks the JSON report of an MWRL run of n workers as
// mwrlExact does and returns its works.
func mwrlCheck(t *testing.T, out string, n int) uint64 {
	t.Helper()
	out, _ = withoutProgress(out)
	var res struct {
		Works   float64 `json:"works"`
		Workers []struct {
			Works float64 `json:"works"`
		} `json:"workers"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("MWRL --json: %v\n%s", err, out)
	}
	var sum float64
	for i, w := range res.Workers {
		if w.Works <= 0 {
			t.Fatalf("MWRL worker %d made no renames:\n%s", i, out)
		}
		sum += w.Works
	}
	if len(res.Workers) != n || sum != res.Works || res.Works <= 0 {
		t.Fatalf("MWRL: %d workers, works %v, sum of the workers' %v:\n%s", len(res.Workers), res.Works, sum, out)
	}
	return uint64(res.Works)
}

// checkNumaGroupingLivepatch installs numa-grouping with our concord
// livepatch on shfllock-syncord: it replaces ShflLock's waiter shuffle, so
// the policy's should_reorder program decides the grouping of every
// contended spinlock's waiters. The witness is the kernel's own bpf_stats
// run count of the program (not our module's), under MWRL's rename_lock
// contention; MWRL's renames stay exact; uninstall leaves nothing and dmesg
// has no WARN, BUG or stall.
func checkNumaGroupingLivepatch(t *testing.T, vm *VM) {
	t.Run("numa-grouping-livepatch", func(t *testing.T) {
		start := time.Now()
		vm.MustRun(t, "true")
		rtt := time.Since(start)
		start = time.Now()
		out := vm.MustRun(t, "syncord policy install /root/out/numa-grouping --stats 2>&1")
		t.Logf("install (load, pin, insmod, transition) took %s", (time.Since(start) - rtt).Round(time.Millisecond))
		if !strings.Contains(out, "livepatch_concord_numa_grouping") {
			t.Fatalf("install output does not name the module:\n%s", out)
		}
		if got := strings.TrimSpace(vm.MustRun(t, "cat /sys/kernel/livepatch/livepatch_concord_numa_grouping/enabled /sys/kernel/livepatch/livepatch_concord_numa_grouping/transition /sys/module/livepatch_concord_numa_grouping/parameters/slot")); got != "1\n0\n1" {
			t.Fatalf("enabled, transition, slot = %q, want 1 0 1", got)
		}
		if log := vm.MustRun(t, "dmesg"); !strings.Contains(log, "concord: policy numa-grouping on all_spinlocks in slot 1") {
			t.Fatalf("dmesg lacks the module's slot line:\n%s", log)
		}
		// Comparisons need three waiters queued on one spinlock (the
		// shuffler, one to consider, one behind it: the tail is never
		// touched); under TCG that is rare, 8 workers on 4 vCPUs help.
		var runs, renames uint64
		for i, secs := range []int{5, 8} {
			renames += mwrlExact(t, vm, fmt.Sprintf("/tmp/ng%d", i), 8, secs)
			if runs = hookRuns(t, vm, "numa-grouping")["should_reorder"]; runs > 0 {
				break
			}
		}
		vm.MustRun(t, "syncord policy uninstall numa-grouping 2>&1")
		assertNoPolicyLeft(t, vm, "livepatch_concord_")
		if v := strings.TrimSpace(vm.MustRun(t, "cat /proc/sys/kernel/bpf_stats_enabled")); v != "0" {
			t.Errorf("uninstall left bpf_stats_enabled=%s", v)
		}
		if log := vm.MustRun(t, "dmesg"); !strings.Contains(log, "concord: policy numa-grouping left slot 1") {
			t.Errorf("dmesg lacks the module's unpatch line")
		}
		assertNoKernelProblem(t, vm)
		if log := vm.MustRun(t, "dmesg"); kernelStall.MatchString(log) {
			t.Fatalf("dmesg shows a stall:\n%s", log)
		}
		// The kernel's own shuffle is back and spinlocks still work.
		mwrlExact(t, vm, "/tmp/ng-after", 8, 1)
		if runs == 0 {
			t.Skip("skipping: in two MWRL runs (8 workers, 13 s, " + fmt.Sprint(renames) + " renames) no spinlock had three waiters queued at once, so the shuffle never compared two (the install, the exact renames through our shuffle and the clean uninstall were checked)")
		}
		t.Logf("numa-grouping's should_reorder ran %d times (kernel bpf_stats) during %d MWRL renames", runs, renames)
	})
}

// BenchmarkSynCordNumaGrouping measures, on the real shfllock-syncord
// kernel (2x2 TCG guest, one VM for all iterations):
//
//   - build-s: syncord policy build numa-grouping --livepatch on the host
//     (kbuild of our concord module with shuffle.c against the extracted
//     headers, gcc-11), median of 3;
//
//   - install-s: syncord policy install of numa-grouping with its
//     livepatch (load, pin, insmod, transition) as seen by the host, less
//     the round trip of a no-op guest command, median;
//
//   - uninstall-s: the same for syncord policy uninstall.
//
//     SYNCORD_E2E=1 go test ./e2e -run '^$' -bench SynCordNumaGrouping -benchtime 7x
func BenchmarkSynCordNumaGrouping(b *testing.B) {
	vm, builds := benchBuildBoot(b, ShfllockSynCord, "numa-grouping")
	var installs, uninstalls []float64
	for b.Loop() {
		start := time.Now()
		vm.MustRun(b, "true")
		rtt := time.Since(start)
		start = time.Now()
		vm.MustRun(b, "syncord policy install /root/out/numa-grouping >/dev/null 2>&1")
		installs = append(installs, (time.Since(start) - rtt).Seconds())
		start = time.Now()
		vm.MustRun(b, "syncord policy uninstall numa-grouping >/dev/null 2>&1")
		uninstalls = append(uninstalls, (time.Since(start) - rtt).Seconds())
	}
	b.ReportMetric(median(builds), "build-s")
	b.ReportMetric(median(installs), "install-s")
	b.ReportMetric(median(uninstalls), "uninstall-s")
	b.ReportMetric(0, "ns/op")
}

// buildNumaGrouping2 builds numa-grouping again as policy numa-grouping2
// (its own pin and module, livepatch_concord_numa_grouping2): a second
// all_spinlocks policy.
func buildNumaGrouping2(t *testing.T, k *SynCordKernel, files map[string]string) {
	t.Helper()
	buildRenamedPolicy(t, k, "numa-grouping", "numa-grouping2", files)
}

// checkNumaGroupingWithAmp stacks numa-grouping on amp: amp takes slot 1
// (rename_lock through our bpf_queued_spin_lock), numa-grouping slot 2
// (every spinlock's shuffle, rename_lock's too); a second all_spinlocks
// policy (numa-grouping2) is refused while numa-grouping is there, leaving
// nothing behind; MWRL's renames stay exact under both, amp leaves first
// (the lower patch) and numa-grouping keeps the kernel working on its own,
// then leaves too: nothing is left.
func checkNumaGroupingWithAmp(t *testing.T, vm *VM) {
	t.Run("numa-grouping-with-amp", func(t *testing.T) {
		vm.MustRun(t, "syncord policy install /root/out/amp --stats 2>&1 && syncord policy install /root/out/numa-grouping --stats 2>&1")
		if got := strings.Fields(vm.MustRun(t, "cat /sys/module/livepatch_concord_amp/parameters/slot /sys/module/livepatch_concord_numa_grouping/parameters/slot")); len(got) != 2 || got[0] != "1" || got[1] != "2" {
			t.Fatalf("slots of amp, numa-grouping = %v, want 1 2", got)
		}
		const snapshot = "ls -A /sys/fs/bpf; echo --; ls -A /run/syncord/policies 2>/dev/null; echo --; cut -d' ' -f1 /proc/modules | sort; echo --; ls /sys/kernel/livepatch"
		before := vm.MustRun(t, snapshot)
		// syncord refuses it from its records; the module, inserted by
		// hand, refuses it too.
		if out, code := vm.Run(t, "syncord policy install /root/out/numa-grouping2 2>&1"); code == 0 || !strings.Contains(out, "policy numa-grouping already holds target all_spinlocks through livepatch_concord_numa_grouping") {
			t.Fatalf("a second all_spinlocks policy beside numa-grouping: exit %d\n%s", code, out)
		}
		if out, code := vm.Run(t, "busybox insmod /root/out/numa-grouping2/LivePatchGen/livepatch-concord.ko 2>&1"); code == 0 {
			t.Fatalf("numa-grouping2's module inserted by hand beside numa-grouping:\n%s", out)
		}
		if log := vm.MustRun(t, "dmesg"); !strings.Contains(log, "concord: policy numa-grouping2: module livepatch_concord_numa_grouping already replaces the function concord_shuffle_waiters replaces on target all_spinlocks") {
			t.Fatalf("dmesg lacks the refusal of numa-grouping2:\n%s", log)
		}
		if after := vm.MustRun(t, snapshot); after != before {
			t.Fatalf("the refused numa-grouping2 left something behind:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		renames := mwrlExact(t, vm, "/tmp/nga", 8, 4)
		amp, ng := hookRuns(t, vm, "amp")["lock_to_enter_slowpath"], hookRuns(t, vm, "numa-grouping")["should_reorder"]
		vm.MustRun(t, "syncord policy uninstall amp 2>&1")
		if out := vm.MustRun(t, "cat /proc/modules"); strings.Contains(out, "livepatch_concord_amp") || !strings.Contains(out, "livepatch_concord_numa_grouping") {
			t.Fatalf("after uninstalling amp:\n%s", out)
		}
		renames += mwrlExact(t, vm, "/tmp/nga", 8, 1)
		vm.MustRun(t, "syncord policy uninstall numa-grouping 2>&1")
		assertNoPolicyLeft(t, vm, "livepatch_concord_")
		assertNoKernelProblem(t, vm)
		if log := vm.MustRun(t, "dmesg"); kernelStall.MatchString(log) {
			t.Fatalf("dmesg shows a stall:\n%s", log)
		}
		t.Logf("stacked: %d exact MWRL renames; amp's to_enter_slowpath ran %d times, numa-grouping's should_reorder %d", renames, amp, ng)
	})
}
