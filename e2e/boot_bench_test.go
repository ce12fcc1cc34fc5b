package e2e

import (
	"sort"
	"testing"
	"time"
)

// BenchmarkBootToFirstCheck measures QEMU start to the first answered
// guest command (2x2 TCG guest, syncord topology --json), the figure the
// foundation issue targets (< 30 s). Run it with
//
//	SYNCORD_E2E=1 go test ./e2e -run '^$' -bench BootToFirstCheck -benchtime 3x
//
// It reports the median over the iterations as s/boot.
func BenchmarkBootToFirstCheck(b *testing.B) {
	Binaries(b)
	Kernel(b)
	var times []time.Duration
	for b.Loop() {
		start := time.Now()
		vm := Boot(b, Config{Sockets: 2, Cores: 2})
		vm.MustRun(b, "syncord topology --json >/dev/null")
		times = append(times, time.Since(start))
		vm.shutdown(b)
		vm.cmd = nil // shut down already; the Cleanup registered by Boot finds nothing left
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	b.ReportMetric(times[len(times)/2].Seconds(), "s/boot")
	b.ReportMetric(0, "ns/op")
}
