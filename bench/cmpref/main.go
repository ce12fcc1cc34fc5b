// Command cmpref compares the Go workload drivers with C, running both
// alternately in pairs (C first in odd pairs, Go first in even ones: the
// ratio of a pair cancels most slow drift of the machine) and printing the
// medians and the median of the per-pair Go/C ratios, with the load
// average seen during each row.
//
// Default mode: minimal C loops doing the same system calls (bench/ref.c,
// built here with gcc; what CI can run), against the drivers called in
// this process; ratios of wall-clock ops/s, of operations per second of
// process CPU time (every thread of the driver, runtime included) and per
// second of the task threads' CPU time (the cost of one hot-loop
// iteration). The CPU ratios are what other load on the machine does not
// distort.
//
//	go run ./bench/cmpref [-rounds 3] [-secs 3] [-tests lock1,page_fault1,futex1,MWRL] [-tasks 1,2]
//
// will-it-scale tests are measured over -secs after one warmup second
// (the Go driver's 1 s samples, the C loop's counters); MWRL is fxmark's
// works/sec over a -secs run, in a private directory on /dev/shm.
//
// Artifact mode (-artifact PATH, a SynCord checkout or a git mirror of
// rs3lab/SynCord): the artifact's own will-it-scale, built with its
// Makefile (-O2 -g -pg), run as ./build/<t>_threads -t N -s SECS -n CPS,
// against the syncord binary (built from this module, or -syncord BIN)
// run as syncord bench will-it-scale <t> -t N -s SECS -n CPS; MWRL is the
// artifact's fxmark against syncord bench fxmark. Ratios of the printed
// ops/s (the average line, works/sec) and of all samples' operations per
// second of process CPU time (rusage of each command).
//
//	go run ./bench/cmpref -artifact /path/to/SynCord -rounds 7 -secs 5
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/syncord/syncord/workloads"
	"github.com/syncord/syncord/workloads/fxmark"
	"github.com/syncord/syncord/workloads/wis"
)

// result is one run: wall-clock ops/s, ops per second of process CPU
// time and ops per second of the task threads' CPU time; in artifact
// mode timed is the measured samples' ops over the time their lines took
// to arrive (will-it-scale's samples are sleep(1) plus the time to wake
// and print, the Go driver's are 1 s on average) and share the CPU
// seconds the process got per second it ran.
type result struct{ wall, cpu, tcpu, timed, share float64 }

func cpuNow() float64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts)
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}

func main() {
	rounds := flag.Int("rounds", 3, "alternating rounds (C/Go pairs) per configuration")
	secs := flag.Int("secs", 3, "measured seconds per run (will-it-scale's -s, fxmark's --duration)")
	testList := flag.String("tests", "lock1,page_fault1,futex1,MWRL", "tests to compare")
	taskList := flag.String("tasks", "1,2", "task counts")
	cps := flag.Int("n", 0, "cores per socket (default: online CPUs)")
	src := flag.String("src", "", "path of ref.c (default: next to this package)")
	art := flag.String("artifact", "", "compare with the artifact's own C: a SynCord checkout or git directory")
	syncordBin := flag.String("syncord", "", "with -artifact: the syncord binary (default: built from this module)")
	flag.Parse()
	// Interrupted, the run in progress is killed and the temp directory
	// (the builds, MWRL's roots) removed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *rounds, *secs, strings.Split(*testList, ","), *taskList, *cps, *src, *art, *syncordBin); err != nil {
		fmt.Fprintln(os.Stderr, "cmpref:", err)
		os.Exit(1)
	}
}

// load1 is the 1-minute load average.
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return f
}

func run(ctx context.Context, rounds, secs int, tests []string, taskList string, cps int, src, art, syncordBin string) error {
	var tasks []int
	for _, f := range strings.Split(taskList, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return fmt.Errorf("bad -tasks %q", taskList)
		}
		tasks = append(tasks, n)
	}
	if rounds <= 0 || secs <= 0 {
		return fmt.Errorf("-rounds and -secs must be > 0")
	}
	online, err := workloads.OnlineCPUs("")
	if err != nil {
		return err
	}
	if cps == 0 {
		cps = online.Len()
	}
	tmp, err := os.MkdirTemp("", "cmpref.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	shm := "/dev/shm"
	if st, err := os.Stat(shm); err != nil || !st.IsDir() {
		shm = tmp
	}
	// runOne runs one side of a pair.
	var runOne func(goSide bool, test string, n int) (result, error)
	cpuCols := "proc-CPU task-CPU"
	if art != "" {
		a, err := buildArtifact(ctx, art, tmp, tests, cps, syncordBin)
		if err != nil {
			return err
		}
		runOne = func(goSide bool, test string, n int) (result, error) {
			return a.run(ctx, goSide, test, n, secs, cps, shm)
		}
		cpuCols = "proc-CPU    timed   share"
		fmt.Printf("# syncord (%s) vs the artifact's C (%s), %d alternating pairs of -s %d; cores per socket %d\n", runtime.Version(), art, rounds, secs, cps)
		fmt.Printf("# Go/C: medians of pair ratios of the printed ops/s (wall), of all samples' ops per process CPU-second, and of\n")
		fmt.Printf("# the measured samples' ops per second between the arrivals of their lines (timed; fxmark: its works/sec),\n")
		fmt.Printf("# and of the CPU the process got per second it ran (share; wall ~ proc-CPU x share)\n")
	} else {
		if src == "" {
			_, file, _, _ := runtime.Caller(0)
			src = filepath.Join(filepath.Dir(file), "..", "ref.c")
		}
		bin := filepath.Join(tmp, "ref")
		if out, err := exec.Command("gcc", "-O2", "-Wall", "-pthread", "-o", bin, src).CombinedOutput(); err != nil {
			return fmt.Errorf("gcc %s: %v\n%s", src, err, out)
		}
		runOne = func(goSide bool, test string, n int) (result, error) {
			if goSide {
				return runGo(ctx, test, n, secs, cps, shm)
			}
			return runC(ctx, bin, test, n, secs, cps, shm)
		}
		fmt.Printf("# Go driver vs C loop, %d rounds of %d s, alternating; cores per socket %d; %s\n", rounds, secs, cps, runtime.Version())
		fmt.Printf("# Go/C ratios: wall-clock ops/s; ops per process CPU-second; ops per task-thread CPU-second (medians of pair ratios)\n")
	}
	fmt.Printf("%-12s %5s %12s %12s %6s %s  %s\n", "test", "tasks", "C ops/s", "Go ops/s", "wall", cpuCols, "(wall pair ratios; load avg)")
	for _, test := range tests {
		for _, n := range tasks {
			var cw, gw, rw, rc, rt, rs, rh []float64
			lmin, lmax := load1(), load1()
			for r := range rounds {
				// Alternate which goes first; the ratio of each adjacent
				// pair cancels most of the machine's drift.
				var c, g result
				var err error
				if r%2 == 0 {
					if c, err = runOne(false, test, n); err == nil {
						g, err = runOne(true, test, n)
					}
				} else {
					if g, err = runOne(true, test, n); err == nil {
						c, err = runOne(false, test, n)
					}
				}
				if err != nil {
					return err
				}
				l := load1()
				lmin, lmax = min(lmin, l), max(lmax, l)
				cw, gw, rw = append(cw, c.wall), append(gw, g.wall), append(rw, g.wall/c.wall)
				rc, rt = append(rc, g.cpu/c.cpu), append(rt, g.tcpu/c.tcpu)
				rh = append(rh, g.share/c.share)
				if g.timed > 0 && c.timed > 0 {
					rs = append(rs, g.timed/c.timed)
				}
			}
			timed := "       -"
			if len(rs) > 0 {
				timed = fmt.Sprintf("%8.3f", median(rs))
			}
			cpu := fmt.Sprintf("%8.3f %s %7.3f", median(rc), timed, median(rh))
			if art == "" {
				cpu = fmt.Sprintf("%8.3f %8.3f", median(rc), median(rt))
			}
			fmt.Printf("%-12s %5d %12.0f %12.0f %6.3f %s  (%s; load %.2f-%.2f)\n", test, n,
				median(cw), median(gw), median(rw), cpu, fmtRatios(rw), lmin, lmax)
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

func runC(ctx context.Context, bin, test string, n, secs, cps int, shm string) (result, error) {
	args := []string{test, strconv.Itoa(n), strconv.Itoa(secs), strconv.Itoa(cps)}
	if test == "MWRL" {
		root, err := os.MkdirTemp(shm, "cmpref-mwrl.")
		if err != nil {
			return result{}, err
		}
		defer os.RemoveAll(root)
		args = append(args, root)
	}
	out, err := exec.CommandContext(ctx, bin, args...).Output()
	if err != nil {
		return result{}, fmt.Errorf("%s %s: %v", bin, strings.Join(args, " "), err)
	}
	var r result
	if _, err := fmt.Sscanf(string(out), "%g %g %g", &r.wall, &r.cpu, &r.tcpu); err != nil {
		return result{}, fmt.Errorf("%s output %q: %v", bin, out, err)
	}
	return r, nil
}

func runGo(ctx context.Context, test string, n, secs, cps int, shm string) (result, error) {
	c0 := cpuNow()
	if test == "MWRL" {
		root, err := os.MkdirTemp(shm, "cmpref-mwrl.")
		if err != nil {
			return result{}, err
		}
		defer os.RemoveAll(root)
		res, err := fxmark.Run(ctx, fxmark.Config{Type: "MWRL", NCore: n, Duration: time.Duration(secs) * time.Second,
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
	res, err := wis.Run(ctx, wis.Config{Test: test, Tasks: n, Duration: time.Duration(secs) * time.Second, CoresPerSocket: cps, Warmup: -1})
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
