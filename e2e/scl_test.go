package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncord/syncord/livepatch/concord"
	"github.com/syncord/syncord/workloads/xdir"
)

// sclXDirFiles is the size of the bullies' directory on the xdir image:
// without dir_index a rename into it scans it linearly while holding
// s_vfs_rename_mutex, the victims' rename into an empty directory does not,
// so the two groups hold the lock for different lengths.
const sclXDirFiles = 2000

// sclXDirImage makes an ext4 image without dir_index holding xdir's
// directories with sclXDirFiles files (made on the host: creating them in
// the guest scans the directory each time), to attach as /dev/vda.
func sclXDirImage(t testing.TB) string {
	t.Helper()
	tmp := t.TempDir()
	root := filepath.Join(tmp, "root")
	if _, err := xdir.Prepare("/proc", root, sclXDirFiles); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(tmp, "xdir.img")
	if err := xdir.MakeImageFrom(context.Background(), img, 64<<20, root); err != nil {
		t.Fatal(err)
	}
	return img
}

// xdirFairness runs 2 bullies and 2 victims for secs seconds on the image
// mounted at /mnt/xdir and returns Jain's fairness of their lock hold times.
func xdirFairness(t testing.TB, vm *VM, secs int, extra string) (float64, string) {
	t.Helper()
	out, _ := withoutProgress(vm.MustRun(t, fmt.Sprintf("syncord bench xdir run /mnt/xdir/src_empty /mnt/xdir/dst_%d_files /mnt/xdir/dst_empty %d 2 2 --json%s", sclXDirFiles, secs, extra)))
	var r struct {
		Fairness *float64 `json:"fairness"`
		Bully    *float64 `json:"bully_mean_lock_hold"`
		Victim   *float64 `json:"victim_mean_lock_hold"`
		Ops      *float64 `json:"ops_per_sec"`
		BullyOps *float64 `json:"bully_ops_per_sec"`
		VicOps   *float64 `json:"victim_ops_per_sec"`
		Unit     string   `json:"lock_hold_unit"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Fairness == nil || r.Bully == nil || r.Victim == nil || r.Ops == nil || r.BullyOps == nil || r.VicOps == nil {
		t.Fatalf("xdir --json: %v\n%s", err, out)
	}
	return *r.Fairness, fmt.Sprintf("fairness=%.4f bully_mean_lock_hold=%.0f victim_mean_lock_hold=%.0f (%s) ops/s=%.1f bully=%.1f victim=%.1f",
		*r.Fairness, *r.Bully, *r.Victim, r.Unit, *r.Ops, *r.BullyOps, *r.VicOps)
}

// checkSclLivepatch installs scl with our concord livepatch on
// shfllock-syncord (target s_vfs_rename: lock_rename and the rename
// syscalls around the real s_vfs_rename_mutex) and runs xdir's cross-
// directory renames on the ext4 image at /dev/vda, before, with and after
// it. The witness is the kernel's bpf_stats: every rename through
// lock_rename runs lock_acquired and, paired through the module's per-task
// record, lock_to_release (syscall 436's, renameat's and busybox mv's
// entries, where unlock_rename is inlined); lock_to_enter_slowpath runs when
// the mutex was contended (skip with the reason when it never was). The
// fairness figures are measured and logged, not asserted (TCG). numa-scl is
// refused at build time (its grouping needs an admission queue).
func checkSclLivepatch(t *testing.T, vm *VM) {
	t.Run("scl-livepatch", func(t *testing.T) {
		vm.MustRun(t, "mkdir -p /mnt/xdir && mount -t ext4 /dev/vda /mnt/xdir")
		defer vm.Run(t, "umount /mnt/xdir")
		vm.MustRun(t, fmt.Sprintf("syncord bench xdir prepare --dir /mnt/xdir -n %d >/dev/null", sclXDirFiles))
		_, before := xdirFairness(t, vm, 3, "")
		t.Logf("xdir 3 s, 2 bullies (%d-file dir) + 2 victims, without scl: %s", sclXDirFiles, before)

		vm.MustRun(t, "syncord policy install /root/out/scl --stats 2>&1")
		if got := strings.TrimSpace(vm.MustRun(t, "cat /sys/kernel/livepatch/livepatch_concord_scl/enabled /sys/module/livepatch_concord_scl/parameters/slot")); got != "1\n1" {
			t.Fatalf("enabled, slot = %q, want 1 1", got)
		}
		fair, with := xdirFairness(t, vm, 3, "")
		runs := hookRuns(t, vm, "scl")
		t.Logf("xdir with scl: %s; hook runs %v", with, runs)
		if runs["lock_acquired"] == 0 || runs["lock_to_release"] != runs["lock_acquired"] {
			t.Fatalf("after xdir (syscall 436) with scl: lock_acquired ran %d times, lock_to_release %d: want > 0 and equal (every cross-directory rename pairs them)", runs["lock_acquired"], runs["lock_to_release"])
		}
		// renameat(2) (xdir --hold duration) and busybox mv: other entries.
		xdirFairness(t, vm, 1, " --hold duration")
		vm.MustRun(t, "mkdir -p /mnt/xdir/m1 /mnt/xdir/m2 && touch /mnt/xdir/m1/f && for i in 1 2 3 4 5 6 7 8 9 10; do mv /mnt/xdir/m1/f /mnt/xdir/m2/f && mv /mnt/xdir/m2/f /mnt/xdir/m1/f; done")
		runs2 := hookRuns(t, vm, "scl")
		if d := runs2["lock_acquired"] - runs["lock_acquired"]; d < 20 || runs2["lock_to_release"] != runs2["lock_acquired"] {
			t.Fatalf("after renameat(2) and mv: lock_acquired %d -> %d, lock_to_release %d -> %d: want 20+ more, equal", runs["lock_acquired"], runs2["lock_acquired"], runs["lock_to_release"], runs2["lock_to_release"])
		}
		vm.MustRun(t, "syncord policy uninstall scl 2>&1")
		assertNoPolicyLeft(t, vm, "livepatch_concord_")
		assertNoKernelProblem(t, vm)
		if log := vm.MustRun(t, "dmesg"); kernelStall.MatchString(log) {
			t.Fatalf("dmesg shows a stall:\n%s", log)
		}
		if v := strings.TrimSpace(vm.MustRun(t, "cat /proc/sys/kernel/bpf_stats_enabled")); v != "0" {
			t.Errorf("uninstall left bpf_stats_enabled=%s", v)
		}
		_, after := xdirFairness(t, vm, 3, "")
		t.Logf("xdir without scl again (after uninstall): %s", after)
		if runs2["lock_to_enter_slowpath"] == 0 {
			t.Skip("skipping: s_vfs_rename_mutex was never contended (mutex_trylock always won), so scl's to_enter_slowpath had nothing to run on")
		}
		t.Logf("scl hooks ran: %v; fairness with scl %.4f", runs2, fair)
	})
}

// checkNumaSclLivepatch installs numa-scl with our concord livepatch on
// shfllock-syncord: its should_reorder program (group waiters of the same
// NUMA node) runs in the module's admission queue in front of
// s_vfs_rename_mutex, whose head compares the waiters behind it. The
// witness is the kernel's bpf_stats run count of that program under xdir
// (it needs the head and two waiters queued behind it: skip with the reason
// when never), with lock_acquired and lock_to_release paired; uninstall
// clean, dmesg without WARN or stall. Fairness is logged.
func checkNumaSclLivepatch(t *testing.T, vm *VM) {
	t.Run("numa-scl-livepatch", func(t *testing.T) {
		vm.MustRun(t, "mkdir -p /mnt/xdir && mount -t ext4 /dev/vda /mnt/xdir")
		defer vm.Run(t, "umount /mnt/xdir")
		vm.MustRun(t, "syncord policy install /root/out/numa-scl --stats 2>&1")
		if got := strings.TrimSpace(vm.MustRun(t, "cat /sys/kernel/livepatch/livepatch_concord_numa_scl/enabled /sys/module/livepatch_concord_numa_scl/parameters/slot")); got != "1\n1" {
			t.Fatalf("enabled, slot = %q, want 1 1", got)
		}
		var runs map[string]uint64
		for _, secs := range []int{3, 5} {
			_, line := xdirFairness(t, vm, secs, "")
			runs = hookRuns(t, vm, "numa-scl")
			t.Logf("xdir %d s with numa-scl: %s; hook runs %v", secs, line, runs)
			if runs["lock_acquired"] == 0 || runs["lock_to_release"] != runs["lock_acquired"] {
				t.Fatalf("numa-scl: lock_acquired ran %d times, lock_to_release %d: want > 0 and equal", runs["lock_acquired"], runs["lock_to_release"])
			}
			if runs["should_reorder"] > 0 {
				break
			}
		}
		vm.MustRun(t, "syncord policy uninstall numa-scl 2>&1")
		assertNoPolicyLeft(t, vm, "livepatch_concord_")
		assertNoKernelProblem(t, vm)
		if log := vm.MustRun(t, "dmesg"); kernelStall.MatchString(log) {
			t.Fatalf("dmesg shows a stall:\n%s", log)
		}
		if runs["should_reorder"] == 0 {
			t.Skip("skipping: the admission queue never held three waiters (head and two behind it), so numa-scl's should_reorder had nothing to compare")
		}
	})
}

// BenchmarkSynCordScl measures scl on the real shfllock-syncord kernel (2x2
// TCG guest, one VM, the xdir image of TestSynCordShfllock):
//   - install-s: syncord policy install of scl with its livepatch (load,
//     pin, insmod, transition) as seen by the host, less the round trip of
//     a no-op guest command, median;
//   - fairness-with / fairness-without: Jain's fairness of xdir's lock hold
//     times (2 bullies into the 2000-file directory, 2 victims, 3 s),
//     with scl installed and without, alternating, medians.
//
// Run it with
//
//	SYNCORD_E2E=1 go test ./e2e -run '^$' -bench SynCordScl -benchtime 5x
//
// SYNCORD_BENCH_SCL_BACKOFF=NS sets the module's max_backoff_ns;
// SYNCORD_BENCH_SCL_POLICY=numa-scl measures numa-scl instead.
func BenchmarkSynCordScl(b *testing.B) {
	policy := "scl"
	if p := os.Getenv("SYNCORD_BENCH_SCL_POLICY"); p != "" {
		policy = p
	}
	k := SynCordKernelFor(b, ShfllockSynCord)
	files := map[string]string{}
	buildPolicyOut(b, k, policy, files)
	vm := Boot(b, Config{Sockets: 2, Cores: 2, SynCord: k, Files: files, Append: noTimerCheck, Disks: []string{sclXDirImage(b)}})
	vm.MustRun(b, "mkdir -p /mnt/xdir && mount -t ext4 /dev/vda /mnt/xdir")
	defer vm.Run(b, "umount /mnt/xdir")
	vm.MustRun(b, fmt.Sprintf("syncord bench xdir prepare --dir /mnt/xdir -n %d >/dev/null", sclXDirFiles))
	var installs, with, without []float64
	for b.Loop() {
		start := time.Now()
		vm.MustRun(b, "true")
		rtt := time.Since(start)
		start = time.Now()
		vm.MustRun(b, "syncord policy install /root/out/"+policy+" >/dev/null 2>&1")
		installs = append(installs, (time.Since(start) - rtt).Seconds())
		if ns := os.Getenv("SYNCORD_BENCH_SCL_BACKOFF"); ns != "" {
			vm.MustRun(b, "echo "+ns+" >/sys/module/"+concord.ModuleName(policy)+"/parameters/max_backoff_ns")
		}
		f, line := xdirFairness(b, vm, 3, "")
		b.Logf("with %s: %s", policy, line)
		with = append(with, f)
		vm.MustRun(b, "syncord policy uninstall "+policy+" >/dev/null 2>&1")
		f, line = xdirFairness(b, vm, 3, "")
		b.Logf("without: %s", line)
		without = append(without, f)
	}
	b.ReportMetric(median(installs), "install-s")
	b.ReportMetric(median(with), "fairness-with")
	b.ReportMetric(median(without), "fairness-without")
	b.ReportMetric(0, "ns/op")
}
