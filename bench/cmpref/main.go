// Command cmpref compares the Go workload drivers with minimal C loops
// doing the same system calls (bench/ref.c, built here with gcc): for each
// test and task count it runs C and Go alternately, several rounds, and
// prints the median ops/s of each and the median of the per-round Go/C
// ratios, for wall-clock ops/s, for operations per second of process CPU
// time (every thread of the driver, runtime included) and per second of
// the task threads' CPU time (the cost of one hot-loop iteration). The CPU
// ratios are what other load on the machine does not distort.
//
//	go run ./bench/cmpref [-rounds 3] [-secs 3] [-tests lock1,page_fault1,futex1,MWRL] [-tasks 1,2]
//
// will-it-scale tests are measured over -secs after one warmup second
// (the Go driver's 1 s samples, the C loop's counters); MWRL is fxmark's
// works/sec over a -secs run, in a private directory on /dev/shm.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/syncord/syncord/workloads"
)

// result is one run: wall-clock ops/s, ops per second of process CPU
// time and ops per second of the task threads' CPU time.
type result struct{ wall, cpu, tcpu float64 }

func cpuNow() float64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts)
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}

func main() {
	rounds := flag.Int("rounds", 3, "alternating rounds per configuration")
	secs := flag.Int("secs", 3, "measured seconds per run")
	testList := flag.String("tests", "lock1,page_fault1,futex1,MWRL", "tests to compare")
	taskList := flag.String("tasks", "1,2", "task counts")
	cps := flag.Int("n", 0, "cores per socket (default: online CPUs)")
	src := flag.String("src", "", "path of ref.c (default: next to this package)")
	flag.Parse()
	if err := run(*rounds, *secs, strings.Split(*testList, ","), *taskList, *cps, *src); err != nil {
		fmt.Fprintln(os.Stderr, "cmpref:", err)
		os.Exit(1)
	}
}

func run(rounds, secs int, tests []string, taskList string, cps int, src string) error {
	var tasks []int
	for _, f := range strings.Split(taskList, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return fmt.Errorf("bad -tasks %q", taskList)
		}
		tasks = append(tasks, n)
	}
	online, err := workloads.OnlineCPUs("")
	if err != nil {
		return err
	}
	if cps == 0 {
		cps = online.Len()
	}
	if src == "" {
		_, file, _, _ := runtime.Caller(0)
		src = filepath.Join(filepath.Dir(file), "..", "ref.c")
	}
	tmp, err := os.MkdirTemp("", "cmpref.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "ref")
	if out, err := exec.Command("gcc", "-O2", "-Wall", "-pthread", "-o", bin, src).CombinedOutput(); err != nil {
		return fmt.Errorf("gcc %s: %v\n%s", src, err, out)
	}
	shm := "/dev/shm"
	if st, err := os.Stat(shm); err != nil || !st.IsDir() {
		shm = tmp
	}
	fmt.Printf("# Go driver vs C loop, %d rounds of %d s, alternating; cores per socket %d; %s\n", rounds, secs, cps, runtime.Version())
	fmt.Printf("# Go/C ratios: wall-clock ops/s; ops per process CPU-second; ops per task-thread CPU-second (medians of pair ratios)\n")
	fmt.Printf("%-12s %5s %12s %12s %6s %9s %9s\n", "test", "tasks", "C ops/s", "Go ops/s", "wall", "proc-CPU", "task-CPU")
	for _, test := range tests {
		for _, n := range tasks {
			var cw, gw, rw, rc, rt []float64
			for r := range rounds {
				// Alternate which goes first; the ratio of each adjacent
				// pair cancels most of the machine's drift.
				var c, g result
				var err error
				if r%2 == 0 {
					if c, err = runC(bin, test, n, secs, cps, shm); err == nil {
						g, err = runGo(test, n, secs, cps, shm)
					}
				} else {
					if g, err = runGo(test, n, secs, cps, shm); err == nil {
						c, err = runC(bin, test, n, secs, cps, shm)
					}
				}
				if err != nil {
					return err
				}
				cw, gw, rw = append(cw, c.wall), append(gw, g.wall), append(rw, g.wall/c.wall)
				rc, rt = append(rc, g.cpu/c.cpu), append(rt, g.tcpu/c.tcpu)
			}
			fmt.Printf("%-12s %5d %12.0f %12.0f %6.3f %9.3f %9.3f  (task-CPU pair ratios %s)\n", test, n,
				median(cw), median(gw), median(rw), median(rc), median(rt), fmtRatios(rt))
		}
	}
	return nil
}

func fmtRatios(v []float64) string {
	var parts []string
	for _, r := range v {
		parts = append(parts, strconv.FormatFloat(r, 'f', 2, 64))
	}
	return strings.Join(parts, " ")
}

func median(v []float64) float64 {
	v = append([]float64(nil), v...)
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func runC(bin, test string, n, secs, cps int, shm string) (result, error) {
	args := []string{test, strconv.Itoa(n), strconv.Itoa(secs), strconv.Itoa(cps)}
	if test == "MWRL" {
		root, err := os.MkdirTemp(shm, "cmpref-mwrl.")
		if err != nil {
			return result{}, err
		}
		defer os.RemoveAll(root)
		args = append(args, root)
	}
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		return result{}, fmt.Errorf("%s %s: %v", bin, strings.Join(args, " "), err)
	}
	var r result
	if _, err := fmt.Sscanf(string(out), "%g %g %g", &r.wall, &r.cpu, &r.tcpu); err != nil {
		return result{}, fmt.Errorf("%s output %q: %v", bin, out, err)
	}
	return r, nil
}

func runGo(test string, n, secs, cps int, shm string) (result, error) {
	ctx := context.Background()
	c0 := cpuNow()
	if test == "MWRL" {
		root, err := os.MkdirTemp(shm, "cmpref-mwrl.")
		if err != nil {
			return result{}, err
		}
		defer os.RemoveAll(root)
		res, err := workloads.RunFxMark(ctx, workloads.FxOptions{Type: "MWRL", NCore: n, Duration: time.Duration(secs) * time.Second,
			Root: root, CoresPerSocket: cps})
		if err != nil {
			return result{}, err
		}
		var tc float64
		for _, w := range res.Workers {
			tc += w.CPUSeconds
		}
		return result{wall: res.WorksPerSec, cpu: res.Works / (cpuNow() - c0), tcpu: res.Works / tc}, nil
	}
	// One 1 s warmup sample, then secs measured 1 s samples.
	res, err := workloads.RunWillItScale(ctx, workloads.WISOptions{Test: test, Tasks: n, Seconds: secs, CoresPerSocket: cps, Warmup: -1}, nil)
	if err != nil {
		return result{}, err
	}
	var ops uint64
	var tc float64
	for i := range res.TaskOps {
		ops += res.TaskOps[i]
		tc += res.TaskCPU[i]
	}
	return result{wall: float64(res.Average.Total), cpu: float64(ops) / (cpuNow() - c0), tcpu: float64(ops) / tc}, nil
}
