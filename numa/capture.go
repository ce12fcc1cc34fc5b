package numa

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Snapshot is the part of a sysfs tree the topology reader uses: the
// content of every file it read and every cpuN/nodeM link it followed,
// keyed by slash paths relative to the root. It is how fixtures under
// testdata are captured, also from inside the e2e VM (as JSON on stdout).
type Snapshot struct {
	Files map[string]string `json:"files"`
	Links map[string]string `json:"links,omitempty"`
}

type snapRecorder struct{ s *Snapshot }

func (r snapRecorder) file(rel string, data []byte) { r.s.Files[rel] = string(data) }
func (r snapRecorder) link(rel, target string)      { r.s.Links[rel] = target }

// Snapshot reads the topology as Topology does and returns the files read.
func (fs *FS) Snapshot() (*Snapshot, error) {
	s := &Snapshot{Files: map[string]string{}, Links: map[string]string{}}
	rec := *fs
	rec.rec = snapRecorder{s}
	if _, err := rec.Topology(); err != nil {
		return nil, err
	}
	return s, nil
}

// fixtureTop is the directory a fixture tree holds; WriteDir replaces it.
const fixtureTop = "devices"

// WriteDir writes s as a directory tree under dir (created if needed),
// replacing dir/devices and keeping anything else there (a README.md).
func (s *Snapshot) WriteDir(dir string) error {
	if err := os.RemoveAll(filepath.Join(dir, fixtureTop)); err != nil {
		return fmt.Errorf("write fixture %s: %w", dir, err)
	}
	names := make([]string, 0, len(s.Files))
	for n := range s.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p, err := fixturePath(dir, n)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("write fixture %s: %w", dir, err)
		}
		if err := os.WriteFile(p, []byte(s.Files[n]), 0o644); err != nil {
			return fmt.Errorf("write fixture %s: %w", dir, err)
		}
	}
	for n, target := range s.Links {
		p, err := fixturePath(dir, n)
		if err != nil {
			return err
		}
		if dst := path.Join(path.Dir(n), target); path.IsAbs(target) || !strings.HasPrefix(dst, fixtureTop+"/") {
			return fmt.Errorf("write fixture %s: link %s -> %s leaves the fixture tree", dir, n, target)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("write fixture %s: %w", dir, err)
		}
		if err := os.Symlink(target, p); err != nil {
			return fmt.Errorf("write fixture %s: %w", dir, err)
		}
	}
	return nil
}

// fixturePath maps a snapshot path to a file under dir, refusing paths that
// would leave the fixture tree (a snapshot may come from a guest).
func fixturePath(dir, rel string) (string, error) {
	clean := path.Clean(rel)
	if clean != rel || path.IsAbs(clean) || !strings.HasPrefix(clean, fixtureTop+"/") {
		return "", fmt.Errorf("write fixture %s: bad snapshot path %q (want %s/...)", dir, rel, fixtureTop)
	}
	return filepath.Join(dir, filepath.FromSlash(clean)), nil
}

// WriteJSON writes s as JSON to w.
func (s *Snapshot) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(s)
}

// ReadSnapshot decodes a snapshot written by WriteJSON.
func ReadSnapshot(r io.Reader) (*Snapshot, error) {
	var s Snapshot
	if err := json.NewDecoder(r).Decode(&s); err != nil {
		return nil, fmt.Errorf("decode topology snapshot: %w", err)
	}
	if s.Files == nil {
		return nil, fmt.Errorf("decode topology snapshot: no files")
	}
	return &s, nil
}

// Capture copies the files Topology reads from fs into dir as a fixture
// tree (see Snapshot.WriteDir).
func (fs *FS) Capture(dir string) error {
	s, err := fs.Snapshot()
	if err != nil {
		return err
	}
	return s.WriteDir(dir)
}
