package concord

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syncord/syncord/bpf"
	"github.com/syncord/syncord/kernel"
)

func TestConfigForLockstat(t *testing.T) {
	b, err := bpf.LookupBuiltin("lockstat")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ConfigFor(b.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	h := string(Header(c, &Tree{RwsemSlots: true, Branch: kernel.BranchStock}))
	for _, want := range []string{
		`#define CONCORD_POLICY "lockstat"`,
		`#define CONCORD_TARGET "rename_lock"`,
		"#define CONCORD_TARGET_RENAME_LOCK 1",
		`#define CONCORD_PIN_ACQUIRED "/sys/fs/bpf/lockstat_lock_acquired"`,
		`#define CONCORD_PIN_TO_RELEASE "/sys/fs/bpf/lockstat_lock_to_release"`,
		`#define CONCORD_PIN_TO_ENTER_SLOWPATH "/sys/fs/bpf/lockstat_to_enter_slow_path"`,
		`#define CONCORD_PIN_BYPASS_ACQUIRE ""`,
	} {
		if !strings.Contains(h, want+"\n") {
			t.Errorf("header lacks %q:\n%s", want, h)
		}
	}
	b, _ = bpf.LookupBuiltin("bravo")
	c, err = ConfigFor(b.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if h := string(Header(c, &Tree{RwsemSlots: true, Branch: kernel.BranchStock})); !strings.Contains(h, "#define CONCORD_TARGET_RWSEM 1\n") || !strings.Contains(h, `#define CONCORD_PIN_BYPASS_ACQUIRE "/sys/fs/bpf/bravo_bypass_acq_lock"`) {
		t.Errorf("bravo header:\n%s", h)
	}
	if n := ModuleName("numa-grouping-cna"); n != "livepatch_concord_numa_grouping_cna" {
		t.Errorf("ModuleName = %q", n)
	}
}

// TestConfigForRefuses: targets and hooks concord.c does not replace are
// refused at build time, with the reason, instead of a module that would
// never run the policy.
func TestConfigForRefuses(t *testing.T) {
	m := &bpf.Manifest{Name: "x", Target: "all_spinlocks", Branches: []string{"stock-syncord"}, Programs: []bpf.Program{{Section: "lock_qspinlock_cmp", Function: "f", Pin: "f", Hook: "should_reorder"}}}
	if _, err := ConfigFor(m); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "it attaches all_spinlocks on shfllock-syncord or cna-syncord only") {
		t.Errorf("all_spinlocks on stock-syncord: %v", err)
	}
	m = &bpf.Manifest{Name: "x", Target: "rwsem", Programs: []bpf.Program{{Section: "lock_rwsem_x", Function: "f", Pin: "f", Hook: "lock_to_enter_slowpath"}}}
	if _, err := ConfigFor(m); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "hook lock_to_enter_slowpath of program f on rwsem") {
		t.Errorf("to_enter_slowpath on rwsem: %v", err)
	}
	m = &bpf.Manifest{Name: "x", Target: "rename_lock", Programs: []bpf.Program{{Section: "lock_qspinlock_cmp", Function: "f", Pin: "f", Hook: "should_reorder"}}}
	if _, err := ConfigFor(m); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "hook should_reorder") {
		t.Errorf("should_reorder on rename_lock: %v", err)
	}
	m = &bpf.Manifest{Name: "x", Target: "rename_lock", Programs: []bpf.Program{
		{Section: "lock_qspinlock_acquired", Function: "f", Pin: "f", Hook: "lock_acquired"},
		{Section: "lock_qspinlock_acquired", Function: "g", Pin: "g", Hook: "lock_acquired"},
	}}
	if _, err := ConfigFor(m); err == nil || !strings.Contains(err.Error(), "two programs") {
		t.Errorf("two programs on one hook: %v", err)
	}
}

// TestSourceMatchesHooks keeps concord.c's macros and the Go table in step.
func TestSourceMatchesHooks(t *testing.T) {
	for _, h := range hookMacros {
		if !strings.Contains(string(source), h.macro) || !strings.Contains(string(source), `"`+h.hook+`"`) {
			t.Errorf("concord.c lacks %s or %q", h.macro, h.hook)
		}
	}
	for _, tg := range supportedTargets {
		if !strings.Contains(string(source), "#ifdef "+tg.macro) {
			t.Errorf("concord.c has no #ifdef %s", tg.macro)
		}
	}
	for _, m := range branchMacros {
		if !strings.Contains(string(source), m) {
			t.Errorf("concord.c never reads %s", m)
		}
	}
	if !strings.Contains(string(source), `#include "shuffle.c"`) || !strings.Contains(string(mustRead("module/shuffle.c")), `"shuffle_waiters.constprop.0"`) {
		t.Error("concord.c does not include shuffle.c, or shuffle.c does not replace shuffle_waiters.constprop.0")
	}
	// cna.c replaces CNA's slow path of the cna-syncord build it was
	// checked against (System.map: 0x3c0 bytes), and its test-only knob
	// defaults to the kernel's ordering ratio (SHUFFLE_REDUCTION_PROB_ARG 7).
	cna := string(mustRead("module/cna.c"))
	for _, want := range []string{
		`#define CONCORD_CNA_SLOWPATH "__cna_queued_spin_lock_slowpath"`,
		"#define CONCORD_CNA_SLOWPATH_SIZE 0x3c0\n",
		"static unsigned int reorder_prob_bits = 7;\n",
		"#define CONCORD_TARGET_FUNCS",
		"static int concord_target_init(void)",
	} {
		if !strings.Contains(cna, want) {
			t.Errorf("cna.c lacks %q", want)
		}
	}
	if !strings.Contains(string(source), "#elif defined(CONCORD_BRANCH_CNA)\n#include \"cna.c\"") {
		t.Error("concord.c does not include cna.c for CONCORD_BRANCH_CNA")
	}
}

// TestConfigForNumaGrouping: numa-grouping attaches on shfllock-syncord:
// its header selects the all_spinlocks target, the branch and the pin of
// its should_reorder program.
func TestConfigForNumaGrouping(t *testing.T) {
	b, err := bpf.LookupBuiltin("numa-grouping")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ConfigFor(b.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	h := string(Header(c, &Tree{Branch: kernel.BranchShfllock}))
	for _, want := range []string{
		`#define CONCORD_TARGET "all_spinlocks"`,
		"#define CONCORD_TARGET_ALL_SPINLOCKS 1",
		`#define CONCORD_BRANCH "shfllock-syncord"`,
		"#define CONCORD_BRANCH_SHFLLOCK 1",
		`#define CONCORD_PIN_SHOULD_REORDER "/sys/fs/bpf/numa-grouping"`,
		`#define CONCORD_PIN_ACQUIRED ""`,
	} {
		if !strings.Contains(h, want+"\n") {
			t.Errorf("header lacks %q:\n%s", want, h)
		}
	}
	if strings.Contains(h, "CONCORD_HAVE_RWSEM_SLOTS") || strings.Contains(h, "CONCORD_BRANCH_STOCK") {
		t.Errorf("shfllock header:\n%s", h)
	}
	// A tree of unknown branch names none.
	if h := string(Header(c, &Tree{})); strings.Contains(h, "CONCORD_BRANCH") {
		t.Errorf("header of a tree of unknown branch:\n%s", h)
	}
}

// TestConfigForNumaGroupingCNA: numa-grouping-cna attaches on
// cna-syncord: its header selects the all_spinlocks target (cna.c through
// the branch macro) and the pin of its should_reorder program.
func TestConfigForNumaGroupingCNA(t *testing.T) {
	b, err := bpf.LookupBuiltin("numa-grouping-cna")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ConfigFor(b.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	h := string(Header(c, &Tree{Branch: kernel.BranchCNA}))
	for _, want := range []string{
		`#define CONCORD_POLICY "numa-grouping-cna"`,
		`#define CONCORD_TARGET "all_spinlocks"`,
		"#define CONCORD_TARGET_ALL_SPINLOCKS 1",
		`#define CONCORD_BRANCH "cna-syncord"`,
		"#define CONCORD_BRANCH_CNA 1",
		`#define CONCORD_PIN_SHOULD_REORDER "/sys/fs/bpf/numa-grouping-cna"`,
		`#define CONCORD_PIN_TO_ENTER_SLOWPATH ""`,
	} {
		if !strings.Contains(h, want+"\n") {
			t.Errorf("header lacks %q:\n%s", want, h)
		}
	}
	if strings.Contains(h, "CONCORD_BRANCH_SHFLLOCK") || strings.Contains(h, "CONCORD_HAVE_RWSEM_SLOTS") {
		t.Errorf("cna header:\n%s", h)
	}
}

// symvers are the Module.symvers lines that tell the branches apart, as in
// the headers packages of ../shared/kernels (plus the two every SynCord
// tree exports).
var symvers = map[kernel.Branch]string{
	kernel.BranchStock:    "0x00000000\tbpf_prog_lock_acquired_read\tvmlinux\tEXPORT_SYMBOL\n",
	kernel.BranchShfllock: "0x00000000\tbpf_prog_skip_reorder\tvmlinux\tEXPORT_SYMBOL\n0x00000000\tbpf_prog_should_reorder\tvmlinux\tEXPORT_SYMBOL\n",
	kernel.BranchCNA:      "0x00000000\tbpf_prog_should_reorder\tvmlinux\tEXPORT_SYMBOL\n0x00000000\t__cna_queued_spin_lock_slowpath\tvmlinux\tEXPORT_SYMBOL\n",
}

const syncordExports = "0x00000000\tnum_policy\tvmlinux\tEXPORT_SYMBOL\n0x00000000\tbpf_queued_spin_lock\tvmlinux\tEXPORT_SYMBOL\n"

func fakeTree(t *testing.T, release, symvers string) string {
	t.Helper()
	d := t.TempDir()
	if err := os.MkdirAll(filepath.Join(d, "include/config"), 0o755); err != nil {
		t.Fatal(err)
	}
	for f, b := range map[string]string{"Makefile": "", "include/config/kernel.release": release + "\n", "Module.symvers": symvers} {
		if err := os.WriteFile(filepath.Join(d, f), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// TestCheckTreeBranch: the branch comes from the tree's exports, else from
// its release; the exports win over a release that says otherwise.
func TestCheckTreeBranch(t *testing.T) {
	for _, c := range []struct {
		release, symvers string
		want             kernel.Branch
		from             string
	}{
		{"5.4.0-stock-syncord", symvers[kernel.BranchStock], kernel.BranchStock, "Module.symvers exports bpf_prog_lock_acquired_read"},
		{"5.4.0-shfllock-syncord", symvers[kernel.BranchShfllock], kernel.BranchShfllock, "Module.symvers exports bpf_prog_skip_reorder"},
		{"5.4.0-cna-syncord", symvers[kernel.BranchCNA], kernel.BranchCNA, "Module.symvers exports __cna_queued_spin_lock_slowpath"},
		{"5.4.0-mine", symvers[kernel.BranchShfllock], kernel.BranchShfllock, "Module.symvers exports bpf_prog_skip_reorder"},
		{"5.4.0-stock-syncord", symvers[kernel.BranchCNA], kernel.BranchCNA, "Module.symvers exports __cna_queued_spin_lock_slowpath"},
		{"5.4.0-shfllock-syncord+", "", kernel.BranchShfllock, "release 5.4.0-shfllock-syncord+"},
		{"5.4.0-mine", "", "", ""},
	} {
		tr, err := CheckTree(fakeTree(t, c.release, syncordExports+c.symvers))
		if err != nil {
			t.Fatal(err)
		}
		if tr.Branch != c.want || tr.BranchFrom != c.from {
			t.Errorf("%s with %q: branch %q (%s), want %q (%s)", c.release, c.symvers, tr.Branch, tr.BranchFrom, c.want, c.from)
		}
	}
}

// TestBuildBranchRefusals: before any compiler runs, Build refuses a
// target on a branch concord.c does not attach it on, a policy whose
// manifest names another branch, and an all_spinlocks policy without its
// object to check.
func TestBuildBranchRefusals(t *testing.T) {
	ng, err := bpf.LookupBuiltin("numa-grouping")
	if err != nil {
		t.Fatal(err)
	}
	ngc, err := bpf.LookupBuiltin("numa-grouping-cna")
	if err != nil {
		t.Fatal(err)
	}
	lockstat, _ := bpf.LookupBuiltin("lockstat")
	for _, c := range []struct {
		name   string
		m      *bpf.Manifest
		branch kernel.Branch
		obj    string
		want   string
		is     error
	}{
		{"numa-grouping on stock", ng.Manifest, kernel.BranchStock, "x.o", "targets all_spinlocks, which the concord livepatch attaches on shfllock-syncord or cna-syncord only: kernel 5.4.0-stock-syncord at", ErrUnsupported},
		{"numa-grouping-cna on shfllock", ngc.Manifest, kernel.BranchShfllock, "x.o", "policy numa-grouping-cna needs a cna-syncord kernel (its manifest says so): kernel 5.4.0-shfllock-syncord", bpf.ErrWrongBranch},
		{"numa-grouping on cna", ng.Manifest, kernel.BranchCNA, "x.o", "policy numa-grouping needs a shfllock-syncord kernel (its manifest says so): kernel 5.4.0-cna-syncord at", bpf.ErrWrongBranch},
		{"numa-grouping without object", ng.Manifest, kernel.BranchShfllock, "", "needs the policy's object", nil},
		{"manifest branch", &bpf.Manifest{Name: "x", Object: "x.o", Branches: []string{"stock-syncord"}, Programs: lockstat.Manifest.Programs}, kernel.BranchShfllock, "", "policy x needs a stock-syncord kernel (its manifest says so): kernel 5.4.0-shfllock-syncord", bpf.ErrWrongBranch},
	} {
		kdir := fakeTree(t, "5.4.0-"+string(c.branch), syncordExports+symvers[c.branch])
		_, err := Build(context.Background(), c.m, kdir, t.TempDir(), Options{CC: "/nonexistent/cc", Object: c.obj})
		if err == nil || !strings.Contains(err.Error(), c.want) || (c.is != nil && !errors.Is(err, c.is)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// TestCheckLockFree: a program that runs inside every spinlock must not use
// a map whose updates take a lock.
func TestCheckLockFree(t *testing.T) {
	out := t.TempDir()
	res, err := bpf.WriteBuiltin("numa-grouping", out)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckLockFree(res.Manifest, res.Object); err != nil {
		t.Errorf("numa-grouping: %v", err)
	}
	// lockstat's programs update its hash map.
	res, err = bpf.WriteBuiltin("lockstat", out)
	if err != nil {
		t.Fatal(err)
	}
	m := *res.Manifest
	m.Target = "all_spinlocks"
	err = CheckLockFree(&m, res.Object)
	if err == nil || !strings.Contains(err.Error(), "uses map hash_map, a Hash map: its updates take a spinlock, and on target all_spinlocks") {
		t.Errorf("lockstat as an all_spinlocks policy: %v", err)
	}
}

// TestConfigForScl: scl attaches to s_vfs_rename with its acquired,
// contended and release programs; its should_reorder is left for Build to
// place (the mutex keeps its own order).
func TestConfigForScl(t *testing.T) {
	b, err := bpf.LookupBuiltin("scl")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ConfigFor(b.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	h := string(Header(c, &Tree{Branch: kernel.BranchShfllock}))
	for _, want := range []string{
		`#define CONCORD_TARGET "s_vfs_rename"`,
		"#define CONCORD_TARGET_S_VFS_RENAME 1",
		`#define CONCORD_PIN_ACQUIRED "/sys/fs/bpf/scl_acqed_lock"`,
		`#define CONCORD_PIN_TO_ENTER_SLOWPATH "/sys/fs/bpf/scl_cont_lock"`,
		`#define CONCORD_PIN_TO_RELEASE "/sys/fs/bpf/scl_release_lock"`,
		`#define CONCORD_PIN_TO_ACQUIRE ""`,
	} {
		if !strings.Contains(h, want+"\n") {
			t.Errorf("header lacks %q:\n%s", want, h)
		}
	}
	if strings.Contains(h, "scl_cmp") || len(c.MaybeReorders) != 1 || c.MaybeReorders[0].Pin != "scl_cmp" {
		t.Errorf("should_reorder: header\n%s\nMaybeReorders %+v", h, c.MaybeReorders)
	}
	m := &bpf.Manifest{Name: "x", Target: "s_vfs_rename", Programs: []bpf.Program{{Section: "lock_qspinlock_x", Function: "f", Pin: "f", Hook: "lock_bypass_acquire"}}}
	if _, err := ConfigFor(m); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "hook lock_bypass_acquire of program f on s_vfs_rename") {
		t.Errorf("bypass_acquire on s_vfs_rename: %v", err)
	}
}

// TestPlaceReorders: on s_vfs_rename scl's should_reorder ("return false")
// stays out of the module (no admission queue: the mutex's order is FIFO),
// numa-scl's (it groups by NUMA node) goes in, and without the object
// neither is decided.
func TestPlaceReorders(t *testing.T) {
	for name, pin := range map[string]string{"scl": "", "numa-scl": "/sys/fs/bpf/scl_cmp"} {
		b, err := bpf.LookupBuiltin(name)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ConfigFor(b.Manifest)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := placeReorders(c, ""); err == nil || !strings.Contains(err.Error(), "no object") {
			t.Errorf("%s without object: %v", name, err)
		}
		obj := filepath.Join(t.TempDir(), b.Manifest.Object)
		if err := os.WriteFile(obj, b.Object, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := placeReorders(c, obj); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		h := string(Header(c, &Tree{Branch: kernel.BranchShfllock}))
		if !strings.Contains(h, fmt.Sprintf("#define CONCORD_PIN_SHOULD_REORDER %q\n", pin)) {
			t.Errorf("%s: want should_reorder pin %q:\n%s", name, pin, h)
		}
		if _, err := Build(context.Background(), b.Manifest, "/nonexistent-kdir", t.TempDir(), Options{Object: obj}); err == nil || !strings.Contains(err.Error(), "kernel build tree") {
			t.Errorf("Build %s: %v, want the tree checked next", name, err)
		}
	}
}
