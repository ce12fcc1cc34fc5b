package livepatch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/syncord/syncord/internal/pseudofs"
)

// ErrNoLivepatch means the kernel has no /sys/kernel/livepatch.
var ErrNoLivepatch = errors.New("kernel has no livepatch support (/sys/kernel/livepatch missing: needs CONFIG_LIVEPATCH=y)")

// ErrNoPatch means the named patch is not loaded.
var ErrNoPatch = errors.New("livepatch not loaded")

// FS reads and drives <sys>/kernel/livepatch and reads the per-task
// patch_state files under <proc>.
type FS struct {
	sys, proc pseudofs.FS
}

// New returns an FS for roots (checked by pseudofs.NewRoots; an empty
// root means the default, /sys or /proc).
func New(roots pseudofs.Roots) *FS {
	if roots.Sys == "" {
		roots.Sys = pseudofs.DefaultSysMountPoint
	}
	if roots.Proc == "" {
		roots.Proc = pseudofs.DefaultProcMountPoint
	}
	return &FS{sys: roots.Sys, proc: roots.Proc}
}

// Patch is one directory of /sys/kernel/livepatch.
type Patch struct {
	Name       string `json:"name"`
	Enabled    bool   `json:"enabled"`
	Transition bool   `json:"transition"`
	// Signal and Force tell whether the kernel has these controls. Newer
	// kernels (Debian's 6.1 among them) have no signal file: they send
	// the fake signal to blocking tasks by themselves.
	Signal bool `json:"has_signal"`
	Force  bool `json:"has_force"`
}

func (l *FS) dir() string { return l.sys.Path("kernel", "livepatch") }

func (l *FS) patchDir(p string) string { return filepath.Join(l.dir(), p) }

// Patches reads every patch in /sys/kernel/livepatch, sorted by name. A
// patch that vanishes while being read (its disable just finished) is left
// out.
func (l *FS) Patches() ([]Patch, error) {
	ents, err := os.ReadDir(l.dir())
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, ErrNoLivepatch
		}
		return nil, fmt.Errorf("list livepatches: %w", err)
	}
	var out []Patch
	for _, e := range ents {
		if !e.IsDir() && e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		p, err := l.Patch(e.Name())
		if errors.Is(err, ErrNoPatch) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Patch reads one patch's enabled and transition files and which controls
// it has. A patch that is not loaded gives an error wrapping ErrNoPatch.
func (l *FS) Patch(name string) (Patch, error) {
	p := Patch{Name: name}
	var err error
	if p.Enabled, err = l.Enabled(name); err != nil {
		return Patch{}, err
	}
	if p.Transition, err = l.Transition(name); err != nil {
		return Patch{}, err
	}
	p.Signal = exists(filepath.Join(l.patchDir(name), "signal"))
	p.Force = exists(filepath.Join(l.patchDir(name), "force"))
	return p, nil
}

// Loaded tells whether /sys/kernel/livepatch/<p> exists.
func (l *FS) Loaded(p string) bool { return exists(l.patchDir(p)) }

// Enabled reads /sys/kernel/livepatch/<p>/enabled. During a transition it
// is the target: true while patching, false while unpatching.
func (l *FS) Enabled(p string) (bool, error) { return l.readBool(p, "enabled") }

// Transition reads /sys/kernel/livepatch/<p>/transition: true while tasks
// are still being switched to the target state.
func (l *FS) Transition(p string) (bool, error) { return l.readBool(p, "transition") }

// Disable writes 0 to /sys/kernel/livepatch/<p>/enabled, which starts the
// unpatching transition (or reverses a patching one in flight). A patch
// that is already disabled or no longer loaded is not an error.
func (l *FS) Disable(p string) error {
	en, err := l.Enabled(p)
	if errors.Is(err, ErrNoPatch) {
		return nil
	}
	if err != nil {
		return err
	}
	if !en {
		return nil
	}
	err = l.write(p, "enabled", "0")
	if errors.Is(err, ErrNoPatch) {
		return nil
	}
	return err
}

// Signal writes 1 to /sys/kernel/livepatch/<p>/signal: the kernel sends a
// fake signal to user tasks and wakes kthreads that block the transition.
// On kernels without the file the error wraps fs.ErrNotExist.
func (l *FS) Signal(p string) error { return l.write(p, "signal", "1") }

// Force writes 1 to /sys/kernel/livepatch/<p>/force: every task is marked
// switched at once. Unsafe: a task still running old code may then run it
// against new data, and the module can no longer be removed. Only on an
// explicit request.
func (l *FS) Force(p string) error { return l.write(p, "force", "1") }

// maxAttr bounds the one read of a sysfs or procfs attribute.
const maxAttr = 4096

func readAttr(path string) (string, error) {
	b, err := pseudofs.Read(path, maxAttr)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func (l *FS) readBool(p, attr string) (bool, error) {
	path := filepath.Join(l.patchDir(p), attr)
	s, err := readAttr(path)
	if err != nil {
		// ENODEV: sysfs removed the attribute between our open and read
		// (the patch was freed meanwhile): the patch is leaving.
		if errors.Is(err, syscall.ENODEV) {
			return false, fmt.Errorf("read livepatch %s %s: removed while read: %w", p, attr, ErrNoPatch)
		}
		if errors.Is(err, fs.ErrNotExist) {
			if !exists(l.patchDir(p)) {
				if !exists(l.dir()) {
					return false, ErrNoLivepatch
				}
				return false, fmt.Errorf("read livepatch %s %s: %w", p, attr, ErrNoPatch)
			}
			// Every patch directory has "enabled"; when it is gone too,
			// the kobject is being torn down (attributes go before the
			// directory): the patch is leaving, not broken.
			if !exists(filepath.Join(l.patchDir(p), "enabled")) {
				return false, fmt.Errorf("read livepatch %s %s: being removed: %w", p, attr, ErrNoPatch)
			}
		}
		return false, fmt.Errorf("read livepatch %s: %w", attr, err)
	}
	v, err := strconv.Atoi(s)
	if err != nil || (v != 0 && v != 1) {
		return false, fmt.Errorf("read livepatch %s: %q is not 0 or 1", path, s)
	}
	return v == 1, nil
}

func (l *FS) write(p, attr, val string) error {
	path := filepath.Join(l.patchDir(p), attr)
	// O_WRONLY without O_CREATE: sysfs attributes exist or the kernel
	// lacks them; we never create files there.
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !exists(l.patchDir(p)) {
			return fmt.Errorf("write livepatch %s %s: %w", p, attr, ErrNoPatch)
		}
		return fmt.Errorf("write livepatch %s: %w", attr, err)
	}
	_, werr := f.WriteString(val)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("write %s to livepatch %s: %w", val, path, werr)
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
