package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/syncord/syncord/bpf"
	"github.com/syncord/syncord/kernel"
	"github.com/syncord/syncord/kmod"
	"github.com/syncord/syncord/livepatch"
)

// Health is what a recorded policy really looks like on the system.
type Health string

const (
	// Installed: every pin present, module live, patch enabled, no
	// transition running.
	Installed Health = "installed"
	// InProgress: an install or uninstall is running now.
	InProgress Health = "in-progress"
	// Interrupted: an install or uninstall stopped part way (the process
	// died); Left says what is still there.
	Interrupted Health = "interrupted"
	// Degraded: recorded as installed, but something is missing or not
	// in its final state.
	Degraded Health = "degraded"
	// Failed: a rollback or uninstall failed; Left says what remains.
	Failed Health = "failed"
	// Gone: recorded, but nothing of it is on the system any more.
	Gone Health = "gone"
)

// PinStatus is one recorded pin.
type PinStatus struct {
	Path    string `json:"path"`
	Present bool   `json:"present"`
}

// ModuleStatus is the recorded module as /proc/modules shows it.
type ModuleStatus struct {
	Name     string     `json:"name"`
	Loaded   bool       `json:"loaded"`
	State    kmod.State `json:"state,omitempty"`
	Refcount int        `json:"refcount,omitempty"`
}

// ProgramStatus is one pinned hook program and the kernel's run counters
// for it (bpf_prog_info run_cnt and run_time_ns). They grow only while
// kernel.bpf_stats_enabled is on (Status.Kernel.BPFStats).
type ProgramStatus struct {
	Pin       string `json:"pin"`
	Hook      string `json:"hook,omitempty"`
	RunCount  uint64 `json:"run_count"`
	RunTimeNs uint64 `json:"run_time_ns"`
	// Error says why the counters could not be read.
	Error string `json:"error,omitempty"`
}

// PolicyStatus is a recorded policy and the truth about it.
type PolicyStatus struct {
	Record *Record     `json:"record"`
	Health Health      `json:"health"`
	Pins   []PinStatus `json:"pins"`
	// Programs are the present program pins with their run counters.
	Programs []ProgramStatus  `json:"programs"`
	Module   *ModuleStatus    `json:"module,omitempty"`
	Patch    *livepatch.Patch `json:"patch,omitempty"`
	// Complete is true when every recorded pin is present and the
	// recorded module (if any) is live with its patch enabled and not in
	// transition.
	Complete bool `json:"complete"`
	// Problems explain a health other than installed.
	Problems []string `json:"problems,omitempty"`
}

// Status is the whole picture: kernel, recorded policies, livepatches and
// pins nobody recorded.
type Status struct {
	Kernel struct {
		Release   string `json:"release"`
		Kind      string `json:"kind"`
		SynCord   bool   `json:"syncord"`
		BTF       bool   `json:"btf"`
		Livepatch bool   `json:"livepatch"`
		// Branch is the SynCord branch (stock-syncord, shfllock-syncord,
		// cna-syncord) and BranchFrom how it was found (kernel.Info).
		Branch     kernel.Branch `json:"branch,omitempty"`
		BranchFrom string        `json:"branch_from,omitempty"`
		// BPFStats is kernel.bpf_stats_enabled: the run counters of
		// Programs grow only while it is on.
		BPFStats bool `json:"bpf_stats_enabled"`
	} `json:"kernel"`
	BPFFS        string            `json:"bpffs"`
	BPFFSMounted bool              `json:"bpffs_mounted"`
	StateDir     string            `json:"state_dir"`
	Policies     []PolicyStatus    `json:"policies"`
	Livepatches  []livepatch.Patch `json:"livepatches"`
	// OtherPins are bpffs entries no recorded policy made.
	OtherPins []string `json:"other_pins"`
}

// Status reads the records and compares each with bpffs, /proc/modules and
// /sys/kernel/livepatch. It changes nothing.
func (r *Runtime) Status() (*Status, error) {
	st := &Status{BPFFS: r.cfg.BPFFS, StateDir: r.cfg.StateDir, Policies: []PolicyStatus{}, Livepatches: []livepatch.Patch{}, OtherPins: []string{}}
	info, err := r.kfs.Probe()
	if err != nil {
		return nil, fmt.Errorf("status: probe kernel: %w", err)
	}
	st.Kernel.Release, st.Kernel.Kind, st.Kernel.SynCord, st.Kernel.BTF = info.Release, info.Kind(), info.SynCord, info.BTF
	st.Kernel.Branch, st.Kernel.BranchFrom = info.Branch, info.BranchFrom
	// A kernel before 5.1 has no such sysctl: reported off.
	st.Kernel.BPFStats, _ = r.kfs.BPFStatsEnabled()
	patches, err := r.lp.Patches()
	switch {
	case err == nil:
		st.Kernel.Livepatch = true
		st.Livepatches = patches
	case errors.Is(err, livepatch.ErrNoLivepatch):
	default:
		return nil, err
	}
	st.BPFFSMounted, _ = bpf.IsBPFFS(r.cfg.BPFFS)
	recs, err := r.store.list()
	if err != nil {
		return nil, err
	}
	running := r.busy()
	mods, err := r.procMod.Modules()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	owned := map[string]bool{}
	for _, rec := range recs {
		ps := r.examine(rec, mods, running)
		for _, p := range rec.Pins {
			owned[filepath.Clean(p)] = true
		}
		st.Policies = append(st.Policies, ps)
	}
	if ents, err := os.ReadDir(r.cfg.BPFFS); err == nil {
		for _, e := range ents {
			p := filepath.Join(r.cfg.BPFFS, e.Name())
			if !owned[p] && !kernelPreload[e.Name()] {
				st.OtherPins = append(st.OtherPins, p)
			}
		}
	}
	sort.Strings(st.OtherPins)
	return st, nil
}

// busy tells whether another process holds the state lock now.
func (r *Runtime) busy() bool {
	unlock, err := r.store.lock()
	if err != nil {
		return true
	}
	unlock()
	return false
}

// examine compares one record with the system.
func (r *Runtime) examine(rec *Record, mods []kmod.Module, running bool) PolicyStatus {
	ps := PolicyStatus{Record: rec, Pins: []PinStatus{}, Programs: []ProgramStatus{}}
	present := 0
	isPresent := map[string]bool{}
	for _, p := range rec.Pins {
		_, err := os.Lstat(p)
		ps.Pins = append(ps.Pins, PinStatus{Path: p, Present: err == nil})
		if err == nil {
			present++
			isPresent[p] = true
		} else {
			ps.Problems = append(ps.Problems, "pin "+p+" is missing")
		}
	}
	for _, pp := range rec.Programs {
		if !isPresent[pp.Path] {
			continue
		}
		pr := ProgramStatus{Pin: pp.Path, Hook: pp.Hook}
		if st, err := bpf.PinnedRunStats(pp.Path); err != nil {
			pr.Error = err.Error()
		} else {
			pr.RunCount, pr.RunTimeNs = st.RunCount, uint64(st.RunTime)
		}
		ps.Programs = append(ps.Programs, pr)
	}
	moduleIn := false
	if rec.Module != "" {
		ms := &ModuleStatus{Name: rec.Module}
		for _, m := range mods {
			if m.Name == kmod.Normalize(rec.Module) {
				ms.Loaded, ms.State, ms.Refcount = true, m.State, m.Refcount
			}
		}
		ps.Module = ms
		moduleIn = ms.Loaded
		if !ms.Loaded {
			ps.Problems = append(ps.Problems, "module "+rec.Module+" is not loaded")
		} else if ms.State != kmod.Live {
			ps.Problems = append(ps.Problems, fmt.Sprintf("module %s is %s", rec.Module, ms.State))
		}
	}
	patchOK := true
	if rec.Patch != "" {
		if p, err := r.lp.Patch(rec.Patch); err == nil {
			ps.Patch = &p
			if !p.Enabled {
				patchOK = false
				ps.Problems = append(ps.Problems, "livepatch "+rec.Patch+" is disabled")
			}
			if p.Transition {
				patchOK = false
				ps.Problems = append(ps.Problems, "livepatch "+rec.Patch+" is in transition")
			}
		} else {
			patchOK = false
			ps.Problems = append(ps.Problems, "livepatch "+rec.Patch+" is not loaded")
		}
	}
	complete := present == len(rec.Pins) && (rec.Module == "" || (moduleIn && patchOK))
	nothing := present == 0 && !moduleIn
	ps.Complete = complete
	switch {
	case rec.Phase == PhaseFailed:
		ps.Health = Failed
		ps.Problems = append(ps.Problems, rec.Errors...)
	case rec.Phase != PhaseInstalled && running:
		ps.Health = InProgress
		ps.Problems = []string{fmt.Sprintf("%s by pid %d is running", rec.Phase, rec.PID)}
	case rec.Phase != PhaseInstalled:
		ps.Health = Interrupted
		ps.Problems = append([]string{fmt.Sprintf("the process (pid %d) stopped while %s; run syncord policy uninstall %s to remove what is left", rec.PID, rec.Phase, rec.Name)}, ps.Problems...)
	case nothing:
		ps.Health = Gone
	case complete:
		ps.Health = Installed
		ps.Problems = nil
	default:
		ps.Health = Degraded
	}
	return ps
}

// Finding is one thing Reconcile found and what it did about it.
type Finding struct {
	Policy string `json:"policy"`
	Health Health `json:"health"`
	Action string `json:"action"`
}

func (f Finding) String() string {
	return fmt.Sprintf("policy %s: %s: %s", f.Policy, f.Health, f.Action)
}

// finishTransition waits, as the install would have, for the livepatch
// transition of an install killed after insmod: the kernel goes on with
// it, and judging the record while it runs would call a policy that is
// about to be whole "left on the system". Bounded by TransitionTimeout;
// a transition still running then is reported as it is.
func (r *Runtime) finishTransition(rec *Record) {
	if rec.Patch == "" || (rec.Phase != PhaseInserting && rec.Phase != PhaseTransition) || !r.lp.Loaded(rec.Patch) {
		return
	}
	if in, err := r.lp.Transition(rec.Patch); err != nil || !in {
		return
	}
	r.progress("policy %s: waiting for livepatch %s to finish the transition its killed install started", rec.Name, rec.Patch)
	if err := r.waitTransition(context.Background(), rec.Patch, false); err != nil {
		r.progress("policy %s: %v", rec.Name, err)
	}
}

// Reconcile compares every record with the system, as on agent start, and
// makes the records tell the truth: a record of which nothing is left is
// dropped; an interrupted install whose every step is in fact done becomes
// installed; otherwise the record keeps only the pins and module really
// there and is marked failed with what is left, for uninstall to remove. It
// never removes a pin or a module itself. An install killed while its
// livepatch's transition ran is first given TransitionTimeout to finish
// it, as the install would have.
func (r *Runtime) Reconcile() ([]Finding, error) {
	unlock, err := r.store.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	recs, err := r.store.list()
	if err != nil {
		return nil, err
	}
	mods, err := r.procMod.Modules()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var out []Finding
	for _, rec := range recs {
		r.finishTransition(rec)
		ps := r.examine(rec, mods, false)
		f := Finding{Policy: rec.Name, Health: ps.Health}
		switch {
		case ps.Health == Installed:
			continue
		case ps.Health == Interrupted && ps.Complete && rec.Phase != PhaseUninstalling && (rec.ModulePath == "" || rec.Module != ""):
			// The install was killed after its last step but before its
			// last save.
			rec.Phase = PhaseInstalled
			rec.Errors = nil
			f.Action = "every step had finished; recorded as installed"
		case ps.Health == Gone || (allAbsent(ps) && rec.Phase != PhaseInstalled):
			// Its duty to restore kernel.bpf_stats_enabled goes to another
			// --stats policy, or is done now.
			if err := r.releaseStatsAmong(rec, recs); err != nil {
				return out, err
			}
			if err := r.store.remove(rec.Name); err != nil {
				return out, err
			}
			f.Action = "nothing of it is left; record dropped"
			out = append(out, f)
			continue
		default:
			before := struct {
				phase          Phase
				pins, errs     []string
				module, lpPath string
			}{rec.Phase, slices.Clone(rec.Pins), slices.Clone(rec.Errors), rec.Module, rec.ModulePath}
			var left []string
			rec.Pins = nil
			for _, p := range ps.Pins {
				if p.Present {
					rec.Pins = append(rec.Pins, p.Path)
					left = append(left, p.Path)
				}
			}
			if ps.Module != nil {
				if ps.Module.Loaded {
					left = append(left, "module "+rec.Module)
				} else {
					rec.Module, rec.ModulePath, rec.Patch = "", "", ""
				}
			}
			switch rec.Phase {
			case PhaseFailed:
				// Keep the errors of the failed rollback or uninstall.
			case PhaseInstalled:
				rec.Errors = ps.Problems // degraded: what is wrong now
			default:
				rec.Phase = PhaseFailed
				rec.Errors = ps.Problems
			}
			if rec.Phase == before.phase && slices.Equal(rec.Pins, before.pins) && slices.Equal(rec.Errors, before.errs) &&
				rec.Module == before.module && rec.ModulePath == before.lpPath {
				continue // already tells the truth
			}
			f.Action = fmt.Sprintf("left on the system: %s; record updated (remove with syncord policy uninstall %s)", listOrNone(left), rec.Name)
		}
		if err := r.store.save(rec); err != nil {
			return out, err
		}
		out = append(out, f)
	}
	return out, nil
}

func allAbsent(ps PolicyStatus) bool {
	for _, p := range ps.Pins {
		if p.Present {
			return false
		}
	}
	return ps.Module == nil || !ps.Module.Loaded
}

// Summary is a short human line for a policy's status.
func (ps PolicyStatus) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", ps.Record.Name, ps.Health)
	n := 0
	for _, p := range ps.Pins {
		if p.Present {
			n++
		}
	}
	fmt.Fprintf(&b, ", %d/%d pins", n, len(ps.Pins))
	if ps.Module != nil {
		if ps.Module.Loaded {
			fmt.Fprintf(&b, ", module %s %s", ps.Module.Name, ps.Module.State)
		} else {
			fmt.Fprintf(&b, ", module %s not loaded", ps.Module.Name)
		}
	}
	if ps.Patch != nil {
		fmt.Fprintf(&b, ", livepatch enabled=%v transition=%v", ps.Patch.Enabled, ps.Patch.Transition)
	}
	return b.String()
}
