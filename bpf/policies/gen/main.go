// Command gen compiles the built-in policies in bpf/policies/<name>/ with
// the same code as `syncord policy build` and writes <name>_kern.o and
// manifest.json beside their sources. Run it with `go generate ./bpf/` from
// the module root (needs clang); the outputs are committed so that
// `go build` needs no clang.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/syncord/syncord/bpf"
	"github.com/syncord/syncord/kernel"
)

// descriptions of the built-in policies (SYNCORD-ABI.md section 2).
var descriptions = map[string]string{
	"lockstat":          "per-lock contention and hold-time profile into hash_map (read with syncord lockstat)",
	"numa-grouping":     "ShflLock should_reorder: keep waiters of the same NUMA node together",
	"numa-grouping-cna": "CNA should_reorder: move waiters of another NUMA node aside, never a priority waiter (node 0xffff)",
	"amp":               "CPUs in the slow half of a socket call bpf_back_off before queueing",
	"scl":               "SCL: fair lock-hold share per thread, back off by lock_hold*n - total",
	"numa-scl":          "SCL that also groups waiters by NUMA node",
	"bravo":             "BRAVO per-CPU reader bypass for rwsems",
}

// targets are the locks the built-in policies target (bpf.Targets).
var targets = map[string]string{
	"lockstat":          "rename_lock",
	"numa-grouping":     "all_spinlocks",
	"numa-grouping-cna": "all_spinlocks",
	"amp":               "rename_lock",
	"scl":               "s_vfs_rename",
	"numa-scl":          "s_vfs_rename",
	"bravo":             "rwsem",
}

// branches each built-in policy needs (SYNCORD-ABI.md section 6, read in
// the SynCord-linux branches): bpf_back_off (amp, scl, numa-scl) and
// ShflLock's should_reorder with its numa_node context (numa-grouping) are
// shfllock-syncord's; numa-grouping-cna is CNA's should_reorder; bravo's
// rwsem policy slots (bpf_prog_lock_*_read/_write in kernel/locking/rwsem.c)
// exist only on stock-syncord. lockstat's hooks (to_enter_slowpath,
// lock_acquired, lock_to_release around bpf_queued_spin_lock) are on every
// branch: no entry, any SynCord kernel.
var branches = map[string][]kernel.Branch{
	"amp":               {kernel.BranchShfllock},
	"scl":               {kernel.BranchShfllock},
	"numa-scl":          {kernel.BranchShfllock},
	"numa-grouping":     {kernel.BranchShfllock},
	"numa-grouping-cna": {kernel.BranchCNA},
	"bravo":             {kernel.BranchStock},
}

func main() {
	dir := flag.String("dir", "policies", "directory of the built-in policy sources")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	tmp, err := os.MkdirTemp("", "syncord-gen-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	names := make([]string, 0, len(descriptions))
	for n := range descriptions {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		src := filepath.Join(dir, n)
		// NCPU is fixed so that the objects do not depend on the build
		// machine; no built-in header uses ${NCPU}.
		res, err := bpf.Build(context.Background(), src, tmp, bpf.BuildOptions{NCPU: 1, Description: descriptions[n], Target: targets[n], Branches: branches[n]})
		if err != nil {
			return err
		}
		if res.Warnings != "" {
			fmt.Fprintf(os.Stderr, "%s: %s\n", n, res.Warnings)
		}
		for _, f := range []string{res.Object, res.ManifestPath} {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(src, filepath.Base(f)), b, 0o644); err != nil {
				return err
			}
		}
		fmt.Printf("%s: %d programs -> %s\n", n, len(res.Manifest.Programs), filepath.Join(src, filepath.Base(res.Object)))
	}
	return nil
}
