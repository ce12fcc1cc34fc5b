package workloads

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/syncord/syncord/numa"
)

// UsableCPUs returns the number of CPUs this process may run on
// (sched_getaffinity(2)).
func UsableCPUs() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return runtime.NumCPU()
	}
	return set.Count()
}

// checkAllowed returns an error naming the first of cpus this process may
// not run on (sched_getaffinity(2)); hint says where the CPU came from
// and remedy what to do.
func checkAllowed(cpus []int, tasks int, hint, remedy string) error {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return fmt.Errorf("sched_getaffinity: %w", err)
	}
	for i, c := range cpus {
		if c < 0 || c >= len(set)*64 || !set.IsSet(c) {
			var avail numa.CPUSet
			for k := 0; k < len(set)*64; k++ {
				if set.IsSet(k) {
					avail = append(avail, k)
				}
			}
			return fmt.Errorf("task %d of %d must run on CPU %d%s, which this process may not use (it may use CPUs %s); %s", i, tasks, c, hint, avail, remedy)
		}
	}
	return nil
}
