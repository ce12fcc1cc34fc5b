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
//	stop := workloads.Report(ctx, run, time.Second, func(elapsed time.Duration, counts []uint64) {
//		fmt.Fprintf(progress, ...)       // a status line a second, from a goroutine
//	})
//	stop()                              // waits: no line after it returned
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
// Each driver is a package of its own with one shape (as cilium's link/
// family): Run(ctx, Config) (*Result, error) runs it on this engine, and
// (*Result).WriteText(w) writes the artifact's output, byte for byte (the
// part it prints at the end); every Result is also JSON. What a driver
// prints while it runs goes to its Config.Progress (nil: none): the
// artifact's own lines where the artifact prints as it goes (wis: the
// sample lines; metis: "Starting/Finished mapreduce"), status lines
// otherwise (leveldb: the fill; the sweeps: one line a point; fxmark and
// xdir, whose artifacts print nothing while one run goes: one status line
// a second from the workers' counters, through Report). A run inside a
// sweep writes no lines of its own, so a sweep's Progress is its point
// lines only. Durations are time.Duration.
//
//   - wis: will-it-scale's threads and _processes builds ("done",
//     "testcase:", "warmup", the sample lines, "measurement",
//     "average:T:F:S"); wis.Sweep is runtest.py.
//   - fxmark: the SynCord fxmark, its report lines; fxmark.Sweep is
//     run-fxmark.py and writes the plotter's .dat rows.
//   - xdir: xDir-rename's bully/victim renames (task i on CPU i, through
//     Config.CPUs), and its directory preparation.
//   - metis: Metis wrmem on a pool of engine tasks.
//   - leveldb: db_bench readrandom on goleveldb.
//
// Every driver checks its CPUs the same way, in Launch: each exists, is
// online, and is one this process may run on.
package workloads
