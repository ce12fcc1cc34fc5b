package workloads

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// drvPinCPU locks the calling goroutine to its OS thread and binds that
// thread to cpu with sched_setaffinity(2). The thread stays locked: the
// caller's goroutine must end (or call runtime.UnlockOSThread) when done,
// and since it never unlocks, the runtime discards the thread with the
// goroutine, so no other goroutine inherits the affinity.
//
// The xdir, metis and leveldb drivers use it until they move onto the shared
// engine's pinning.
func drvPinCPU(cpu int) error {
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Zero()
	if cpu < 0 || cpu >= len(set)*64 {
		return fmt.Errorf("pin thread to CPU %d: out of range", cpu)
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("sched_setaffinity to CPU %d: %w (is CPU %d online and in this process's cpuset? see /sys/devices/system/cpu/online)", cpu, err, cpu)
	}
	return nil
}

// drvOnlineCPUs returns the number of CPUs this process may run on
// (sched_getaffinity(2)).
func drvOnlineCPUs() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return runtime.NumCPU()
	}
	return set.Count()
}
