package e2e

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/syncord/syncord/bpf/contention"
)

// TestLockstatContention profiles Debian's stock 6.1 kernel (4 vCPUs, 2x2)
// from its contention tracepoints while FxMark MWRL renames on every CPU:
// each rename passes d_move, which write-locks rename_lock, so
// `syncord lockstat --contention --symbols --json --while "bench fxmark ..."` must name
// rename_lock (Debian builds with CONFIG_KALLSYMS_ALL) with contentions > 0
// and wait-max >= wait-min. The table form must print "-" in the columns
// the tracepoints cannot see, and nothing may stay pinned.
//
// Two things of the emulated guest shape the test:
//   - The guest CPU hides the hypervisor CPUID bit. With it, a guest
//     without paravirt spinlocks (TCG has none) takes contended spinlocks
//     through virt_spin_lock()'s test-and-set loop, which has no
//     tracepoints, and no spinlock contention is visible at all.
//   - Natively, only a waiter that queues behind another fires
//     contention_begin on a spinlock. The vCPUs are pinned two to a host
//     CPU (syncord-host pin --plan identity --allow-oversubscribe, as make
//     demo does), so lock holders get preempted and waiters queue, and the
//     profiler wraps MWRL with --while, for up to three windows.
//   - Under QEMU TCG the kernel's text patching (static keys and calls that
//     switch a tracepoint's call sites to its probes) has been seen not to
//     reach hot code, so a BPF probe counted nothing that ftrace saw. If
//     rename_lock never shows up, ftrace alone records one more MWRL run to
//     tell "no contention reached the traced slow path" from "events did
//     not reach BPF"; both are skips that say which. On the 6.18 host
//     (TestRenameLockContention) the check is strict.
func TestLockstatContention(t *testing.T) {
	vm := Boot(t, Config{Sockets: 2, Cores: 2, MemPerNodeMB: 256, Append: "no_hash_pointers",
		ExtraArgs: []string{"-cpu", "max,hypervisor=off"}, BootTimeout: 5 * time.Minute})
	vm.MustRun(t, "test -d /sys/kernel/tracing/events/lock/contention_begin")
	pins0 := vm.MustRun(t, "ls -A /sys/fs/bpf")
	renameLock := strings.Fields(vm.MustRun(t, "grep ' rename_lock$' /proc/kallsyms"))[0]

	// Pin the vCPUs two to a host CPU, as the demo does: lock holders are
	// then preempted mid-section and waiters queue in the slow path.
	_, host := Binaries(t)
	if out, err := exec.Command(host, "pin", "--qmp", vm.QMPPath(), "--plan", "identity", "--allow-oversubscribe").CombinedOutput(); err != nil {
		t.Fatalf("syncord-host pin: %v\n%s", err, out)
	}
	vm.MustRun(t, "mkdir -p /tmp/mwrl")
	const mwrl = "bench fxmark --type MWRL --ncore 4 --duration 5 --root /tmp/mwrl"
	var r contention.Report
	var rl *contention.LockReport
	var seen uint64
	for attempt := 1; attempt <= 3 && rl == nil; attempt++ {
		out, code := vm.Run(t, `syncord lockstat --contention --symbols --callers 2 --json --while "`+mwrl+`" >/tmp/ls.json 2>/tmp/ls.err; rc=$?; cat /tmp/ls.err; exit $rc`)
		if code != 0 {
			t.Fatalf("lockstat --contention --while MWRL exited %d:\n%s", code, out)
		}
		if !strings.Contains(out, "# ncpu secs works works/sec") {
			t.Errorf("MWRL did not run through:\n%s", out)
		}
		raw := strings.TrimSpace(string(vm.CopyOut(t, "/tmp/ls.json")))
		r = contention.Report{}
		if err := json.Unmarshal([]byte(raw), &r); err != nil || strings.Contains(raw, "\n") {
			t.Fatalf("want one JSON report line, got %v:\n%s", err, raw)
		}
		if !r.Final || !strings.HasPrefix(r.Kernel, "6.1.") || r.DurationNS < 5e9 {
			t.Errorf("report header: final %v kernel %q duration %d ns", r.Final, r.Kernel, r.DurationNS)
		}
		seen = 0
		for i := range r.Locks {
			seen += r.Locks[i].Contentions
			if r.Locks[i].Symbol == "rename_lock" {
				rl = &r.Locks[i]
			}
		}
		t.Logf("attempt %d: the profiler counted %d contentions on %d locks (rename_lock seen: %v); dropped %+v",
			attempt, seen, len(r.Locks), rl != nil, r.Dropped)
	}
	if out, code := vm.Run(t, `syncord lockstat --contention --symbols --top 5 --while "`+strings.Replace(mwrl, "--duration 5", "--duration 2", 1)+`" >/tmp/ls.txt`); code != 0 {
		t.Fatalf("lockstat table run exited %d:\n%s", code, out)
	}
	table := string(vm.CopyOut(t, "/tmp/ls.txt"))
	lines := strings.Split(table, "\n")
	if len(lines) < 4 || lines[0] != strings.Repeat("=", 150) || !strings.Contains(lines[1], "lock addr") {
		t.Fatalf("not the lockstat table:\n%s", table)
	}
	for _, l := range lines[3:] {
		if l == "" || strings.HasPrefix(l, "callers") {
			break
		}
		if f := strings.Fields(l); len(f) < 11 || f[3] != "-" || f[4] != "-" || f[8] != "-" || f[9] != "-" || f[10] != "-" {
			t.Errorf("row without '-' in the acquisition and hold columns: %q", l)
		}
	}
	if pins := vm.MustRun(t, "ls -A /sys/fs/bpf"); pins != pins0 {
		t.Errorf("bpffs changed: %q -> %q", pins0, pins)
	}

	if rl != nil {
		if rl.Contentions == 0 || rl.Waits > rl.Contentions || rl.WaitMaxNS < rl.WaitMinNS || rl.Type != "spinlock" {
			t.Errorf("rename_lock: %+v; want a contended spinlock with wait_max_ns >= wait_min_ns", *rl)
		}
		t.Logf("rename_lock at %s (+%d): %d contentions, %d bounces, %d timed waits %d..%d ns; callers %+v",
			rl.Addr, rl.SymbolOffset, rl.Contentions, rl.ConBounces, rl.Waits, rl.WaitMinNS, rl.WaitMaxNS, rl.Callers)
		return
	}

	// Not seen in three windows: ask ftrace, alone, during one more MWRL
	// run, to tell "no contention reached the traced slow path" from
	// "events did not reach BPF".
	out := vm.MustRun(t, `T=/sys/kernel/tracing
echo > $T/trace
echo 1 > $T/events/lock/contention_begin/enable
syncord `+mwrl+` >/dev/null 2>&1
echo 0 > $T/events/lock/contention_begin/enable
grep -o 'contention_begin: [0-9a-f]*' $T/trace | sort | uniq -c | sort -rn`)
	base, err := strconv.ParseUint(renameLock, 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	var ftraceRename, ftraceAll uint64
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		n, _ := strconv.ParseUint(f[0], 10, 64)
		a, _ := strconv.ParseUint(f[2], 16, 64)
		ftraceAll += n
		if a >= base && a < base+64 {
			ftraceRename += n
		}
	}
	t.Logf("ftrace during one more MWRL run saw %d contention_begin events (%d on rename_lock)", ftraceAll, ftraceRename)
	if ftraceRename == 0 {
		t.Skipf("skipping the rename_lock check: rename_lock was not seen contended in three profiled MWRL runs nor by ftrace in a fourth (natively, only waiters that queue behind a pending one fire contention_begin)")
	}
	t.Skipf("skipping the rename_lock check: ftrace saw rename_lock contended %d times during MWRL, but the profiler's BPF probe counted it in none of three runs (%d contentions in all): under QEMU TCG a tracepoint's patched call sites do not always reach a BPF probe (see the comment above); the same program counts rename_lock on the 6.18 host (TestRenameLockContention)", ftraceRename, seen)
}
