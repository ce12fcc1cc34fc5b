// Package pseudofs is the one way syncord reaches sysfs and procfs: a
// validated mount point (FS, like prometheus/procfs's internal/fs), the
// pair of them every command and package shares (Roots), and one bounded
// reader for their pseudo-files (one open, reads up to a bound, no
// stat-based sizing: their sizes are reported as 0 or 4096 whatever they
// hold).
package pseudofs

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
)

// The mount points of a live system.
const (
	DefaultProcMountPoint = "/proc"
	DefaultSysMountPoint  = "/sys"
)

// ErrTooLarge means a pseudo-file held more than the reader's bound: it is
// not the attribute the caller meant to read.
var ErrTooLarge = errors.New("larger than the bound for a pseudo-file")

// ErrNotDir means a mount point exists but is not a directory.
var ErrNotDir = errors.New("not a directory")

// FS is the mount point of a pseudo filesystem (or a fixture tree standing
// in for one), checked once by NewFS.
type FS string

// NewFS returns the FS at mountPoint, which must be an existing directory.
// The error wraps the stat error (errors.Is(err, fs.ErrNotExist)) or
// ErrNotDir.
func NewFS(mountPoint string) (FS, error) {
	st, err := os.Stat(mountPoint)
	if err != nil {
		return "", fmt.Errorf("root %s: %w", mountPoint, cause(err))
	}
	if !st.IsDir() {
		return "", fmt.Errorf("root %s: %w", mountPoint, ErrNotDir)
	}
	return FS(filepath.Clean(mountPoint)), nil
}

// Path joins rel (slash-separated parts) to the mount point.
func (fs FS) Path(rel ...string) string {
	return filepath.Join(append([]string{string(fs)}, rel...)...)
}

// Read reads the pseudo-file rel below the mount point with Read.
func (fs FS) Read(rel string, max int64) ([]byte, error) {
	return Read(fs.Path(rel), max)
}

// Roots are the procfs and sysfs mount points a command reads: the one
// value cmd builds from its root flags and hands to every package.
type Roots struct {
	Proc FS
	Sys  FS
}

// DefaultRoots are /proc and /sys, not checked (a live system has them;
// the first read says so if not).
func DefaultRoots() Roots {
	return Roots{Proc: DefaultProcMountPoint, Sys: DefaultSysMountPoint}
}

// NewRoots checks the procfs and sysfs mount points once ("" means the
// default) and returns them. The error names which root failed, wraps the
// cause, and says how to mount the live one.
func NewRoots(proc, sys string) (Roots, error) {
	p, err := NewProcFS(proc)
	if err != nil {
		return Roots{}, err
	}
	s, err := NewSysFS(sys)
	if err != nil {
		return Roots{}, err
	}
	return Roots{Proc: p, Sys: s}, nil
}

// NewSysFS is NewFS for a sysfs mount point ("" means /sys); the error
// says it is the sysfs root and how to mount one.
func NewSysFS(mountPoint string) (FS, error) {
	return newKind("sysfs", "sysfs", DefaultSysMountPoint, mountPoint)
}

// NewProcFS is NewFS for a procfs mount point ("" means /proc).
func NewProcFS(mountPoint string) (FS, error) {
	return newKind("procfs", "proc", DefaultProcMountPoint, mountPoint)
}

func newKind(kind, fstype, def, mountPoint string) (FS, error) {
	if mountPoint == "" {
		mountPoint = def
	}
	fs, err := NewFS(mountPoint)
	if err != nil {
		return "", fmt.Errorf("%s %w (is %s mounted? try: mount -t %s %s %s)", kind, err, kind, fstype, fstype, def)
	}
	return fs, nil
}

// Read returns the content of the pseudo-file at path, which must be at
// most max bytes: more is an error wrapping ErrTooLarge (the file is not
// the attribute the caller meant), never a silent cut. An open error comes
// back unwrapped (so errors.Is(err, fs.ErrNotExist) works); a read error
// names the path.
func Read(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, cause(err))
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("read %s: more than %d bytes: %w", path, max, ErrTooLarge)
	}
	return b, nil
}

// cause drops the *fs.PathError around err: the messages above name the
// path themselves.
func cause(err error) error {
	var pe *iofs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
