package workloads

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// drvResetPeakRSS resets the process's VmHWM (writing 5 to
// /proc/self/clear_refs, Linux 4.0+) so drvPeakRSS measures one run.
func drvResetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// drvPeakRSS returns VmHWM from /proc/self/status in MiB.
func drvPeakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, ln := range bytes.Split(b, []byte("\n")) {
		if f := bytes.Fields(ln); len(f) >= 2 && string(f[0]) == "VmHWM:" {
			kb, _ := strconv.ParseFloat(string(f[1]), 64)
			return kb / 1024
		}
	}
	return -1
}

// BenchmarkLevelDBReadRandom fills a database once (SYNCORD_LEVELDB_NUM
// keys, default 1,000,000, 100-byte values) and runs readrandom at 1 and 2
// threads for SYNCORD_LEVELDB_SECONDS (default 5) each, reporting ops/s and
// the run's peak RSS (VmHWM, reset before each run).
//
//	go test ./workloads -run '^$' -bench LevelDBReadRandom -benchtime 1x
func BenchmarkLevelDBReadRandom(b *testing.B) {
	num, secs := 1000000, 5
	if v, err := strconv.Atoi(os.Getenv("SYNCORD_LEVELDB_NUM")); err == nil && v > 0 {
		num = v
	}
	if v, err := strconv.Atoi(os.Getenv("SYNCORD_LEVELDB_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	dir := filepath.Join(b.TempDir(), "db")
	ops, d, err := LevelDBFillSeq(context.Background(), dir, num, 100)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("fillseq: %d keys in %v (%.0f ops/s)", num, d, ops)
	for _, n := range []int{1, 2} {
		b.Run("threads="+strconv.Itoa(n), func(b *testing.B) {
			if drvOnlineCPUs() < n {
				b.Skipf("skipping: needs %d CPUs", n)
			}
			var res *LevelDBResult
			drvResetPeakRSS()
			for i := 0; i < b.N; i++ {
				res, err = LevelDBReadRandom(context.Background(), LevelDBConfig{Threads: n, Duration: time.Duration(secs) * time.Second,
					Num: num, DB: dir, UseExisting: true, CoresPerSocket: 2})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(res.Total.OpsPerSec, "ops/s")
			b.ReportMetric(res.Total.MicrosPerOp, "micros/op")
			b.ReportMetric(drvPeakRSS(), "peak_rss_MiB")
		})
	}
}
