// Package workloads holds the benchmark drivers (will-it-scale tests, the
// runtest sweep, FxMark, xDir-rename, Metis wrmem, LevelDB readrandom) on one
// engine that pins tasks by the SynCord placement rule and samples padded
// per-task counters once a second.
//
// # The engine (engine.go, sampler.go), for every driver
//
//	run, err := workloads.Launch(ctx, workloads.Config{
//		Tasks: n, CoresPerSocket: cps, // placement rule, SYNCORD-ABI.md section 3
//		NoAffinity: false,              // true: run unpinned, keep the roles
//	}, func(t *workloads.Task) error {
//		// on a locked OS thread pinned to t.CPU (sched_setaffinity)
//		fd := setup()                   // files, mappings, buffers: allocate here
//		defer cleanup(fd)
//		if !t.Ready() {                 // start barrier; false: run aborted
//			return nil
//		}
//		stop := t.StopFlag()
//		for !stop.Load() {              // hot loop: raw syscalls, no allocation
//			unix.RawSyscall(...)
//			t.Count.Add(1)               // padded counter, 128 bytes apart
//		}
//		return nil                      // an error stops every task
//	})
//	defer run.Stop()                    // sets the stop flag, waits, restores GOMAXPROCS
//	s := workloads.NewSampler(run, time.Second)
//	sample, err := s.Next(ctx)          // min/max/total/fast/slow of the deltas
//
// Launch checks first (Plan) that every placement CPU exists and is
// online in /sys/devices/system/cpu/online, and returns only when all
// tasks passed the barrier together; t.Fast is the CPU's AMP role
// (numa.IsFast). PinThread pins the calling goroutine's thread on its own.
// Task.StopAll stops the whole run from inside a task; Run.Done is closed
// when every task has returned.
//
// Launch raises GOMAXPROCS to Tasks+2 for the run, so hot loops can use
// unix.RawSyscall (no scheduler hand-off) without starving the sampler;
// calls that can block for long (pipe reads) should use unix.Syscall.
//
// # Drivers
//
// RunWillItScale (wis.go, wis_tests.go) is the artifact's will-it-scale
// threads build, output byte for byte ("done", "testcase:", "warmup", the
// sample lines, "measurement", "average:T:F:S"); RunSweep (sweep.go) is
// runtest.py; RunFxMark (fxmark.go) the SynCord fxmark with its report
// lines and the plotter's .dat rows.
package workloads
