package xdir

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/syncord/syncord/workloads"
	"golang.org/x/sys/unix"
)

// BenchmarkXDirVsC compares the Go xdir driver with the minimal C loop in
// bench/xdir/xdir_ref.c (built here with gcc -O2), same directories, same
// 2 tasks (1 bully, 1 victim), run alternately C, Go, C, Go, ... It reports
// go_ops/s, c_ops/s and go/c (target >= 1.00, floor 0.95), and
// go/c_per_cpu_s: the same over ops per CPU-second of the workers (the C
// process's user+system time, the Go process's, runtime threads included),
// which
// does not depend on how much CPU a loaded machine's scheduler hands out.
//
//	go test ./workloads/xdir -run '^$' -bench XDirVsC -benchtime 1x
//
// SYNCORD_XDIR_FILES (default 20000) sets the dirty directory's size,
// SYNCORD_XDIR_SECONDS (default 3) each run's length, SYNCORD_XDIR_ROUNDS
// (default 1) the number of C/Go pairs, SYNCORD_XDIR_DIR where to prepare
// (default a temporary directory).
func BenchmarkXDirVsC(b *testing.B) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		b.Skip("skipping: gcc not found (apt-get install gcc)")
	}
	if c := workloads.UsableCPUs(); c < 2 {
		b.Skipf("skipping: needs 2 CPUs, have %d", c)
	}
	envInt := func(k string, def int) int {
		if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
			return v
		}
		return def
	}
	files, secs, rounds := envInt("SYNCORD_XDIR_FILES", 20000), envInt("SYNCORD_XDIR_SECONDS", 3), envInt("SYNCORD_XDIR_ROUNDS", 1)
	tmp := b.TempDir()
	ref := filepath.Join(tmp, "xdir_ref")
	if out, err := exec.Command(gcc, "-O2", "-pthread", "-o", ref, "../bench/xdir/xdir_ref.c").CombinedOutput(); err != nil {
		b.Fatalf("gcc: %v: %s", err, out)
	}
	dir := os.Getenv("SYNCORD_XDIR_DIR")
	if dir == "" {
		dir = tmp
	}
	p, err := Prepare("/proc", dir, files)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d files in %s on %s %s (dir_index=%v, superblock read=%v)", files, p.DstDirty, p.FS.FSType, p.FS.Source, p.FS.DirIndex, p.FS.Superblock)
	opsRE := regexp.MustCompile(`(?m)^Ops/sec: ([0-9.]+)$`)
	var goSum, cSum, goCPU, cCPU, goOps, cOps float64
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		cmd := exec.Command(ref, p.Src, p.DstDirty, p.Dst, strconv.Itoa(secs), "1", "1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("xdir_ref: %v: %s", err, out)
		}
		cpuC := (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
		m := opsRE.FindSubmatch(out)
		if m == nil {
			b.Fatalf("xdir_ref output: %s", out)
		}
		c, _ := strconv.ParseFloat(string(m[1]), 64)
		var ru0, ru1 unix.Rusage
		unix.Getrusage(unix.RUSAGE_SELF, &ru0)
		res, err := Run(context.Background(), Config{Src: p.Src, DstDirty: p.DstDirty, Dst: p.Dst,
			Duration: time.Duration(secs) * time.Second, Bullies: 1, Victims: 1})
		if err != nil {
			b.Fatal(err)
		}
		unix.Getrusage(unix.RUSAGE_SELF, &ru1)
		cpuGo := float64(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) / 1e9
		goPerCPU := res.OpsPerSec * float64(secs) / cpuGo
		b.Logf("round %d: C %.0f ops/s (%.0f per CPU-s), Go %.0f ops/s (%.0f per CPU-s), Go/C %.3f (per CPU-s %.3f)", r,
			c, c*float64(secs)/cpuC, res.OpsPerSec, goPerCPU, res.OpsPerSec/c, goPerCPU/(c*float64(secs)/cpuC))
		cSum += c
		goSum += res.OpsPerSec
		cOps += c * float64(secs)
		cCPU += cpuC
		goOps += res.OpsPerSec * float64(secs)
		goCPU += cpuGo
	}
	b.StopTimer()
	b.ReportMetric((goOps/goCPU)/(cOps/cCPU), "go/c_per_cpu_s")
	b.ReportMetric(goSum/float64(rounds), "go_ops/s")
	b.ReportMetric(cSum/float64(rounds), "c_ops/s")
	b.ReportMetric(goSum/cSum, "go/c")
}
