// Package concord builds syncord's own livepatch module, concord.c (GPL,
// embedded here), against a SynCord 5.4 kernel build tree: the module that
// attaches a pinned lock policy to a kernel lock through the kernel's klp
// API (see the comment at the top of concord.c).
//
// The module is generic; Build configures it for one policy at build time
// with a generated concord_policy.h (the policy's name, its target lock and
// the bpffs pin of each hook program, all from the policy's manifest), so
// the .ko is self-contained: `insmod livepatch-concord.ko` needs no
// parameters, and the installer's pin check reads the pin paths from the
// module's strings. It attaches policies on rename_lock (d_move; lockstat,
// amp), on rwsems (the read side; bravo), on s_vfs_rename_mutex (lock_rename
// and the rename syscalls; scl) and on every spinlock: ShflLock's waiter
// shuffle on shfllock-syncord (numa-grouping), CNA's slow path on
// cna-syncord (numa-grouping-cna). The SynCord branch of
// the kernel tree (CheckTree) goes into concord_policy.h too, so the module
// compiles the branch's code only. Each policy's module has its own name
// (livepatch_concord_<policy>), so policies stack: up to four at once, each
// in its own slot of the kernel's policy arrays.
package concord

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/syncord/syncord/bpf"
	"github.com/syncord/syncord/internal/setting"
	"github.com/syncord/syncord/kernel"
)

// moduleFS holds the module's sources: concord.c, the target code it
// #includes per branch (shuffle.c, ...) and Kbuild. Build copies them all.
//
//go:embed module/*.c module/Kbuild
var moduleFS embed.FS

// source is concord.c.
var source = mustRead("module/concord.c")

func mustRead(name string) []byte {
	b, err := moduleFS.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return b
}

// ModuleFile is the file name of the built module in the artifact's layout
// (output/<p>/LivePatchGen/livepatch-concord.ko).
const ModuleFile = "livepatch-concord.ko"

// ErrUnsupported is returned (wrapped) for a policy the module cannot attach
// yet: a target or hook it does not replace.
var ErrUnsupported = errors.New("not supported by the concord livepatch")

// ErrNotSynCord is returned (wrapped) when the kernel tree is not a SynCord
// kernel's.
var ErrNotSynCord = errors.New("not a SynCord kernel tree")

// hookMacros maps the hooks the module runs to their concord_policy.h macro,
// in the order of concord.c's enum concord_hook.
var hookMacros = []struct{ hook, macro string }{
	{"lock_to_acquire", "CONCORD_PIN_TO_ACQUIRE"},
	{"lock_acquired", "CONCORD_PIN_ACQUIRED"},
	{"lock_to_release", "CONCORD_PIN_TO_RELEASE"},
	{"lock_released", "CONCORD_PIN_RELEASED"},
	{"lock_to_enter_slowpath", "CONCORD_PIN_TO_ENTER_SLOWPATH"},
	{"lock_enable_fastpath", "CONCORD_PIN_ENABLE_FASTPATH"},
	{"lock_bypass_acquire", "CONCORD_PIN_BYPASS_ACQUIRE"},
	{"lock_bypass_release", "CONCORD_PIN_BYPASS_RELEASE"},
	{"should_reorder", "CONCORD_PIN_SHOULD_REORDER"},
}

// branchMacros are the concord_policy.h macros naming the tree's branch.
var branchMacros = map[kernel.Branch]string{
	kernel.BranchStock:    "CONCORD_BRANCH_STOCK",
	kernel.BranchShfllock: "CONCORD_BRANCH_SHFLLOCK",
	kernel.BranchCNA:      "CONCORD_BRANCH_CNA",
}

// target is a lock concord.c attaches policies to.
type target struct {
	// macro selects the target's code in concord.c.
	macro string
	// hooks are the hooks concord.c runs there.
	hooks []string
	// branches are the SynCord branches concord.c implements the target
	// on; nil is every branch.
	branches []kernel.Branch
	// lockFree: the hooks run inside spinlocks of the whole kernel (also
	// in interrupts), so the programs must take no lock (CheckLockFree).
	lockFree bool
}

// supportedTargets are the targets concord.c replaces the functions of.
var supportedTargets = map[string]target{
	"rename_lock": {macro: "CONCORD_TARGET_RENAME_LOCK", hooks: []string{
		"lock_to_acquire", "lock_acquired", "lock_to_release", "lock_released",
		"lock_to_enter_slowpath", "lock_enable_fastpath", "lock_bypass_acquire", "lock_bypass_release"}},
	"rwsem": {macro: "CONCORD_TARGET_RWSEM", hooks: []string{"lock_acquired", "lock_bypass_acquire", "lock_bypass_release"},
		branches: []kernel.Branch{kernel.BranchStock}},
	// shfllock: module/shuffle.c replaces ShflLock's shuffle_waiters;
	// cna: module/cna.c replaces CNA's slow path.
	"all_spinlocks": {macro: "CONCORD_TARGET_ALL_SPINLOCKS", hooks: []string{"should_reorder"},
		branches: []kernel.Branch{kernel.BranchShfllock, kernel.BranchCNA}, lockFree: true},
	// module/scl.c: around the real s_vfs_rename_mutex (lock_rename,
	// unlock_rename, the rename syscalls); should_reorder as keepsOrder
	// says.
	"s_vfs_rename": {macro: "CONCORD_TARGET_S_VFS_RENAME", hooks: []string{
		"lock_to_acquire", "lock_acquired", "lock_to_release", "lock_released", "lock_to_enter_slowpath"}},
}

func branchNames(bs []kernel.Branch) string {
	s := make([]string, len(bs))
	for i, b := range bs {
		s[i] = string(b)
	}
	return strings.Join(s, " or ")
}

// keepsOrder are the targets whose lock keeps its own wait order, FIFO: a
// should_reorder program runs there in an admission queue the module puts
// in front of the lock (module/scl.c), unless the policy's object shows it
// always returns false (it never reorders: the module leaves it out, and
// the queue with it). Build decides (placeReorders).
var keepsOrder = map[string]bool{"s_vfs_rename": true}

// Config is what concord_policy.h says.
type Config struct {
	// Policy is the policy's name.
	Policy string
	// Target is the lock (bpf.Targets).
	Target string
	// Pins maps each hook to the bpffs path of its program.
	Pins map[string]string
	// MaybeReorders are should_reorder programs on a target that keeps
	// its own wait order (keepsOrder): Build adds one to Pins unless the
	// object shows it always returns false.
	MaybeReorders []bpf.Program
}

// ConfigFor derives the module's configuration from a policy manifest and
// refuses a target or hook the module does not attach.
func ConfigFor(m *bpf.Manifest) (*Config, error) {
	if m == nil || m.Name == "" {
		return nil, errors.New("concord livepatch: no policy")
	}
	c := &Config{Policy: m.Name, Target: m.TargetOrDefault(), Pins: map[string]string{}}
	tgt, ok := supportedTargets[c.Target]
	if !ok {
		return nil, fmt.Errorf("policy %s targets %s: %w yet (it attaches policies to: %s)", m.Name, c.Target, ErrUnsupported, strings.Join(sortedKeys(supportedTargets), ", "))
	}
	if tgt.branches != nil && len(m.Branches) > 0 {
		ok := false
		for _, b := range m.Branches {
			ok = ok || slices.Contains(tgt.branches, kernel.Branch(b))
		}
		if !ok {
			return nil, fmt.Errorf("policy %s targets %s on %s: %w yet (it attaches %s on %s only)", m.Name, c.Target, strings.Join(m.Branches, " or "), ErrUnsupported, c.Target, branchNames(tgt.branches))
		}
	}
	for _, p := range m.Programs {
		if p.Hook == "should_reorder" && keepsOrder[c.Target] {
			if len(c.MaybeReorders) > 0 {
				return nil, fmt.Errorf("policy %s: hook %s has two programs (%s and %s); a slot holds one program per hook", m.Name, p.Hook, c.MaybeReorders[0].Pin, p.Pin)
			}
			if strings.ContainsAny(p.Pin, "\"\\/\n") || p.Pin == "" {
				return nil, fmt.Errorf("policy %s: pin name %q cannot go into the module", m.Name, p.Pin)
			}
			c.MaybeReorders = append(c.MaybeReorders, p)
			continue
		}
		known := false
		for _, h := range tgt.hooks {
			if h == p.Hook {
				known = true
			}
		}
		if !known {
			return nil, fmt.Errorf("policy %s: hook %s of program %s on %s: %w yet (it runs %s there)", m.Name, p.Hook, p.Pin, c.Target, ErrUnsupported, strings.Join(tgt.hooks, ", "))
		}
		if old, dup := c.Pins[p.Hook]; dup {
			return nil, fmt.Errorf("policy %s: hook %s has two programs (%s and %s); a slot holds one program per hook", m.Name, p.Hook, old, p.Pin)
		}
		if strings.ContainsAny(p.Pin, "\"\\/\n") || p.Pin == "" {
			return nil, fmt.Errorf("policy %s: pin name %q cannot go into the module", m.Name, p.Pin)
		}
		c.Pins[p.Hook] = "/sys/fs/bpf/" + p.Pin
	}
	if len(c.Pins) == 0 {
		return nil, fmt.Errorf("policy %s has no programs", m.Name)
	}
	if len(ModuleName(c.Policy)) > 55 {
		return nil, fmt.Errorf("policy name %s is too long for a module name (%s has more than 55 characters)", c.Policy, ModuleName(c.Policy))
	}
	return c, nil
}

// ModuleName is the kernel's name of the policy's module (and of its
// livepatch, /sys/kernel/livepatch/<name>).
func ModuleName(policy string) string {
	return "livepatch_concord_" + sanitize(policy)
}

var nonIdent = regexp.MustCompile(`[^A-Za-z0-9_]`)

func sanitize(s string) string { return nonIdent.ReplaceAllString(s, "_") }

// Header returns concord_policy.h for c and the kernel tree t: the
// policy, its target, the tree's branch (CONCORD_BRANCH_STOCK,
// CONCORD_BRANCH_SHFLLOCK or CONCORD_BRANCH_CNA; none when unknown), whether
// it exports the rwsem policy slots, and the pin of each hook.
func Header(c *Config, t *Tree) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "/* Code generated by syncord policy build --livepatch for policy %s; DO NOT EDIT. */\n", c.Policy)
	fmt.Fprintf(&b, "#define CONCORD_POLICY %q\n", c.Policy)
	fmt.Fprintf(&b, "#define CONCORD_TARGET %q\n", c.Target)
	if t, ok := supportedTargets[c.Target]; ok {
		fmt.Fprintf(&b, "#define %s 1\n", t.macro)
	}
	if m, ok := branchMacros[t.Branch]; ok {
		fmt.Fprintf(&b, "#define CONCORD_BRANCH %q\n", t.Branch)
		fmt.Fprintf(&b, "#define %s 1\n", m)
	}
	if t.RwsemSlots {
		b.WriteString("#define CONCORD_HAVE_RWSEM_SLOTS 1\n")
	}
	for _, h := range hookMacros {
		fmt.Fprintf(&b, "#define %s %q\n", h.macro, c.Pins[h.hook])
	}
	return b.Bytes()
}

// Tree is a checked kernel build tree.
type Tree struct {
	// Dir is the tree (KDIR).
	Dir string
	// Release is include/config/kernel.release.
	Release string
	// RwsemSlots says the kernel exports the rwsem policy slots
	// (bpf_prog_lock_*_read: stock-syncord), which the rwsem target needs.
	RwsemSlots bool
	// Compiler is LINUX_COMPILER of include/generated/compile.h, e.g.
	// "gcc version 11.3.0 (Debian 11.3.0-12)"; "" when the tree lacks it.
	Compiler string
	// Branch is the tree's SynCord branch, "" when neither its exports
	// nor its release tell; BranchFrom says how it was found.
	Branch     kernel.Branch
	BranchFrom string
}

// Exports of Module.symvers that tell the branches apart (checked against
// the headers packages of ../shared/kernels): CNA's slow path is
// cna-syncord's, bpf_prog_skip_reorder is shfllock-syncord's, the rwsem
// policy slots are stock-syncord's.
const (
	symCNASlowpath = "__cna_queued_spin_lock_slowpath"
	symSkipReorder = "bpf_prog_skip_reorder"
	symRwsemSlot   = "bpf_prog_lock_acquired_read"
)

// treeBranch decides the branch from the tree's exports, else from the
// release's -<branch> suffix.
func treeBranch(syms map[string]bool, release string) (kernel.Branch, string) {
	switch {
	case syms[symCNASlowpath]:
		return kernel.BranchCNA, "Module.symvers exports " + symCNASlowpath
	case syms[symSkipReorder]:
		return kernel.BranchShfllock, "Module.symvers exports " + symSkipReorder
	case syms[symRwsemSlot]:
		return kernel.BranchStock, "Module.symvers exports " + symRwsemSlot
	}
	r := strings.TrimSuffix(release, "+")
	for _, b := range kernel.Branches {
		if strings.HasSuffix(r, "-"+string(b)) {
			return b, "release " + release
		}
	}
	return "", ""
}

// CheckTree checks that kdir is a prepared build tree of a SynCord kernel:
// a Makefile, a release, and the SynCord exports (num_policy,
// bpf_queued_spin_lock) in Module.symvers.
func CheckTree(kdir string) (*Tree, error) {
	if kdir == "" {
		return nil, setting.Errorf("no kernel build tree given ({KDir} KDIR: the SynCord kernel's build tree, e.g. the extracted linux-headers .deb's usr/src/linux-headers-<release>)")
	}
	if st, err := os.Stat(kdir); err != nil {
		return nil, setting.Errorf("kernel build tree: %w (give the SynCord kernel's build tree with {KDir})", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("kernel build tree %s is not a directory", kdir)
	}
	for _, f := range []string{"Makefile", "include/config/kernel.release", "Module.symvers"} {
		if _, err := os.Stat(filepath.Join(kdir, f)); err != nil {
			return nil, fmt.Errorf("kernel build tree %s has no %s: not a prepared build tree (extract the kernel's linux-headers package, or run make modules_prepare and make in the kernel source)", kdir, f)
		}
	}
	rel, err := os.ReadFile(filepath.Join(kdir, "include/config/kernel.release"))
	if err != nil {
		return nil, err
	}
	t := &Tree{Dir: kdir, Release: strings.TrimSpace(string(rel))}
	syms, err := exportedSymbols(filepath.Join(kdir, "Module.symvers"), "num_policy", "bpf_queued_spin_lock", symRwsemSlot, symSkipReorder, symCNASlowpath)
	if err != nil {
		return nil, err
	}
	for _, s := range []string{"num_policy", "bpf_queued_spin_lock"} {
		if !syms[s] {
			return nil, fmt.Errorf("kernel %s at %s: %w (it exports no %s; the concord livepatch needs a SynCord kernel: stock-syncord, shfllock-syncord or cna-syncord)", t.Release, kdir, ErrNotSynCord, s)
		}
	}
	t.RwsemSlots = syms[symRwsemSlot]
	t.Branch, t.BranchFrom = treeBranch(syms, t.Release)
	if b, err := os.ReadFile(filepath.Join(kdir, "include/generated/compile.h")); err == nil {
		if m := regexp.MustCompile(`#define LINUX_COMPILER "([^"]*)"`).FindSubmatch(b); m != nil {
			t.Compiler = string(m[1])
		}
	}
	return t, nil
}

func exportedSymbols(path string, want ...string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w] = true
	}
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 && wanted[fs[1]] {
			out[fs[1]] = true
		}
	}
	return out, sc.Err()
}

var gccVersion = regexp.MustCompile(`gcc version (\d+)\.`)

// DefaultCC returns the compiler the tree's kernel was built with, as a
// command in PATH: gcc-<major> (or gcc when its major version matches) for
// a gcc-built kernel.
func (t *Tree) DefaultCC() (string, error) {
	m := gccVersion.FindStringSubmatch(t.Compiler)
	if m == nil {
		if _, err := exec.LookPath("gcc"); err != nil {
			return "", setting.Errorf("kernel %s: no compiler named in %s and no gcc in PATH (give one with {CC})", t.Release, filepath.Join(t.Dir, "include/generated/compile.h"))
		}
		return "gcc", nil
	}
	major := m[1]
	if p, err := exec.LookPath("gcc-" + major); err == nil {
		return filepath.Base(p), nil
	}
	if out, err := exec.Command("gcc", "-dumpversion").Output(); err == nil && strings.SplitN(strings.TrimSpace(string(out)), ".", 2)[0] == major {
		return "gcc", nil
	}
	return "", setting.Errorf("kernel %s was built with %q: gcc-%s is not installed (apt-get install gcc-%s, or give another compiler with {CC}; a module built with another gcc may not load)", t.Release, t.Compiler, major, major)
}

// Options tune Build. The zero value uses the tree's own compiler.
type Options struct {
	// CC is the compiler (CC= and HOSTCC= of kbuild); "" is DefaultCC.
	CC string
	// Log receives kbuild's output; nil discards it (it is in the error
	// on failure).
	Log io.Writer
	// Object is the policy's compiled object (bpf.BuildResult.Object).
	// A target whose hooks run inside every spinlock (all_spinlocks) needs
	// it: Build refuses programs that could take a lock there. So does a
	// target that keeps its own wait order (s_vfs_rename): Build checks
	// there that the policy's should_reorder program never reorders.
	Object string
}

// Result is what Build made.
type Result struct {
	// Module is outDir/livepatch-concord.ko.
	Module string
	// Name is the module's (and its livepatch's) name.
	Name string
	// Release is the kernel it was built for.
	Release string
	// CC is the compiler used.
	CC string
}

// Build compiles the concord livepatch for policy m with kbuild against the
// tree kdir (never writing into it: kbuild runs with M= a temporary
// directory) and writes outDir/livepatch-concord.ko.
func Build(ctx context.Context, m *bpf.Manifest, kdir, outDir string, o Options) (*Result, error) {
	c, err := ConfigFor(m)
	if err != nil {
		return nil, err
	}
	if err := placeReorders(c, o.Object); err != nil {
		return nil, err
	}
	t, err := CheckTree(kdir)
	if err != nil {
		return nil, err
	}
	if err := checkTreeBranch(m, c, t); err != nil {
		return nil, err
	}
	if supportedTargets[c.Target].lockFree {
		if o.Object == "" {
			return nil, fmt.Errorf("policy %s targets %s: its programs run inside every contended spinlock, and Build needs the policy's object (Options.Object) to check that they take no lock", c.Policy, c.Target)
		}
		if err := CheckLockFree(m, o.Object); err != nil {
			return nil, err
		}
	}
	cc := o.CC
	if cc == "" {
		if cc, err = t.DefaultCC(); err != nil {
			return nil, err
		}
	} else if _, err := exec.LookPath(cc); err != nil {
		return nil, setting.Errorf("compiler %s: %w (install it, or give another with {CC})", cc, err)
	}
	if _, err := exec.LookPath("make"); err != nil {
		return nil, fmt.Errorf("make: %w (apt-get install make)", err)
	}
	tmp, err := os.MkdirTemp("", "syncord-concord-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	name := ModuleName(c.Policy)
	base := strings.ReplaceAll(name, "_", "-")
	files := map[string][]byte{"concord_policy.h": Header(c, t)}
	ents, err := fs.ReadDir(moduleFS, "module")
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		files[e.Name()] = mustRead("module/" + e.Name())
	}
	for f, b := range files {
		if err := os.WriteFile(filepath.Join(tmp, f), b, 0o644); err != nil {
			return nil, err
		}
	}
	abs, err := filepath.Abs(kdir)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "make", "-C", abs, "M="+tmp, "CC="+cc, "HOSTCC="+cc, "CONCORD_MOD="+base, "modules")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if o.Log != nil {
		cmd.Stdout, cmd.Stderr = io.MultiWriter(&out, o.Log), io.MultiWriter(&out, o.Log)
	}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("build concord livepatch for %s against %s: %s: %w\n%s", c.Policy, t.Release, strings.Join(cmd.Args, " "), err, strings.TrimSpace(out.String()))
	}
	ko, err := os.ReadFile(filepath.Join(tmp, base+".ko"))
	if err != nil {
		return nil, fmt.Errorf("build concord livepatch for %s: kbuild succeeded but made no %s.ko: %w", c.Policy, base, err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	dst := filepath.Join(outDir, ModuleFile)
	if err := os.WriteFile(dst, ko, 0o644); err != nil {
		return nil, err
	}
	return &Result{Module: dst, Name: name, Release: t.Release, CC: cc}, nil
}

// checkTreeBranch refuses a target concord.c does not implement on the
// tree's branch, and a policy whose manifest names other branches.
func checkTreeBranch(m *bpf.Manifest, c *Config, t *Tree) error {
	tgt := supportedTargets[c.Target]
	if c.Target == "rwsem" && !t.RwsemSlots {
		return fmt.Errorf("policy %s targets rwsem: kernel %s exports no rwsem policy slots (bpf_prog_lock_acquired_read): %w on this branch (it needs stock-syncord)", c.Policy, t.Release, ErrUnsupported)
	}
	if tgt.branches != nil && !slices.Contains(tgt.branches, t.Branch) {
		is := "a tree of unknown branch (no " + symCNASlowpath + ", " + symSkipReorder + " or " + symRwsemSlot + " in Module.symvers, no -<branch> release)"
		if t.Branch != "" {
			is = string(t.Branch) + " (" + t.BranchFrom + ")"
		}
		return fmt.Errorf("policy %s targets %s, which the concord livepatch attaches on %s only: kernel %s at %s is %s: %w there (build against the tree of a %s kernel)",
			c.Policy, c.Target, branchNames(tgt.branches), t.Release, t.Dir, is, ErrUnsupported, branchNames(tgt.branches))
	}
	if len(m.Branches) > 0 && t.Branch != "" && !slices.Contains(m.Branches, string(t.Branch)) {
		return fmt.Errorf("policy %s needs a %s kernel (its manifest says so): kernel %s at %s is %s (%s): %w", c.Policy, strings.Join(m.Branches, " or "), t.Release, t.Dir, t.Branch, t.BranchFrom, bpf.ErrWrongBranch)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// placeReorders puts each should_reorder program of c.MaybeReorders into
// c.Pins unless the object shows that it always returns false: its body is
// "r0 = 0; exit" (then the module runs no admission queue for it).
func placeReorders(c *Config, object string) error {
	if len(c.MaybeReorders) == 0 {
		return nil
	}
	if object == "" {
		return fmt.Errorf("policy %s has a should_reorder program on %s: no object given to check whether it reorders (concord.Options.Object)", c.Policy, c.Target)
	}
	obj, err := os.ReadFile(object)
	if err != nil {
		return fmt.Errorf("policy %s: %w", c.Policy, err)
	}
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(obj))
	if err != nil {
		return fmt.Errorf("policy %s: parse %s: %w", c.Policy, object, err)
	}
	for _, p := range c.MaybeReorders {
		ps := spec.Programs[p.Function]
		if ps == nil {
			for _, s := range spec.Programs {
				if s.SectionName == p.Section {
					ps = s
				}
			}
		}
		if ps == nil {
			return fmt.Errorf("policy %s: %s has no program %s (section %s)", c.Policy, object, p.Function, p.Section)
		}
		if !returnsFalse(ps.Instructions) {
			c.Pins[p.Hook] = "/sys/fs/bpf/" + p.Pin
		}
	}
	return nil
}

// returnsFalse says whether insns are "r0 = 0; exit".
func returnsFalse(insns asm.Instructions) bool {
	return len(insns) == 2 && insns[0].OpCode.ALUOp() == asm.Mov && insns[0].OpCode.Source() == asm.ImmSource &&
		insns[0].Dst == asm.R0 && insns[0].Constant == 0 && insns[1].OpCode.JumpOp() == asm.Exit
}
