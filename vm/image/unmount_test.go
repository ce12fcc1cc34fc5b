package image

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// TestUnmountUnderEscapedPath: mountinfo writes a space in a mount point as
// \040; unmountUnder still finds the mounts below a dir with a space (the
// bootstrap's cache dir can have one) and unmounts them, deepest first.
func TestUnmountUnderEscapedPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "with space")
	outer, inner := filepath.Join(dir, "proc"), filepath.Join(dir, "proc", "inner")
	if err := os.MkdirAll(outer, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", outer, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("skipping: mount a tmpfs at %s: %v (needs root)", outer, err)
	}
	t.Cleanup(func() {
		unix.Unmount(inner, unix.MNT_DETACH)
		unix.Unmount(outer, unix.MNT_DETACH)
	})
	if err := os.Mkdir(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", inner, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatal(err)
	}
	if left, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir)); err != nil || len(left) != 2 {
		t.Fatalf("before: %d mounts under %s, %v; want 2", len(left), dir, err)
	}
	unmountUnder(dir)
	left, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range left {
		t.Errorf("%s still mounted after unmountUnder(%q)", m.Mountpoint, dir)
	}
}
