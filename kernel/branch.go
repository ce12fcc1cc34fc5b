package kernel

import (
	"fmt"
	"strings"
)

// Branch is a SynCord kernel branch of rs3lab/SynCord-linux: which lock
// implementation the kernel has, and so which policies can work on it.
type Branch string

// The SynCord kernel branches (their uname -r ends in -<branch>).
const (
	BranchStock    Branch = "stock-syncord"    // qspinlock; syscall 436; rwsem policy slots (bravo)
	BranchShfllock Branch = "shfllock-syncord" // ShflLock: bpf_back_off, should_reorder/skip_reorder
	BranchCNA      Branch = "cna-syncord"      // CNA: should_reorder; no syscall 436
)

// Branches are the known SynCord branches.
var Branches = []Branch{BranchStock, BranchShfllock, BranchCNA}

// ParseBranch accepts a branch name with or without -syncord ("shfllock").
func ParseBranch(s string) (Branch, error) {
	for _, b := range Branches {
		if s == string(b) || s+"-syncord" == string(b) {
			return b, nil
		}
	}
	return "", fmt.Errorf("unknown SynCord branch %q (want one of stock-syncord, shfllock-syncord, cna-syncord)", s)
}

// Short is the branch without -syncord: "stock", "shfllock", "cna".
func (b Branch) Short() string { return strings.TrimSuffix(string(b), "-syncord") }

// Function symbols (in /proc/kallsyms with or without
// CONFIG_KALLSYMS_ALL) that tell the branches apart, read from the
// branches' sources and checked on the booted kernels
// (testdata/kallsyms/):
//
//   - bpf_back_off (kernel/bpf/helpers.c): shfllock-syncord only; the
//     others keep the older bpf_loop_until and only a weak, empty
//     bpf_back_off_proto (why amp, scl and numa-scl fail there with EFAULT).
//   - __cna_queued_spin_lock_slowpath, cna_configure_spin_lock_slowpath
//     (kernel/locking/qspinlock_cna.c): cna-syncord with
//     CONFIG_NUMA_AWARE_SPINLOCKS.
//   - __x64_sys_rename2 (fs/namei.c, syscall 436): stock-syncord and
//     shfllock-syncord; cna-syncord dropped it.
//   - bpf_loop_until: stock-syncord and cna-syncord.
//
// With CONFIG_KALLSYMS_ALL the data symbols confirm it: the rwsem policy
// slots bpf_prog_lock_to_acquire_read... are stock-syncord's,
// bpf_prog_skip_reorder is shfllock-syncord's, bpf_prog_should_reorder is
// shfllock-syncord's and cna-syncord's.
const (
	symBackOff     = "bpf_back_off"
	symLoopUntil   = "bpf_loop_until"
	symCNASlowpath = "__cna_queued_spin_lock_slowpath"
	symCNAConfig   = "cna_configure_spin_lock_slowpath"
	symRename2     = "__x64_sys_rename2"
	symRwsemSlot   = "bpf_prog_lock_to_acquire_read"
	symSkipReorder = "bpf_prog_skip_reorder"
	symReorder     = "bpf_prog_should_reorder"
)

// branchSymbols are the symbols Probe looks for to find the branch.
var branchSymbols = []string{symBackOff, symLoopUntil, symCNASlowpath, symCNAConfig, symRename2, symRwsemSlot, symSkipReorder, symReorder}

// isText tells a function symbol's nm type letter.
func isText(typ byte) bool { return typ == 't' || typ == 'T' || typ == 'w' || typ == 'W' }

// isData tells the nm type letters of variables, listed in /proc/kallsyms
// only with CONFIG_KALLSYMS_ALL.
func isData(typ byte) bool {
	switch typ {
	case 'd', 'D', 'b', 'B':
		return true
	}
	return false
}

// branchFromSymbols decides the branch from the symbols found (name ->
// type letter). It returns "" when they do not decide, and the evidence.
func branchFromSymbols(found map[string]byte) (Branch, string) {
	fn := func(n string) bool { t, ok := found[n]; return ok && isText(t) }
	data := func(n string) bool { t, ok := found[n]; return ok && isData(t) }
	switch {
	case fn(symBackOff):
		return BranchShfllock, "function " + symBackOff
	case fn(symCNASlowpath):
		return BranchCNA, "function " + symCNASlowpath
	case fn(symCNAConfig):
		return BranchCNA, "function " + symCNAConfig
	case fn(symLoopUntil) && fn(symRename2):
		return BranchStock, "functions " + symLoopUntil + " and " + symRename2
	case fn(symLoopUntil):
		return BranchCNA, "function " + symLoopUntil + " without " + symRename2
	case data(symSkipReorder):
		return BranchShfllock, "variable " + symSkipReorder
	case data(symReorder):
		return BranchCNA, "variable " + symReorder + " without " + symSkipReorder
	case data(symRwsemSlot):
		return BranchStock, "variable " + symRwsemSlot
	}
	return "", ""
}

// branchFromRelease reads the branch from a release such as
// 5.4.0-shfllock-syncord or 5.4.0-cna-syncord+.
func branchFromRelease(release string) Branch {
	r := strings.TrimSuffix(release, "+")
	for _, b := range Branches {
		if strings.HasSuffix(r, "-"+string(b)) {
			return b
		}
	}
	return ""
}
