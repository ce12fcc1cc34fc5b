package numa

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/syncord/syncord/internal/pseudofs"
)

// DefaultRoot is where sysfs is mounted on a live system.
const DefaultRoot = pseudofs.DefaultSysMountPoint

// maxFileSize bounds every pseudo-file read. sysfs attributes are at most a
// page; binary cpumap/cpulist attributes of machines with thousands of CPUs
// stay far below this.
const maxFileSize = 1 << 20

// FS reads CPU and NUMA topology from a sysfs tree rooted at Root.
type FS struct {
	root pseudofs.FS
	// rec, when set, is told every file read and every node link found, so
	// a capture can copy exactly what the reader uses.
	rec recorder
}

// recorder sees what a reader touches (see Capture).
type recorder interface {
	file(rel string, data []byte)
	link(rel, target string)
}

// NewFS returns an FS reading the sysfs tree at root (for example "/sys" or a
// fixture under testdata). root must be an existing directory
// (pseudofs.NewSysFS checks it).
func NewFS(root string) (*FS, error) {
	sys, err := pseudofs.NewSysFS(root)
	if err != nil {
		return nil, err
	}
	return New(sys), nil
}

// New returns an FS reading the sysfs mount point sys, already checked
// (pseudofs.Roots.Sys).
func New(sys pseudofs.FS) *FS { return &FS{root: sys} }

// NewDefaultFS returns an FS reading the live sysfs at /sys.
func NewDefaultFS() (*FS, error) { return NewFS(DefaultRoot) }

// Root is the directory the FS reads.
func (fs *FS) Root() string { return string(fs.root) }

// path returns the absolute path of rel (a slash path relative to the root).
func (fs *FS) path(rel string) string { return string(fs.root) + "/" + rel }

// read reads the pseudo-file rel with one bounded read (no stat-based
// sizing: sysfs reports 4096 for every attribute).
func (fs *FS) read(rel string) ([]byte, error) {
	data, err := pseudofs.Read(fs.path(rel), maxFileSize)
	if err != nil {
		return nil, err
	}
	if fs.rec != nil {
		fs.rec.file(rel, data)
	}
	return data, nil
}

// parseErr names the file a parse error came from.
func (fs *FS) parseErr(rel string, err error) error {
	return fmt.Errorf("parse %s: %w", fs.path(rel), err)
}

// readParsed reads rel and parses it with parse; errors name the file.
func readParsed[T any](fs *FS, rel string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	data, err := fs.read(rel)
	if err != nil {
		return zero, err
	}
	v, err := parse(data)
	if err != nil {
		return zero, fs.parseErr(rel, err)
	}
	return v, nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// trimLine drops surrounding whitespace (sysfs values end in "\n").
func trimLine(b []byte) string { return strings.TrimSpace(string(b)) }
