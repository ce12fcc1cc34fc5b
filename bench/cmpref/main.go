// Command cmpref compares the Go workload drivers with minimal C loops
// doing the same system calls (bench/ref.c, built here with gcc): for each
// test and task count it runs C and Go alternately, several rounds, and
// prints the median ops/s of each and the median of the per-round Go/C
// ratios.
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

	"github.com/syncord/syncord/workloads"
)

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
	fmt.Printf("%-12s %5s %14s %14s %7s\n", "test", "tasks", "C ops/s", "Go ops/s", "Go/C (median of pair ratios)")
	for _, test := range tests {
		for _, n := range tasks {
			var cs, gs, rs []float64
			for r := range rounds {
				// Alternate which goes first; the ratio of each adjacent
				// pair cancels most of the machine's drift.
				var c, g float64
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
				cs, gs, rs = append(cs, c), append(gs, g), append(rs, g/c)
			}
			fmt.Printf("%-12s %5d %14.0f %14.0f %7.3f  (pair ratios %s)\n", test, n, median(cs), median(gs), median(rs), fmtRatios(rs))
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

func runC(bin, test string, n, secs, cps int, shm string) (float64, error) {
	args := []string{test, strconv.Itoa(n), strconv.Itoa(secs), strconv.Itoa(cps)}
	if test == "MWRL" {
		root, err := os.MkdirTemp(shm, "cmpref-mwrl.")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(root)
		args = append(args, root)
	}
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		return 0, fmt.Errorf("%s %s: %v", bin, strings.Join(args, " "), err)
	}
	return strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
}

func runGo(test string, n, secs, cps int, shm string) (float64, error) {
	ctx := context.Background()
	if test == "MWRL" {
		root, err := os.MkdirTemp(shm, "cmpref-mwrl.")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(root)
		res, err := workloads.RunFxMark(ctx, workloads.FxOptions{Type: "MWRL", NCore: n, Duration: time.Duration(secs) * time.Second,
			Root: root, CoresPerSocket: cps})
		if err != nil {
			return 0, err
		}
		return res.WorksPerSec, nil
	}
	// One 1 s warmup sample, then secs measured 1 s samples.
	res, err := workloads.RunWillItScale(ctx, workloads.WISOptions{Test: test, Tasks: n, Seconds: secs, CoresPerSocket: cps, Warmup: -1}, nil)
	if err != nil {
		return 0, err
	}
	return float64(res.Average.Total), nil
}
