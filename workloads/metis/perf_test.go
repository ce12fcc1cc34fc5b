package metis

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/syncord/syncord/workloads"
	"github.com/syncord/syncord/workloads/internal/peakrss"
)

// BenchmarkMetisWrmem runs wrmem at 1 and 2 cores (-s from
// SYNCORD_METIS_MB, default 256) and reports the input throughput
// (input_MB/s over Real:), the phase times and the run's peak RSS (VmHWM,
// reset before each run).
//
//	go test ./workloads/metis -run '^$' -bench MetisWrmem -benchtime 1x
func BenchmarkMetisWrmem(b *testing.B) {
	mb := 256
	if v, err := strconv.Atoi(os.Getenv("SYNCORD_METIS_MB")); err == nil && v > 0 {
		mb = v
	}
	for _, p := range []int{1, 2} {
		b.Run("cores="+strconv.Itoa(p), func(b *testing.B) {
			if workloads.UsableCPUs() < p {
				b.Skipf("skipping: needs %d CPUs", p)
			}
			var res *Result
			peakrss.Reset()
			for i := 0; i < b.N; i++ {
				var err error
				res, err = Run(context.Background(), Config{Procs: p, InputMB: mb})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(mb)/(float64(res.RealMS)/1000), "input_MB/s")
			b.ReportMetric(float64(res.RealMS), "real_ms")
			b.ReportMetric(float64(res.MapMS), "map_ms")
			b.ReportMetric(float64(res.ReduceMS), "reduce_ms")
			b.ReportMetric(peakrss.MiB(), "peak_rss_MiB")
			b.ReportMetric(float64(res.MinorFaults), "minflt")
		})
	}
}
