package numa

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DefaultRoot is where sysfs is mounted on a live system.
const DefaultRoot = "/sys"

// maxFileSize bounds every pseudo-file read. sysfs attributes are at most a
// page; binary cpumap/cpulist attributes of machines with thousands of CPUs
// stay far below this.
const maxFileSize = 1 << 20

// FS reads CPU and NUMA topology from a sysfs tree rooted at Root.
type FS struct {
	root string
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
// fixture under testdata). root must be an existing directory.
func NewFS(root string) (*FS, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("sysfs root %s: %w (is sysfs mounted? try: mount -t sysfs sysfs /sys)", root, errors.Unwrap(err))
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("sysfs root %s is not a directory", root)
	}
	return &FS{root: filepath.Clean(root)}, nil
}

// NewDefaultFS returns an FS reading the live sysfs at /sys.
func NewDefaultFS() (*FS, error) { return NewFS(DefaultRoot) }

// Root is the directory the FS reads.
func (fs *FS) Root() string { return fs.root }

// path returns the absolute path of rel (a slash path relative to the root).
func (fs *FS) path(rel string) string { return fs.root + "/" + rel }

// read reads the pseudo-file rel with one bounded read loop (no stat-based
// sizing: sysfs reports 4096 for every attribute).
func (fs *FS) read(rel string) ([]byte, error) {
	data, err := readBounded(fs.path(rel))
	if err != nil {
		return nil, err
	}
	if fs.rec != nil {
		fs.rec.file(rel, data)
	}
	return data, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > maxFileSize {
			return nil, fmt.Errorf("read %s: larger than %d bytes, not a sysfs attribute", path, maxFileSize)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, errors.Unwrap(err))
		}
	}
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
