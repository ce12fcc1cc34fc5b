package contention

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncord/syncord/internal/lockwitness"
)

// renameStorm runs MWRL: each of n workers renames one file in its own
// directory under root, N -> N+1, until ctx is done. Every rename goes
// through d_move, which takes the rename_lock seqlock as writer, so the
// workers contend on rename_lock's spinlock when they overlap. It sets up
// the directories (failing t) and returns the storm to run; run blocks
// and returns the renames done.
func renameStorm(t testing.TB, root string, n int) (run func(ctx context.Context) (uint64, error)) {
	t.Helper()
	names := make([]func(uint64) string, n)
	for w := 0; w < n; w++ {
		dir := filepath.Join(root, fmt.Sprint(w))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		names[w] = func(i uint64) string { return filepath.Join(dir, fmt.Sprintf("n_file_rename-%d.dat", i)) }
		if err := os.WriteFile(names[w](0), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var i0 = make([]uint64, n) // where each worker's file is now
	return func(ctx context.Context) (uint64, error) {
		var ops atomic.Uint64
		var wg sync.WaitGroup
		errs := make([]error, n)
		for w := 0; w < n; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				name := names[w]
				i := i0[w]
				defer func() { i0[w] = i }()
				for ctx.Err() == nil {
					for k := 0; k < 64; k++ {
						if err := os.Rename(name(i), name(i+1)); err != nil {
							errs[w] = fmt.Errorf("rename storm: %w", err)
							return
						}
						i++
					}
					ops.Add(64)
				}
			}()
		}
		wg.Wait()
		return ops.Load(), errors.Join(errs...)
	}
}

// witnessed is what one profiled rename storm saw.
type witnessed struct {
	renames uint64
	// rec is the ftrace witness of lock:contention_begin over the storm;
	// nil with noWitness set when it cannot run here.
	rec       *lockwitness.Record
	noWitness error
}

// witnessedStorm runs the profiler (Run with opts, interval and emit) and,
// once it is attached, the ftrace witness around a rename storm of two
// workers lasting d; then it ends the run. The witness's window lies inside
// the profiler's, so any contention the witness saw from our renamers, the
// profiler was attached for. The storm is timed by its own clock, not by
// Run's duration, so a slow start on a busy machine shortens nothing.
func witnessedStorm(t *testing.T, opts Options, d, interval time.Duration, emit func(*Period) error) witnessed {
	t.Helper()
	storm := renameStorm(t, t.TempDir(), 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var res witnessed
	var stormErr error
	done := make(chan struct{})
	started := false
	opts.Attached = func() {
		started = true
		go func() {
			defer close(done)
			defer cancel() // ends Run: its final period comes after the witness stopped
			w, err := lockwitness.Start(lockwitness.Options{Stacks: true})
			if err != nil {
				res.noWitness = err
			}
			sctx, scancel := context.WithTimeout(ctx, d)
			res.renames, stormErr = storm(sctx)
			scancel()
			if w != nil {
				res.rec, err = w.Stop()
				if err != nil {
					res.noWitness = err
				}
			}
		}()
	}
	err := Run(ctx, opts, 0, interval, emit)
	if started {
		<-done
	}
	if err != nil {
		t.Fatal(err)
	}
	if stormErr != nil {
		t.Fatal(stormErr)
	}
	if res.noWitness != nil && !errors.Is(res.noWitness, lockwitness.ErrNoTracefs) {
		t.Fatalf("ftrace witness: %v", res.noWitness)
	}
	if res.rec != nil {
		t.Logf("witness: %d lock:contention_begin events in the window (%d of this process), %d lost; %d renames",
			len(res.rec.Events), res.rec.Count(func(e lockwitness.Event) bool { return e.Ours }), res.rec.Lost, res.renames)
	}
	return res
}

// renameLockEvent: a plain-spinlock contention by one of our threads taken
// by d_move itself (write_seqlock(&rename_lock) is inlined there), i.e. on
// rename_lock's spinlock; not a lock taken by an interrupt that came in
// during d_move.
func renameLockEvent(e lockwitness.Event) bool {
	return e.Ours && e.Flags == lockwitness.FlagSpin && e.Caller() == "d_move"
}

// whyNone is the skip reason when neither the profiler nor the witness saw
// what a test needs.
func whyNone(what string, w witnessed) string {
	if w.noWitness != nil {
		return fmt.Sprintf("skipping: the profiler saw no %s in %d renames, and no ftrace witness can run here to tell whether there was any (%v)", what, w.renames, w.noWitness)
	}
	return fmt.Sprintf("skipping: neither the profiler nor the ftrace witness (lock:contention_begin in a private tracefs instance, same window) saw %s in %d renames: "+
		"contended spinlocks do not reach the traced slow path here (a hypervisor without paravirt spinlocks sends them through virt_spin_lock's test-and-set loop), "+
		"or the two renamers never overlapped on a busy machine; the e2e VM (TestLockstatContention, CPUID hypervisor bit off) proves this case", what, w.renames)
}
