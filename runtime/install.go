package runtime

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/syncord/syncord/bpf"
	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/internal/setting"
	"github.com/syncord/syncord/kernel"
	"github.com/syncord/syncord/kmod"
	"github.com/syncord/syncord/livepatch"
)

// ModuleBPFPrefix is the bpffs prefix a livepatch module's look-up paths
// start with; Install maps it onto Config.BPFFS.
const ModuleBPFPrefix = "/sys/fs/bpf/"

// InstallRequest is one policy install.
type InstallRequest struct {
	// Policy to load and pin (see Resolve).
	Policy *bpf.Policy
	// Source is what the user named (a built-in name or a directory);
	// recorded for status.
	Source string
	// Livepatch is the livepatch module file (.ko, .ko.gz/.xz/.zst); ""
	// installs the policy's pins only.
	Livepatch string
	// ModuleParams are the module's parameters ("name=value ...").
	ModuleParams string
	// SkipPinCheck skips the check that every bpffs path named in the
	// module is pinned before the module goes in (the module's own init
	// check still runs).
	SkipPinCheck bool
	// ForceTransition writes the livepatch's force file when the
	// transition does not finish in time. Unsafe.
	ForceTransition bool
	// Stats turns kernel.bpf_stats_enabled on (below Config.Roots.Proc) so
	// the kernel counts the programs' runs and run time; the record keeps
	// the previous value, which the uninstall of the last policy that
	// asked for stats restores.
	Stats bool
}

// Install checks the kernel, mounts bpffs if needed, loads and pins the
// policy, checks that every /sys/fs/bpf path the livepatch module names is
// pinned, inserts the module, waits for its transition and records the
// install under the state directory. Each step has an undo; on any failure
// (or ctx ending) the undos of the steps before it run in reverse, so no pin
// and no module is left behind. The record is written before each step, so
// a crash leaves a record of what may be on the system (see Status and
// Reconcile).
func (r *Runtime) Install(ctx context.Context, req InstallRequest) (rec *Record, err error) {
	p := req.Policy
	if p == nil {
		return nil, errors.New("install: no policy")
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	if err := validName(p.Name); err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	unlock, err := r.store.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if old, err := r.store.load(p.Name); err == nil {
		return nil, fmt.Errorf("install policy %s: already recorded as %s since %s (run syncord policy uninstall %s first)", p.Name, old.Phase, old.Started.Format(time.RFC3339), p.Name)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}

	// Checks that change nothing come first.
	info, err := r.kfs.Probe()
	if err != nil {
		return nil, fmt.Errorf("install policy %s: probe kernel: %w", p.Name, err)
	}
	if err := bpf.CheckKernel(p, info); err != nil {
		return nil, err
	}
	r.progress("kernel %s (%s)", info.Release, info.Kind())
	if jitOff(r.cfg.Roots.Proc) {
		r.progress("note: net.core.bpf_jit_enable is 0: the policy's programs will run in the BPF interpreter, several times slower on every hooked lock (echo 1 > /proc/sys/net/core/bpf_jit_enable before installing to JIT them)")
	}
	var mod *moduleInfo
	if req.Livepatch != "" {
		mod, err = r.checkModule(req.Livepatch, info)
		if err != nil {
			return nil, fmt.Errorf("install policy %s: %w", p.Name, err)
		}
		r.progress("livepatch %s: module %s, looks up %s", filepath.Base(req.Livepatch), mod.info.Name, listOrNone(mod.lookups))
		if err := r.checkTarget(p); err != nil {
			return nil, fmt.Errorf("install policy %s: %w", p.Name, err)
		}
	}
	planned := p.PinPaths(r.cfg.BPFFS)
	for _, path := range planned {
		if _, err := os.Lstat(path); err == nil {
			return nil, fmt.Errorf("install policy %s: %s exists already (%w; remove it, or uninstall the policy that made it)", p.Name, path, bpf.ErrPinExists)
		}
	}
	var stats *StatsRecord
	if req.Stats {
		prev, err := r.kfs.BPFStats()
		if err != nil {
			return nil, setting.Errorf("install policy %s {Stats}: %w", p.Name, err)
		}
		stats = &StatsRecord{Previous: prev, Restore: prev != "1"}
	}
	var progs []ProgramPin
	for i, pr := range p.Programs {
		progs = append(progs, ProgramPin{Path: planned[i], Hook: pr.Hook})
	}

	var undo []undoStep
	rec = &Record{
		Name: p.Name, Source: req.Source, Phase: PhasePinning, Params: p.Params,
		BPFFS: r.cfg.BPFFS, Pins: planned, Programs: progs, Stats: stats, ModulePath: req.Livepatch, Kernel: info.Release, Started: time.Now().UTC(),
	}
	if mod != nil {
		rec.Target = p.Target
	}
	recorded := false
	defer func() {
		if err == nil {
			return
		}
		if errs := r.rollback(ctx, undo); len(errs) > 0 {
			rec.Phase = PhaseFailed
			for _, e := range errs {
				rec.Errors = append(rec.Errors, e.Error())
			}
			if serr := r.store.save(rec); serr != nil {
				errs = append(errs, serr)
			}
			err = fmt.Errorf("%w; rollback incomplete: %w", err, errors.Join(errs...))
			return
		}
		if recorded {
			if rerr := r.store.remove(rec.Name); rerr != nil {
				err = fmt.Errorf("%w; %w", err, rerr)
			}
		}
		rec = nil
	}()

	mounted, err := bpf.EnsureBPFFS(r.cfg.BPFFS)
	if err != nil {
		return rec, fmt.Errorf("install policy %s: %w", p.Name, err)
	}
	if mounted {
		rec.MountedBPFFS = true
		r.progress("mounted bpffs at %s (it was not mounted)", r.cfg.BPFFS)
		dir := r.cfg.BPFFS
		undo = append(undo, undoStep{"unmount bpffs " + dir, func(context.Context) error { return unmountIfEmpty(dir) }})
	}
	if err := r.step("bpffs"); err != nil {
		return rec, err
	}

	if err := r.store.save(rec); err != nil {
		return rec, err
	}
	recorded = true
	// The record says what to restore before the sysctl changes.
	if stats != nil && stats.Restore {
		if err := r.kfs.SetBPFStats("1"); err != nil {
			return rec, fmt.Errorf("install policy %s: %w", p.Name, err)
		}
		prev := stats.Previous
		undo = append(undo, undoStep{"restore " + kernel.BPFStatsSysctl + "=" + prev, func(context.Context) error { return r.kfs.SetBPFStats(prev) }})
		r.progress("turned %s on (was %s; uninstall restores it)", kernel.BPFStatsSysctl, prev)
		if err := r.step("stats"); err != nil {
			return rec, err
		}
	} else if stats != nil {
		r.progress("%s is on already", kernel.BPFStatsSysctl)
	}
	start := time.Now()
	loaded, err := bpf.LoadPolicy(p, bpf.LoadOptions{Kernel: info})
	if err != nil {
		return rec, err
	}
	// The pins keep the programs and the map alive; our descriptors go.
	defer loaded.Close()
	if err := r.step("load"); err != nil {
		return rec, err
	}
	paths, err := loaded.Pin(r.cfg.BPFFS)
	if err != nil {
		return rec, err
	}
	undo = append(undo, undoStep{"unpin " + strings.Join(paths, " "), func(context.Context) error { return bpf.Unpin(paths) }})
	r.progress("loaded and pinned %s in %s: %s", p.Name, time.Since(start).Round(time.Microsecond), strings.Join(paths, " "))
	rec.Pins = paths
	rec.Phase = PhasePinned
	if err := r.store.save(rec); err != nil {
		return rec, err
	}
	if err := r.step("pin"); err != nil {
		return rec, err
	}
	if mod == nil {
		rec.Phase = PhaseInstalled
		if err := r.store.save(rec); err != nil {
			return rec, err
		}
		r.progress("installed %s (no livepatch module given: the programs are pinned but not attached to any lock)", p.Name)
		return rec, nil
	}

	if !req.SkipPinCheck {
		if err := r.checkLookups(mod); err != nil {
			return rec, fmt.Errorf("install policy %s: %w", p.Name, err)
		}
	} else {
		r.progress("skipping the pin check of %s as asked", filepath.Base(req.Livepatch))
	}
	if err := ctx.Err(); err != nil {
		return rec, fmt.Errorf("install policy %s: %w", p.Name, err)
	}
	rec.Phase = PhaseInserting
	rec.Module = mod.info.Name
	rec.ModulePath = req.Livepatch
	rec.Patch = mod.info.Name
	if err := r.store.save(rec); err != nil {
		return rec, err
	}
	if err := r.modules.Load(req.Livepatch, req.ModuleParams); err != nil {
		// A module whose init failed is not loaded: nothing to undo.
		return rec, fmt.Errorf("install policy %s: %w", p.Name, err)
	}
	modName, patch := mod.info.Name, mod.info.Name
	undo = append(undo, undoStep{"remove livepatch module " + modName, func(ctx context.Context) error {
		return r.removeModule(ctx, modName, patch, false)
	}})
	r.progress("inserted %s", modName)
	if err := r.step("insmod"); err != nil {
		return rec, err
	}
	rec.Phase = PhaseTransition
	if err := r.store.save(rec); err != nil {
		return rec, err
	}
	if r.lp.Loaded(patch) {
		r.progress("waiting for livepatch %s to finish its transition", patch)
		if err := r.waitTransition(ctx, patch, req.ForceTransition); err != nil {
			return rec, fmt.Errorf("install policy %s: %w", p.Name, err)
		}
		if en, err := r.lp.Enabled(patch); err != nil || !en {
			return rec, fmt.Errorf("install policy %s: livepatch %s is not enabled after its transition (%v; see dmesg)", p.Name, patch, err)
		}
	} else if mod.info.Livepatch {
		return rec, fmt.Errorf("install policy %s: module %s is loaded but %s is missing (see dmesg)", p.Name, modName, r.cfg.Roots.Sys.Path("kernel/livepatch", patch))
	}
	if err := r.step("transition"); err != nil {
		return rec, err
	}
	rec.Phase = PhaseInstalled
	if err := r.store.save(rec); err != nil {
		return rec, err
	}
	r.progress("installed %s with livepatch %s", p.Name, modName)
	return rec, nil
}

type undoStep struct {
	what string
	do   func(ctx context.Context) error
}

// rollbackTimeout bounds the undo of a failed install, which runs even when
// the install's context was cancelled.
const rollbackTimeout = 2 * time.Minute

// rollback runs undo in reverse and returns the failures; it goes on past
// a failed step so as much as possible is undone.
func (r *Runtime) rollback(ctx context.Context, undo []undoStep) []error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	var errs []error
	for i := len(undo) - 1; i >= 0; i-- {
		r.progress("rollback: %s", undo[i].what)
		if err := undo[i].do(ctx); err != nil {
			errs = append(errs, fmt.Errorf("rollback %s: %w", undo[i].what, err))
		}
	}
	return errs
}

type moduleInfo struct {
	info kmod.Info
	// lookups are the bpffs paths named in the module, as the module
	// spells them (/sys/fs/bpf/...).
	lookups []string
}

// checkModule reads the livepatch module and refuses it when it cannot work
// here: built for another kernel, already loaded, or a kernel without
// livepatch support.
func (r *Runtime) checkModule(path string, info *kernel.Info) (*moduleInfo, error) {
	image, err := kmod.ReadImage(path)
	if err != nil {
		return nil, err
	}
	mi, err := kmod.ParseInfo(image)
	if err != nil {
		return nil, fmt.Errorf("livepatch module %s: %w", path, err)
	}
	if mi.Name == "" {
		base := filepath.Base(path)
		if i := strings.Index(base, ".ko"); i > 0 {
			base = base[:i]
		}
		mi.Name = kmod.Normalize(base)
	}
	if vm := strings.Fields(mi.Vermagic); len(vm) > 0 && info.Release != "" && vm[0] != info.Release {
		return nil, fmt.Errorf("livepatch module %s was built for kernel %s, this is %s (rebuild it against this kernel's headers)", path, vm[0], info.Release)
	}
	if _, loaded, err := r.procMod.Module(mi.Name); err != nil {
		return nil, err
	} else if loaded {
		return nil, fmt.Errorf("module %s is already loaded (uninstall the policy that inserted it, or rmmod %s)", mi.Name, mi.Name)
	}
	if mi.Livepatch {
		if _, err := r.lp.Patches(); errors.Is(err, livepatch.ErrNoLivepatch) {
			return nil, err
		}
	}
	return &moduleInfo{info: mi, lookups: kmod.Strings(image, ModuleBPFPrefix)}, nil
}

// checkTarget refuses a livepatch for p when an installed policy's
// livepatch holds the same lock target: both would replace the same kernel
// functions, each running its own slot's programs, so the newer patch would
// hide the older policy (lockstat would stop counting; a bravo reader
// bypassed through one module would be released through the other's
// up_read). The concord module refuses that too (CONCORD_TARGET_EXCLUSIVE),
// but only once the pins are made and the module is in; this says it first
// and names the policy to uninstall.
func (r *Runtime) checkTarget(p *bpf.Policy) error {
	if p.Target == "" {
		return nil
	}
	recs, err := r.store.list()
	if err != nil {
		return err
	}
	for _, o := range recs {
		if o.ModulePath == "" && o.Module == "" {
			continue // pins only: attached to no lock
		}
		if recordTarget(o) != p.Target {
			continue
		}
		mod := o.Module
		if mod == "" {
			mod = filepath.Base(o.ModulePath)
		}
		return fmt.Errorf("policy %s already holds target %s through %s: one policy per lock target at a time (the newer livepatch would hide the older one's programs); uninstall %s first", o.Name, p.Target, mod, o.Name)
	}
	return nil
}

// concordDescription is how a concord module's MODULE_DESCRIPTION starts;
// it ends " on <target>".
const concordDescription = "syncord concord livepatch: runs lock policy "

// recordTarget is the record's target; for a record written before targets
// were recorded, the target named in its concord module's description, if
// the module file is still there, else "" (unknown: does not block).
func recordTarget(rec *Record) string {
	if rec.Target != "" || rec.ModulePath == "" {
		return rec.Target
	}
	mi, err := kmod.ReadInfo(rec.ModulePath)
	if err != nil {
		return ""
	}
	d := mi.Modinfo["description"]
	if !strings.HasPrefix(d, concordDescription) {
		return ""
	}
	if i := strings.LastIndex(d, " on "); i >= 0 {
		return d[i+len(" on "):]
	}
	return ""
}

// checkLookups refuses the module when a bpffs path it names is not there.
func (r *Runtime) checkLookups(mod *moduleInfo) error {
	var missing []string
	for _, l := range mod.lookups {
		rel := strings.TrimPrefix(l, ModuleBPFPrefix)
		if rel == "" || strings.Contains(rel, "%") {
			r.progress("cannot check %q named in module %s (not a plain path)", l, mod.info.Name)
			continue
		}
		if _, err := os.Lstat(filepath.Join(r.cfg.BPFFS, rel)); err != nil {
			missing = append(missing, l)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("livepatch module %s looks up %s, not pinned under %s: its init would fail (pin them with the policy that provides them, or give the matching policy)", mod.info.Name, strings.Join(missing, ", "), r.cfg.BPFFS)
	}
	return nil
}

// unloadRetry is how long removeModule retries a module that is still
// busy: the kernel drops a disabled livepatch's module reference from a
// work item shortly after the patch directory goes.
const unloadRetry = 10 * time.Second

// waitTransition waits, bounded by TransitionTimeout, for patch's
// transition to end, telling progress about nudges and blocking tasks;
// force writes the patch's force file at the timeout (unsafe, asked for).
func (r *Runtime) waitTransition(ctx context.Context, patch string, force bool) error {
	wopts := livepatch.WaitOptions{Force: force, Progress: func(s string) { r.progress("%s", s) }}
	return r.lp.Wait(ctx, patch, r.cfg.TransitionTimeout, wopts)
}

// removeModule disables the livepatch, waits for its transition and
// removes the module. Everything already gone is not an error.
func (r *Runtime) removeModule(ctx context.Context, module, patch string, force bool) error {
	if patch != "" && r.lp.Loaded(patch) {
		if err := r.lp.Disable(patch); err != nil {
			return err
		}
		r.progress("disabled livepatch %s, waiting for its transition", patch)
		if err := r.waitTransition(ctx, patch, force); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(unloadRetry)
	for {
		_, loaded, err := r.procMod.Module(module)
		if err != nil {
			return err
		}
		if !loaded {
			return nil
		}
		err = r.modules.Unload(module)
		if err == nil {
			r.progress("removed module %s", module)
			return nil
		}
		if !(errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EAGAIN)) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// unmountIfEmpty unmounts a bpffs this install mounted when nothing else
// was pinned there meanwhile.
func unmountIfEmpty(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !kernelPreload[e.Name()] {
			return nil
		}
	}
	if err := unix.Unmount(dir, 0); err != nil {
		return fmt.Errorf("unmount bpffs %s: %w", dir, err)
	}
	return nil
}

// kernelPreload are the entries the kernel's bpf_preload puts in every new
// bpffs (CONFIG_BPF_PRELOAD): not pins of anyone's policy.
var kernelPreload = map[string]bool{"maps.debug": true, "progs.debug": true}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "no bpffs paths"
	}
	return strings.Join(s, ", ")
}

// jitOff reports whether <proc>/sys/net/core/bpf_jit_enable says 0: the
// SynCord kernels (no CONFIG_BPF_JIT_ALWAYS_ON) boot that way, and a
// program loaded then stays interpreted.
func jitOff(proc pseudofs.FS) bool {
	b, err := proc.Read("sys/net/core/bpf_jit_enable", 64)
	return err == nil && strings.TrimSpace(string(b)) == "0"
}
