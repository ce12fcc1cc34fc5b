package numa

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/syncord/syncord/numa/numatest"
)

// fixture returns an FS on numa/testdata/name.
func fixture(t testing.TB, name string) *FS {
	t.Helper()
	fs, err := NewFS(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// tempFixture copies numa/testdata/name to a temp dir (tests that edit or
// write a tree never touch testdata or /sys) and returns its root.
func tempFixture(t testing.TB, name string) string { return numatest.CopyFixture(t, name) }

func writeFile(t testing.TB, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, root, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
