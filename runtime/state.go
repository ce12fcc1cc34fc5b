package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/syncord/syncord/internal/setting"
)

// DefaultStateDir is where installs are recorded.
const DefaultStateDir = "/run/syncord"

// Phase is how far an install got. An install records each phase before
// the step it names, so a crash leaves a record of what may be on the system.
type Phase string

const (
	// PhasePinning: the policy is being loaded and pinned; Pins lists the
	// paths it will create.
	PhasePinning Phase = "pinning"
	// PhasePinned: every pin is made; the livepatch is not inserted yet.
	PhasePinned Phase = "pinned"
	// PhaseInserting: the livepatch module is being inserted.
	PhaseInserting Phase = "inserting"
	// PhaseTransition: the module is in; its patching transition runs.
	PhaseTransition Phase = "transition"
	// PhaseInstalled: everything is in place.
	PhaseInstalled Phase = "installed"
	// PhaseUninstalling: an uninstall started.
	PhaseUninstalling Phase = "uninstalling"
	// PhaseFailed: an install or uninstall failed and could not undo
	// everything; Errors says what is left.
	PhaseFailed Phase = "failed"
)

// Record is what an install made, kept in <state>/policies/<name>.json.
type Record struct {
	Name string `json:"name"`
	// Source is what the user named: a built-in policy or a directory.
	Source string            `json:"source"`
	Phase  Phase             `json:"phase"`
	Params map[string]uint64 `json:"params,omitempty"`
	// BPFFS is the bpffs directory the pins are in.
	BPFFS string `json:"bpffs"`
	// MountedBPFFS is true when this install mounted the bpffs.
	MountedBPFFS bool `json:"mounted_bpffs,omitempty"`
	// Pins are the paths this install made (or, while pinning, will make).
	Pins []string `json:"pins"`
	// Programs are the program pins among Pins, with their hooks, in the
	// policy's order (status reads their run counts).
	Programs []ProgramPin `json:"programs,omitempty"`
	// Stats is set when the install turned BPF run statistics on
	// (--stats): kernel.bpf_stats_enabled's value before, restored by the
	// uninstall of the last policy that asked for them.
	Stats *StatsRecord `json:"stats,omitempty"`
	// ModulePath is the livepatch module file asked for (from the start of
	// the install); Module, the module's name, and Patch, its directory
	// under /sys/kernel/livepatch, are recorded just before insmod. All
	// are empty without --livepatch.
	Module     string `json:"module,omitempty"`
	ModulePath string `json:"module_path,omitempty"`
	Patch      string `json:"patch,omitempty"`
	// Target is the kernel lock the livepatch attaches the policy to (its
	// manifest's target: rename_lock, rwsem, s_vfs_rename, all_spinlocks);
	// empty without --livepatch. One livepatched policy per target at a
	// time (see Install).
	Target string `json:"target,omitempty"`
	// Kernel is the release the policy was installed on.
	Kernel string `json:"kernel"`
	// PID of the process that wrote the record last.
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	// Errors of a failed rollback or uninstall: what may be left.
	Errors []string `json:"errors,omitempty"`
}

// ProgramPin is one pinned program of a policy.
type ProgramPin struct {
	Path string `json:"path"`
	Hook string `json:"hook,omitempty"`
}

// StatsRecord is what install --stats did to kernel.bpf_stats_enabled.
type StatsRecord struct {
	// Previous is the sysctl's value before ("0" or "1").
	Previous string `json:"previous"`
	// Restore is true when this record owes the restore of Previous: it
	// turned the sysctl on, or took the duty over from a policy
	// uninstalled before it.
	Restore bool `json:"restore"`
}

// store keeps records under a state directory.
type store struct {
	dir string
}

func (s *store) policiesDir() string { return filepath.Join(s.dir, "policies") }

func (s *store) path(name string) string {
	return filepath.Join(s.policiesDir(), name+".json")
}

// validName keeps policy names usable as file names.
func validName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || strings.HasPrefix(name, ".") {
		return fmt.Errorf("bad policy name %q (a plain file name is needed)", name)
	}
	return nil
}

// save writes r atomically: a temporary file in the same directory, fsync,
// rename over the old record, fsync of the directory.
func (s *store) save(r *Record) error {
	if err := validName(r.Name); err != nil {
		return err
	}
	if err := os.MkdirAll(s.policiesDir(), 0o700); err != nil {
		return setting.Errorf("record policy %s: %w (set {StateDir} to a writable directory)", r.Name, err)
	}
	r.Updated = time.Now().UTC()
	r.PID = os.Getpid()
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	tmp, err := os.CreateTemp(s.policiesDir(), "."+r.Name+".*.tmp")
	if err != nil {
		return fmt.Errorf("record policy %s: %w", r.Name, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("record policy %s: %w", r.Name, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("record policy %s: %w", r.Name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("record policy %s: %w", r.Name, err)
	}
	if err := os.Rename(tmp.Name(), s.path(r.Name)); err != nil {
		return fmt.Errorf("record policy %s: %w", r.Name, err)
	}
	if d, err := os.Open(s.policiesDir()); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// remove deletes the record of name; a missing record is not an error.
func (s *store) remove(name string) error {
	if err := os.Remove(s.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove record of policy %s: %w", name, err)
	}
	return nil
}

// load reads the record of name; fs.ErrNotExist when there is none.
func (s *store) load(name string) (*Record, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(s.path(name))
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read record %s: %w (remove the file if it is damaged)", s.path(name), err)
	}
	return &r, nil
}

// list reads every record, sorted by name. A directory that does not exist
// holds none.
func (s *store) list() ([]*Record, error) {
	ents, err := os.ReadDir(s.policiesDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var out []*Record
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".json") {
			continue
		}
		r, err := s.load(strings.TrimSuffix(n, ".json"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// lock takes an exclusive flock on <state>/lock, so one install, uninstall
// or reconcile runs at a time (the agent and a local CLI may race). The lock
// dies with the process, so a killed installer never leaves it held.
func (s *store) lock() (unlock func(), err error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, setting.Errorf("lock state: %w (set {StateDir} to a writable directory)", err)
	}
	f, err := os.OpenFile(filepath.Join(s.dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock state: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock state %s: another syncord install or uninstall is running (wait for it)", s.dir)
		}
		return nil, fmt.Errorf("lock state %s: %w", s.dir, err)
	}
	return func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}
