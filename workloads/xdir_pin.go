package workloads

import (
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
