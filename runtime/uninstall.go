package runtime

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/syncord/syncord/bpf"
	"github.com/syncord/syncord/kernel"
)

// UninstallOptions tune Uninstall; the zero value is the safe default.
type UninstallOptions struct {
	// ForceTransition writes the livepatch's force file when the disable
	// transition does not finish in time. Unsafe.
	ForceTransition bool
}

// Uninstall removes the policy name (or, when name is "", the only one
// recorded): it disables its livepatch, waits for the transition, removes
// the module, removes the pins this install made (and no other) and drops
// the record. Each step tolerates what is already gone, so it also cleans up
// after an interrupted install. On failure the record stays, marked failed,
// with what is left.
func (r *Runtime) Uninstall(ctx context.Context, name string, opts UninstallOptions) (*Record, error) {
	unlock, err := r.store.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if name == "" {
		recs, err := r.store.list()
		if err != nil {
			return nil, err
		}
		switch len(recs) {
		case 0:
			return nil, fmt.Errorf("uninstall: no policy is installed (state in %s)", r.cfg.StateDir)
		case 1:
			name = recs[0].Name
		default:
			var names []string
			for _, rec := range recs {
				names = append(names, rec.Name)
			}
			return nil, fmt.Errorf("uninstall: %d policies are installed (%s): name one", len(recs), strings.Join(names, ", "))
		}
	}
	rec, err := r.store.load(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("uninstall policy %s: not installed (no record in %s; see syncord policy status)", name, r.store.policiesDir())
	}
	if err != nil {
		return nil, err
	}
	rec.Phase = PhaseUninstalling
	rec.Errors = nil
	if err := r.store.save(rec); err != nil {
		return rec, err
	}
	r.progress("uninstalling %s", name)
	var errs []error
	if rec.Module != "" {
		if err := r.removeModule(ctx, rec.Module, rec.Patch, opts.ForceTransition); err != nil {
			errs = append(errs, fmt.Errorf("remove livepatch module %s: %w", rec.Module, err))
		} else {
			rec.Module, rec.ModulePath, rec.Patch = "", "", ""
		}
	}
	// The pins go only once the module that looks them up is out.
	if len(errs) == 0 {
		if err := bpf.Unpin(rec.Pins); err != nil {
			errs = append(errs, err)
		} else {
			r.progress("removed %s", listOrNone(rec.Pins))
			rec.Pins = nil
		}
	}
	if len(errs) == 0 {
		if err := r.releaseStats(rec); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		rec.Phase = PhaseFailed
		for _, e := range errs {
			rec.Errors = append(rec.Errors, e.Error())
		}
		if err := r.store.save(rec); err != nil {
			errs = append(errs, err)
		}
		return rec, fmt.Errorf("uninstall policy %s: %w", name, errors.Join(errs...))
	}
	if err := r.store.remove(name); err != nil {
		return rec, err
	}
	r.progress("uninstalled %s", name)
	return rec, nil
}

// releaseStats hands back kernel.bpf_stats_enabled when rec owes its
// restore: to another recorded policy that asked for stats (it stays on,
// and that policy now owes the restore), or, when rec is the last, by
// writing the value from before the first --stats install.
func (r *Runtime) releaseStats(rec *Record) error {
	if rec.Stats == nil || !rec.Stats.Restore {
		return nil
	}
	recs, err := r.store.list()
	if err != nil {
		return err
	}
	return r.releaseStatsAmong(rec, recs)
}

// releaseStatsAmong is releaseStats with the other records given (and
// updated in place).
func (r *Runtime) releaseStatsAmong(rec *Record, recs []*Record) error {
	if rec.Stats == nil || !rec.Stats.Restore {
		return nil
	}
	for _, o := range recs {
		if o.Name == rec.Name || o.Stats == nil {
			continue
		}
		o.Stats.Previous, o.Stats.Restore = rec.Stats.Previous, true
		if err := r.store.save(o); err != nil {
			return err
		}
		rec.Stats = nil
		r.progress("%s stays on: policy %s asked for it too (its uninstall restores %s)", kernel.BPFStatsSysctl, o.Name, o.Stats.Previous)
		return nil
	}
	if err := r.kfs.SetBPFStats(rec.Stats.Previous); err != nil {
		return fmt.Errorf("restore %s: %w", kernel.BPFStatsSysctl, err)
	}
	r.progress("restored %s=%s", kernel.BPFStatsSysctl, rec.Stats.Previous)
	rec.Stats = nil
	return nil
}
