package pseudofs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "attr")
	if err := os.WriteFile(p, []byte("0-3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(p, 64); err != nil || string(b) != "0-3\n" {
		t.Fatalf("Read = %q, %v", b, err)
	}
	if b, err := Read(p, 4); err != nil || string(b) != "0-3\n" {
		t.Fatalf("Read at exactly the bound = %q, %v", b, err)
	}
	if _, err := Read(filepath.Join(dir, "missing"), 64); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := Read(dir, 64); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("reading a directory: %v; want an error naming it", err)
	}
}

// TestReadRefusesMoreThanBound: content past the bound is an error naming
// the file and wrapping ErrTooLarge, not a silent cut a parser would take
// for the whole file (kmod's /proc/modules reader used to cut).
func TestReadRefusesMoreThanBound(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(p, make([]byte, 5001), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := Read(p, 5000)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), p) {
		t.Fatalf("Read(5001 bytes, bound 5000) = %d bytes, %v; want ErrTooLarge naming the file", len(b), err)
	}
}

func TestNewFS(t *testing.T) {
	dir := t.TempDir()
	fsys, err := NewFS(dir + "/")
	if err != nil || string(fsys) != dir {
		t.Fatalf("NewFS(%s/) = %q, %v", dir, fsys, err)
	}
	if got := fsys.Path("devices/system/cpu", "online"); got != dir+"/devices/system/cpu/online" {
		t.Errorf("Path = %s", got)
	}
	if _, err := NewFS(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("NewFS(missing) = %v, want ErrNotExist", err)
	}
	f := filepath.Join(dir, "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := NewFS(f); !errors.Is(err, ErrNotDir) {
		t.Errorf("NewFS(file) = %v, want ErrNotDir", err)
	}
}

func TestNewRoots(t *testing.T) {
	dir := t.TempDir()
	r, err := NewRoots(dir, dir)
	if err != nil || r.Proc != FS(dir) || r.Sys != FS(dir) {
		t.Fatalf("NewRoots = %+v, %v", r, err)
	}
	_, err = NewRoots(dir, filepath.Join(dir, "nosys"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "sysfs root") || !strings.Contains(err.Error(), "mount -t sysfs") {
		t.Errorf("missing sysfs root: %v; want ErrNotExist naming the sysfs root and how to mount it", err)
	}
	_, err = NewRoots(filepath.Join(dir, "noproc"), dir)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "procfs root") {
		t.Errorf("missing procfs root: %v", err)
	}
	if d := DefaultRoots(); d.Proc != "/proc" || d.Sys != "/sys" {
		t.Errorf("DefaultRoots = %+v", d)
	}
}

func TestReadLive(t *testing.T) {
	b, err := FS(DefaultProcMountPoint).Read("sys/kernel/osrelease", 4096)
	if err != nil {
		t.Skipf("skipping: no procfs: %v", err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		t.Fatal("empty osrelease")
	}
}
