package leveldb

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/syncord/syncord/workloads"
	"github.com/syncord/syncord/workloads/internal/peakrss"
)

// BenchmarkLevelDBReadRandom fills a database once (SYNCORD_LEVELDB_NUM
// keys, default 1,000,000, 100-byte values) and runs readrandom at 1 and 2
// threads for SYNCORD_LEVELDB_SECONDS (default 5) each, reporting ops/s and
// the run's peak RSS (VmHWM, reset before each run).
//
//	go test ./workloads/leveldb -run '^$' -bench LevelDBReadRandom -benchtime 1x
func BenchmarkLevelDBReadRandom(b *testing.B) {
	num, secs := 1000000, 5
	if v, err := strconv.Atoi(os.Getenv("SYNCORD_LEVELDB_NUM")); err == nil && v > 0 {
		num = v
	}
	if v, err := strconv.Atoi(os.Getenv("SYNCORD_LEVELDB_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	dir := filepath.Join(b.TempDir(), "db")
	ops, d, err := FillSeq(context.Background(), dir, num, 100)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("fillseq: %d keys in %v (%.0f ops/s)", num, d, ops)
	for _, n := range []int{1, 2} {
		b.Run("threads="+strconv.Itoa(n), func(b *testing.B) {
			if workloads.UsableCPUs() < n {
				b.Skipf("skipping: needs %d CPUs", n)
			}
			var res *Result
			peakrss.Reset()
			for i := 0; i < b.N; i++ {
				res, err = Run(context.Background(), Config{Threads: n, Duration: time.Duration(secs) * time.Second,
					Num: num, DB: dir, UseExisting: true, CoresPerSocket: 2})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(res.Total.OpsPerSec, "ops/s")
			b.ReportMetric(res.Total.MicrosPerOp, "micros/op")
			b.ReportMetric(peakrss.MiB(), "peak_rss_MiB")
		})
	}
}
