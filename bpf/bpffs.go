package bpf

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// IsBPFFS reports whether dir is the root of, or inside, a mounted bpffs
// (statfs(2) f_type == BPF_FS_MAGIC).
func IsBPFFS(dir string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return uint32(st.Type) == unix.BPF_FS_MAGIC, nil
}

// EnsureBPFFS mounts a bpffs at dir (creating the directory) unless one is
// there already (statfs(2) f_type BPF_FS_MAGIC), and reports whether it
// mounted one now. Callers should say so to the user.
func EnsureBPFFS(dir string) (mountedNow bool, err error) {
	ok, err := IsBPFFS(dir)
	if err != nil {
		return false, err
	}
	if ok {
		return false, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("mount bpffs at %s: %w", dir, err)
	}
	if err := unix.Mount("bpffs", dir, "bpf", 0, "mode=0700"); err != nil {
		return false, fmt.Errorf("mount bpffs at %s: %w (needs CAP_SYS_ADMIN and CONFIG_BPF_SYSCALL)", dir, err)
	}
	return true, nil
}
