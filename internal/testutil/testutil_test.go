package testutil

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// TestBPFSkip: the skip decision follows the error's identity, however
// it is wrapped or worded.
func TestBPFSkip(t *testing.T) {
	for _, tc := range []struct {
		err  error
		skip bool
	}{
		{fmt.Errorf("map create: %w", unix.EPERM), true},
		{fmt.Errorf("map create: %w", unix.EACCES), true},
		{fmt.Errorf("map create: %w", unix.ENOSYS), true},
		{fmt.Errorf("create map: %w", ebpf.ErrNotSupported), true},
		{fmt.Errorf("map create: %w", unix.EINVAL), false},
		{errors.New("operation not permitted"), false}, // text alone is not the error
	} {
		if skip, _ := bpfSkip(tc.err); skip != tc.skip {
			t.Errorf("bpfSkip(%v) = %v, want %v", tc.err, skip, tc.skip)
		}
	}
}

// TestPrivateBPFFS: a bpffs of the test's own, gone after the test.
func TestPrivateBPFFS(t *testing.T) {
	var dir string
	t.Run("mount", func(t *testing.T) {
		RequireBPF(t)
		dir = PrivateBPFFS(t)
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil || st.Type != unix.BPF_FS_MAGIC {
			t.Fatalf("statfs %s: type %#x, %v; want bpffs", dir, st.Type, err)
		}
		if err := os.WriteFile(dir+"/x", nil, 0o600); err == nil {
			t.Fatal("a regular file was created in a bpffs")
		}
		if err := os.Mkdir(dir+"/left", 0o700); err != nil {
			t.Fatal(err)
		}
	})
	if dir == "" {
		t.Skip("skipping: no private bpffs here")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after the test: %v; want it unmounted and removed", dir, err)
	}
}
