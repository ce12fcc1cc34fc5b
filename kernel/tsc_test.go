package kernel

import (
	"strings"
	"testing"
)

func TestTSCFromLog(t *testing.T) {
	tests := []struct {
		name string
		log  string
		hz   float64
		ok   bool
	}{
		{"refined wins", "<6>[    0.000000] tsc: Fast TSC calibration using PIT\n<6>[    0.000000] tsc: Detected 2495.912 MHz processor\n<6>[    1.234567] tsc: Refined TSC clocksource calibration: 2496.001 MHz\n<6>[    1.3] clocksource: Switched to clocksource tsc\n", 2496.001e6, true},
		{"detected only", "<6>[    0.000000] tsc: Detected 3000.000 MHz processor\n", 3000e6, true},
		{"detected TSC", "[    0.0] tsc: Detected 2100.000 MHz TSC\n", 2100e6, true},
		{"none (wrapped log)", "<6>[ 9999.0] EXT4-fs (vda): mounted filesystem\n", 0, false},
		{"last refinement", "tsc: Refined TSC clocksource calibration: 1000.000 MHz\ntsc: Refined TSC clocksource calibration: 1000.500 MHz\n", 1000.5e6, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hz, line, ok := TSCFromLog([]byte(tt.log))
			if ok != tt.ok || hz != tt.hz || (ok && !strings.HasPrefix(line, "tsc: ")) || strings.Contains(line, "\n") {
				t.Fatalf("TSCFromLog = %v, %q, %v; want %v, %v", hz, line, ok, tt.hz, tt.ok)
			}
		})
	}
}
