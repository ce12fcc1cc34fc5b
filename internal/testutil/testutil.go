// Package testutil holds what the privileged tests of several packages
// share: RequireBPF skips a test that needs BPF on the error the kernel
// actually returns (like mdlayher's SkipDeviceError and cilium/ebpf's
// SkipIfNotSupported), never by matching text or by the effective uid
// alone; PrivateBPFFS gives a test its own bpffs and removes it after.
//
// The e2e VM runs these tests too (e2e.TestPrivilegedPackagesInGuest):
// there they run as root on the SynCord 5.4 and Debian kernels.
package testutil

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// RequireBPF skips tb unless this process can create a BPF map: it creates
// a one-entry array and skips on EPERM or EACCES (not root, no CAP_BPF, or
// unprivileged BPF off) and on a kernel without the bpf(2) system call,
// naming the error and the remedy. Any other error fails the test.
func RequireBPF(tb testing.TB) {
	tb.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err == nil {
		m.Close()
		return
	}
	if skip, why := bpfSkip(err); skip {
		tb.Skipf("skipping: cannot create a BPF map: %v (%s)", err, why)
	}
	tb.Fatalf("probe BPF: create a map: %v", err)
}

// bpfSkip tells whether err from the kernel means "not here" rather than
// "broken", and the remedy.
func bpfSkip(err error) (bool, string) {
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return true, "needs root or CAP_BPF and CAP_SYS_ADMIN: run the tests as root"
	case errors.Is(err, unix.ENOSYS), errors.Is(err, ebpf.ErrNotSupported):
		return true, "the kernel has no bpf(2): needs CONFIG_BPF_SYSCALL=y"
	}
	return false, ""
}

// PrivateBPFFS mounts a bpffs of the test's own at <TempDir>/bpffs and,
// when the test ends, removes what is left in it and unmounts it. It
// skips on EPERM or ENODEV from mount(2) (not root; no bpffs in the
// kernel), naming the error; any other error fails the test.
func PrivateBPFFS(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "bpffs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	if err := unix.Mount("bpffs", dir, "bpf", 0, "mode=0700"); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			tb.Skipf("skipping: cannot mount a private bpffs at %s: %v (needs CAP_SYS_ADMIN: run the tests as root)", dir, err)
		}
		if errors.Is(err, unix.ENODEV) {
			tb.Skipf("skipping: cannot mount a private bpffs at %s: %v (the kernel has no bpffs: needs CONFIG_BPF_SYSCALL=y)", dir, err)
		}
		tb.Fatalf("mount a private bpffs at %s: %v", dir, err)
	}
	tb.Cleanup(func() {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
		if err := unix.Unmount(dir, 0); err != nil {
			tb.Errorf("unmount private bpffs %s: %v", dir, err)
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}
