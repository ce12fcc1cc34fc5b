package contention

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// renameStorm runs MWRL: each of n workers renames one file in its own
// directory under root, N -> N+1, until ctx is done. Every rename goes
// through d_move, which takes the rename_lock seqlock as writer, so the
// workers contend on rename_lock's spinlock. It returns renames done.
func renameStorm(ctx context.Context, t testing.TB, root string, n int) func() uint64 {
	t.Helper()
	var ops atomic.Uint64
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		dir := filepath.Join(root, fmt.Sprint(w))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		name := func(i uint64) string { return filepath.Join(dir, fmt.Sprintf("n_file_rename-%d.dat", i)) }
		if err := os.WriteFile(name(0), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var i, local uint64
			for ctx.Err() == nil {
				for k := 0; k < 256; k++ {
					if err := os.Rename(name(i), name(i+1)); err != nil {
						t.Errorf("rename storm: %v", err)
						return
					}
					i++
					local++
				}
				ops.Add(local)
				local = 0
			}
		}()
	}
	return func() uint64 { wg.Wait(); return ops.Load() }
}
