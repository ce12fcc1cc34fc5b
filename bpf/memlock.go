package bpf

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// RemoveMemlock lifts RLIMIT_MEMLOCK (setrlimit(2) to infinity) on kernels
// that charge BPF memory to it: releases before 5.11, which lack memcg-based
// accounting (all SynCord kernels are 5.4). On newer kernels it does
// nothing, as github.com/cilium/ebpf/rlimit.RemoveMemlock does; unlike that
// package, it tells the two apart by the release (uname(2)) instead of
// creating a BPF map in an init function, which every syncord start paid
// for (0.4-2.4 ms of `syncord topology`).
func RemoveMemlock() error {
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil && memcgAccounting(unix.ByteSliceToString(u.Release[:])) {
		return nil
	}
	inf := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &inf); err != nil {
		return fmt.Errorf("failed to set memlock rlimit: %w", err)
	}
	return nil
}

// memcgAccounting reports whether a kernel release ("6.1.0-56-amd64")
// accounts BPF memory to its memory cgroup (5.11 and later) instead of
// RLIMIT_MEMLOCK. An unparsable release counts as an old kernel.
func memcgAccounting(release string) bool {
	var major, minor int
	if n, _ := fmt.Sscanf(release, "%d.%d", &major, &minor); n != 2 {
		return false
	}
	return major > 5 || major == 5 && minor >= 11
}
