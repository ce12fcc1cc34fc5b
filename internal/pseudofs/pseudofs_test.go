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
	if b, err := Read(p, 2); err != nil || string(b) != "0-" {
		t.Fatalf("bounded Read = %q, %v; want the first 2 bytes", b, err)
	}
	if _, err := Read(filepath.Join(dir, "missing"), 64); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := Read(dir, 64); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("reading a directory: %v; want an error naming it", err)
	}
}

func TestReadLive(t *testing.T) {
	b, err := Read("/proc/sys/kernel/osrelease", 4096)
	if err != nil {
		t.Skipf("skipping: no procfs: %v", err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		t.Fatal("empty osrelease")
	}
}
