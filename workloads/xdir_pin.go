package workloads

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// The xdir, metis and leveldb drivers pin their threads with the engine's
// PinThread (engine.go).

// drvOnlineCPUs returns the number of CPUs this process may run on
// (sched_getaffinity(2)).
func drvOnlineCPUs() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return runtime.NumCPU()
	}
	return set.Count()
}

// drvCheckCPUs returns an error naming the first of cpus this process may
// not run on (sched_getaffinity(2)), before any thread is started.
func drvCheckCPUs(what, hint string, cpus []int) error {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return fmt.Errorf("%s: sched_getaffinity: %w", what, err)
	}
	for i, c := range cpus {
		if c < 0 || c >= len(set)*64 || !set.IsSet(c) {
			var avail []int
			for k := 0; k < len(set)*64; k++ {
				if set.IsSet(k) {
					avail = append(avail, k)
				}
			}
			return fmt.Errorf("%s: task %d must run on CPU %d, which this process may not use (it may use CPUs %v); %s", what, i, c, avail, hint)
		}
	}
	return nil
}
