package xdir

import (
	"math"
	"testing"
	"time"

	"github.com/syncord/syncord/kernel"
)

// TestMeasureTSC: the RDTSC measurement agrees with the kernel's own
// calibration when the log can be read here (within 2%), and is in a
// plausible range otherwise.
func TestMeasureTSC(t *testing.T) {
	if !haveRDTSC {
		t.Skip("skipping: no RDTSC on this architecture")
	}
	hz, err := measureTSC(100 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if hz < 1e8 || hz > 1e10 {
		t.Fatalf("measured TSC %v Hz, outside 0.1-10 GHz", hz)
	}
	log, err := kernel.ReadKernelLog()
	if err != nil {
		t.Logf("measured TSC %.3f MHz; kernel log unreadable (%v), no comparison", hz/1e6, err)
		return
	}
	want, line, ok := kernel.TSCFromLog(log)
	if !ok {
		t.Logf("measured TSC %.3f MHz; no calibration line in the kernel log", hz/1e6)
		return
	}
	if math.Abs(hz-want)/want > 0.02 {
		t.Errorf("measured TSC %.3f MHz, the kernel calibrated %.3f MHz (%s)", hz/1e6, want/1e6, line)
	}
	t.Logf("measured TSC %.3f MHz, kernel %q", hz/1e6, line)
}
