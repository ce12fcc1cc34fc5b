package contention

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/syncord/syncord/internal/lockwitness"
	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/internal/testutil"
	"github.com/syncord/syncord/kernel"
)

// needProfiler skips unless the profiler can run here: root, and a kernel
// with the contention tracepoints.
func needProfiler(t *testing.T) {
	t.Helper()
	testutil.RequireBPF(t)
	if err := Check(pseudofs.DefaultRoots()); err != nil {
		t.Skipf("skipping: %v", err)
	}
}

// ourBPF counts this process's programs named after ours (the kernel
// keeps 15 characters: "contention_begi", "contention_end") and its BPF
// file descriptors. Only programs this process holds count: other test
// binaries (cmd/syncord runs the same profiler) may load theirs meanwhile.
func ourBPF(t *testing.T) (progs, fds int) {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var ids []ebpf.ProgramID
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || !strings.HasPrefix(l, "anon_inode:bpf") {
			continue
		}
		fds++
		if l != "anon_inode:bpf-prog" {
			continue
		}
		info, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", e.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(line, "prog_id:"); ok {
				if id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err == nil {
					ids = append(ids, ebpf.ProgramID(id))
				}
			}
		}
	}
	for _, id := range ids {
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // gone meanwhile
		}
		if info, err := p.Info(); err == nil && strings.HasPrefix(info.Name, "contention_") {
			progs++
		}
		p.Close()
	}
	return progs, fds
}

// waitNothingLeft fails unless the counts return to before (program
// teardown in the kernel finishes after close returns, so poll).
func waitNothingLeft(t *testing.T, beforeProgs, beforeFDs int) {
	t.Helper()
	var p, f int
	for i := 0; i < 100; i++ {
		if p, f = ourBPF(t); p == beforeProgs && f == beforeFDs {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("left behind: %d contention programs (before %d), %d BPF fds (before %d)", p, beforeProgs, f, beforeFDs)
}

// TestRenameLockContention runs MWRL (2 workers renaming in their own
// directories) under the profiler: every rename passes d_move, which
// write-locks rename_lock, so rename_lock's spinlock shows up as contended
// when the renamers overlap and a waiter reaches the slow path, named when
// kallsyms has data symbols (CONFIG_KALLSYMS_ALL) and found by its d_move
// call site either way.
//
// Whether any waiter reaches the traced slow path is the machine's
// business (see whyNone), so an ftrace witness records lock:contention_begin
// with stacks in the same window: the test fails when the witness saw our
// renamers contend on rename_lock and the profiler counted fewer of them on
// that address, and skips, saying why, when neither saw any.
func TestRenameLockContention(t *testing.T) {
	needProfiler(t)
	progs0, fds0 := ourBPF(t)

	t0 := time.Now()
	syms, err := kernel.NewDefaultFS().Kallsyms()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kallsyms: %d symbols read in %v", syms.Len(), time.Since(t0))

	var reports []*Report
	var attached int
	w := witnessedStorm(t, Options{Callers: true}, 2*time.Second, 500*time.Millisecond, func(p *Period) error {
		if !p.Final {
			attached, _ = ourBPF(t)
		}
		reports = append(reports, NewReport(p, syms, ReportOptions{Symbols: true, Callers: 3}))
		return nil
	})
	if attached != progs0+2 {
		t.Errorf("while running, %d contention programs loaded, want %d (counting is broken)", attached, progs0+2)
	}
	waitNothingLeft(t, progs0, fds0)
	if len(reports) < 2 || !reports[len(reports)-1].Final {
		t.Fatalf("got %d reports, want several intervals and a final one", len(reports))
	}

	_, haveName := syms.Address("rename_lock")
	var found *LockReport
	var total uint64
	byAddr := map[uint64]uint64{} // profiler contentions per address
	var dropped uint64
	for _, r := range reports {
		dropped += r.Dropped.Uncounted()
		for i, l := range r.Locks {
			byAddr[l.addr] += l.Contentions
			hit := l.Symbol == "rename_lock"
			if !haveName {
				for _, c := range l.Callers {
					hit = hit || strings.HasPrefix(c.Symbol, "d_move+")
				}
			}
			if !hit {
				continue
			}
			if l.Contentions == 0 || l.Waits > l.Contentions || l.WaitMaxNS < l.WaitMinNS || l.WaitTotalNS < l.WaitMaxNS {
				t.Errorf("interval %d: rename_lock row inconsistent: %+v", r.Interval, l)
			}
			if l.Type != "spinlock" {
				t.Errorf("rename_lock type = %q, want spinlock", l.Type)
			}
			total += l.Contentions
			found = &r.Locks[i]
		}
	}

	// The witness: our renamers' plain-spinlock contentions from d_move,
	// per lock address.
	seen := map[uint64]uint64{}
	var witnessed uint64
	if w.rec != nil {
		for _, e := range w.rec.Events {
			if renameLockEvent(e) {
				seen[e.Addr]++
				witnessed++
			}
		}
	}
	t.Logf("%d renames: the profiler counted rename_lock contended %d times over %d reports; the witness saw %d from our renamers (at %#x)",
		w.renames, total, len(reports), witnessed, seen)
	for a, n := range seen {
		// Every event the witness saw happened while the profiler was
		// attached; rename_lock is never taken in interrupts, so the
		// probe cannot have missed one by recursion.
		if a != 0 && byAddr[a] < n && dropped == 0 {
			t.Errorf("the witness saw %d contentions on %#x from d_move by our renamers, the profiler counted %d there", n, a, byAddr[a])
		}
	}
	if found == nil {
		if witnessed > 0 {
			t.Fatalf("rename_lock not among the contended locks after %d renames (kallsyms names it: %v), but the ftrace witness saw our renamers contend on it %d times in the same window",
				w.renames, haveName, witnessed)
		}
		t.Skip(whyNone("rename_lock contended", w))
	}
	if !haveName {
		t.Logf("kallsyms has no data symbols here (CONFIG_KALLSYMS_ALL=n): found rename_lock at %s by its d_move call site", found.Addr)
	}
}

// TestCleanupOnEveryPath: whatever ends a run, nothing stays loaded.
func TestCleanupOnEveryPath(t *testing.T) {
	needProfiler(t)
	errEmit := errors.New("emit failed")
	for _, tc := range []struct {
		name     string
		duration time.Duration
		interval time.Duration
		cancel   bool
		emitErr  bool
		wantErr  error
	}{
		{name: "duration elapses", duration: 100 * time.Millisecond},
		{name: "interrupted (SIGINT)", cancel: true},
		{name: "report fails mid-run", interval: 20 * time.Millisecond, emitErr: true, wantErr: errEmit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			progs0, fds0 := ourBPF(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				time.AfterFunc(100*time.Millisecond, cancel)
			}
			n := 0
			err := Run(ctx, Options{Callers: true}, tc.duration, tc.interval, func(*Period) error {
				n++
				if tc.emitErr {
					return errEmit
				}
				return nil
			})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Run = %v, want %v", err, tc.wantErr)
			}
			if n != 1 {
				t.Errorf("emitted %d periods, want 1", n)
			}
			waitNothingLeft(t, progs0, fds0)
		})
	}
}

// sleeper starts a process that only sleeps, so contends on nothing, for
// the length of the test, and returns its pid.
func sleeper(t *testing.T) uint32 {
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return uint32(cmd.Process.Pid)
}

// TestFilters: a filter that excludes the storm's process or lock type
// sees none of its contention, and the one that keeps our process's
// spinlocks sees them. An ftrace witness in the same window says whether
// our threads contended on plain spinlocks at all: without such events the
// positive case cannot be judged, and the negative ones filtered nothing,
// so they skip saying so.
func TestFilters(t *testing.T) {
	needProfiler(t)
	spin, _ := ParseTypes("spinlock")
	mutex, _ := ParseTypes("mutex")
	for _, tc := range []struct {
		name         string
		opts         Options
		wantSpinlock bool
	}{
		{"our process only", Options{PID: uint32(os.Getpid()), AllowedFlags: spin}, true},
		{"another process", Options{PID: sleeper(t)}, false},
		{"mutexes only", Options{AllowedFlags: mutex}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var snap *Snapshot
			w := witnessedStorm(t, tc.opts, time.Second, 0, func(p *Period) error { snap = p.Snapshot; return nil })
			var spins uint64
			for _, l := range snap.Locks {
				if tc.opts.AllowedFlags != 0 && tc.opts.AllowedFlags&(1<<l.Flags) == 0 {
					t.Errorf("lock %#x of type %s passed filter %#x", l.Addr, TypeName(l.Flags), tc.opts.AllowedFlags)
				}
				if l.Flags == FlagSpin {
					spins += l.Contentions
				}
			}
			var ours uint64 // plain-spinlock contentions by our threads, by the witness
			if w.rec != nil {
				ours = w.rec.Count(func(e lockwitness.Event) bool { return e.Ours && e.Flags == lockwitness.FlagSpin })
			}
			t.Logf("profiler: %d spinlock contentions; witness: %d by our threads", spins, ours)
			if tc.wantSpinlock {
				switch {
				case spins > 0:
				case ours > 0:
					t.Fatalf("spinlock contentions = 0, but the ftrace witness saw our threads contend on spinlocks %d times in the same window", ours)
				default:
					t.Skip(whyNone("spinlock contention by this process", w))
				}
				return
			}
			if spins > 0 {
				t.Errorf("spinlock contentions = %d, want none through filter %+v", spins, tc.opts)
			}
			if ours == 0 {
				t.Skip(whyNone("spinlock contention by this process for the filter to exclude", w))
			}
		})
	}
}
