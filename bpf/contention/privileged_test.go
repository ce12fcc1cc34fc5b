package contention

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/syncord/syncord/kernel"
)

// needProfiler skips unless the profiler can run here: root, and a kernel
// with the contention tracepoints.
func needProfiler(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: loading BPF programs needs root (run: sudo go test ./bpf/contention/)")
	}
	if err := Check("/proc", "/sys"); err != nil {
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
// write-locks rename_lock, so rename_lock's spinlock must show up as
// contended, named when kallsyms has data symbols (CONFIG_KALLSYMS_ALL)
// and found by its d_move call site either way.
func TestRenameLockContention(t *testing.T) {
	needProfiler(t)
	progs0, fds0 := ourBPF(t)

	t0 := time.Now()
	syms, err := kernel.NewDefaultFS().Kallsyms()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kallsyms: %d symbols read in %v", syms.Len(), time.Since(t0))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	done := renameStorm(ctx, t, t.TempDir(), 2)
	var reports []*Report
	var attached int
	err = Run(ctx, Options{Callers: true}, 0, 500*time.Millisecond, func(p *Period) error {
		if !p.Final {
			attached, _ = ourBPF(t)
		}
		reports = append(reports, NewReport(p, syms, ReportOptions{Symbols: true, Callers: 3}))
		return nil
	})
	renames := done()
	if err != nil {
		t.Fatal(err)
	}
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
	for _, r := range reports {
		for i, l := range r.Locks {
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
	if found == nil {
		t.Fatalf("rename_lock not among the contended locks after %d renames (kallsyms names it: %v)", renames, haveName)
	}
	if !haveName {
		t.Logf("kallsyms has no data symbols here (CONFIG_KALLSYMS_ALL=n): found rename_lock at %s by its d_move call site", found.Addr)
	}
	t.Logf("%d renames, rename_lock contended %d times over %d reports", renames, total, len(reports))
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

// TestFilters: a filter that excludes the storm's process or lock type
// sees none of its contention.
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
		{"another process", Options{PID: 1}, false},
		{"mutexes only", Options{AllowedFlags: mutex}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			done := renameStorm(ctx, t, t.TempDir(), 2)
			var snap *Snapshot
			err := Run(ctx, tc.opts, 0, 0, func(p *Period) error { snap = p.Snapshot; return nil })
			done()
			if err != nil {
				t.Fatal(err)
			}
			var spins uint64
			for _, l := range snap.Locks {
				if tc.opts.AllowedFlags != 0 && tc.opts.AllowedFlags&(1<<l.Flags) == 0 {
					t.Errorf("lock %#x of type %s passed filter %#x", l.Addr, TypeName(l.Flags), tc.opts.AllowedFlags)
				}
				if l.Flags == FlagSpin {
					spins += l.Contentions
				}
			}
			if (spins > 0) != tc.wantSpinlock {
				t.Errorf("spinlock contentions = %d, want some: %v", spins, tc.wantSpinlock)
			}
		})
	}
}
