package contention

import (
	"context"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/internal/testutil"
	"github.com/syncord/syncord/workloads/fxmark"
)

// BenchmarkOverheadMWRL measures FxMark MWRL works/s at 2 tasks without a
// profiler, with this profiler attached (with call stacks, its costliest
// mode) and, where Debian's perf is installed, under `perf lock record -a`
// (perf lock contention's tracepoint mode: Debian's perf is built without
// BUILD_BPF_SKEL, so `perf lock contention -b` is not available). The
// three alternate in rounds so that drift on a shared machine hits all of
// them; the medians of the per-round ratios over the baseline are
// reported (target for ours: >= 0.97). Run once with:
//
//	go test ./bpf/contention/ -run '^$' -bench OverheadMWRL -benchtime 1x
func BenchmarkOverheadMWRL(b *testing.B) {
	testutil.RequireBPF(b)
	if err := Check(pseudofs.DefaultRoots()); err != nil {
		b.Skipf("skipping: %v", err)
	}
	const (
		d      = time.Second
		rounds = 15
	)
	mwrl := func() float64 {
		b.Helper()
		r, err := fxmark.Run(context.Background(), fxmark.Config{Type: "MWRL", NCore: 2,
			Duration: d, Root: b.TempDir(), CoresPerSocket: 2})
		if err != nil {
			b.Fatal(err)
		}
		return r.WorksPerSec
	}
	withProfiler := func() float64 {
		p, err := Start(Options{Callers: true})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		return mwrl()
	}
	perf, perfErr := exec.LookPath("perf")
	withPerf := func() float64 {
		out := filepath.Join(b.TempDir(), "perf.data")
		cmd := exec.Command(perf, "lock", "record", "-a", "-o", out, "--", "sleep", "2")
		if err := cmd.Start(); err != nil {
			b.Fatalf("perf lock record: %v", err)
		}
		time.Sleep(500 * time.Millisecond) // let perf open its events
		ops := mwrl()
		if err := cmd.Wait(); err != nil {
			b.Fatalf("perf lock record: %v", err)
		}
		return ops
	}
	median := func(v []float64) float64 {
		sort.Float64s(v)
		return v[len(v)/2]
	}
	for i := 0; i < b.N; i++ {
		var ours, perfs, bases []float64
		for r := 0; r < rounds; r++ {
			base := mwrl()
			bases = append(bases, base)
			ours = append(ours, withProfiler()/base)
			if perfErr == nil {
				perfs = append(perfs, withPerf()/base)
			}
		}
		b.ReportMetric(median(bases), "base-works/s")
		b.ReportMetric(median(ours), "contention/base")
		b.Logf("MWRL 2 tasks, %d rounds of %v: baseline %.0f works/s; profiler/baseline %.3f", rounds, d, bases, ours)
		if len(perfs) > 0 {
			b.ReportMetric(median(perfs), "perf-lock-record/base")
			b.Logf("perf lock record/baseline %.3f", perfs)
		}
	}
}
