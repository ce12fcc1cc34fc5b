package numa

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestCPUFreqRead(t *testing.T) {
	fs := fixture(t, "synth-2x4-cpufreq")
	f, err := fs.CPUFreq(5)
	if err != nil {
		t.Fatal(err)
	}
	want := &CPUFreq{Driver: "acpi-cpufreq", ScalingMin: 1200000, ScalingMax: 2200000, ScalingCur: 2200000,
		CPUInfoMin: 1200000, CPUInfoMax: 2200000, Available: []uint64{2200000, 2000000, 1800000, 1500000, 1200000}}
	if !reflect.DeepEqual(f, want) {
		t.Fatalf("CPUFreq(5) = %+v, want %+v", f, want)
	}
	if f, err := fixture(t, "host").CPUFreq(0); f != nil || err != nil {
		t.Fatalf("CPUFreq on a host without cpufreq = %+v, %v; want nil, nil", f, err)
	}
}

func TestCPUFreqOptionalFiles(t *testing.T) {
	// intel_pstate has no scaling_available_frequencies.
	root := tempFixture(t, "synth-2x4-cpufreq")
	os.Remove(filepath.Join(root, "devices/system/cpu/cpu0/cpufreq/scaling_available_frequencies"))
	writeFile(t, root, "devices/system/cpu/cpu0/cpufreq/scaling_driver", "intel_pstate\n")
	fs, _ := NewFS(root)
	f, err := fs.CPUFreq(0)
	if err != nil || f.Driver != "intel_pstate" || f.Available != nil {
		t.Fatalf("CPUFreq(0) = %+v, %v; want intel_pstate without available frequencies", f, err)
	}
	os.Remove(filepath.Join(root, "devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"))
	if _, err := fs.CPUFreq(0); err == nil || !strings.Contains(err.Error(), "cpu0/cpufreq/cpuinfo_max_freq") {
		t.Fatalf("CPUFreq without cpuinfo_max_freq: error %v, want one naming the file", err)
	}
}

func TestSetCPUFreqMinMax(t *testing.T) {
	root := tempFixture(t, "synth-2x4-cpufreq")
	fs, _ := NewFS(root)
	for _, tc := range []struct {
		name     string
		min, max uint64
	}{
		{"slow half: lower the maximum", 1200000, 1200000},
		{"fast: raise the minimum above the current maximum", 2200000, 2200000},
		{"full range", 1200000, 2200000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := fs.SetCPUFreqMinMax(6, tc.min, tc.max); err != nil {
				t.Fatal(err)
			}
			f, err := fs.CPUFreq(6)
			if err != nil {
				t.Fatal(err)
			}
			if f.ScalingMin != tc.min || f.ScalingMax != tc.max {
				t.Fatalf("after SetCPUFreqMinMax(6, %d, %d): scaling %d-%d", tc.min, tc.max, f.ScalingMin, f.ScalingMax)
			}
		})
	}
	// Other CPUs are untouched.
	if got := readFile(t, root, "devices/system/cpu/cpu5/cpufreq/scaling_max_freq"); got != "2200000\n" {
		t.Errorf("cpu5 scaling_max_freq = %q, changed", got)
	}
}

// TestSetCPUFreqOrder makes one attribute unwritable (a directory in its
// place) to see which of the two writes comes first: the kernel rejects a
// minimum above the maximum, so raising writes the maximum first.
func TestSetCPUFreqOrder(t *testing.T) {
	const dir = "devices/system/cpu/cpu1/cpufreq/"
	for _, tc := range []struct {
		name       string
		curMax     string
		min, max   uint64
		broken     string // attribute replaced by a directory
		wantMaxNow string // scaling_max_freq after the failed call
	}{
		{"raising writes max first", "1500000\n", 2000000, 2200000, "scaling_min_freq", "2200000\n"},
		{"lowering writes min first", "2200000\n", 1200000, 1500000, "scaling_min_freq", "2200000\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := tempFixture(t, "synth-2x4-cpufreq")
			writeFile(t, root, dir+"scaling_max_freq", tc.curMax)
			p := filepath.Join(root, dir+tc.broken)
			os.Remove(p)
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			fs, _ := NewFS(root)
			err := fs.SetCPUFreqMinMax(1, tc.min, tc.max)
			if err == nil || !strings.Contains(err.Error(), tc.broken) || !strings.Contains(err.Error(), "cpu 1") {
				t.Fatalf("error %v, want one naming cpu 1 and %s", err, tc.broken)
			}
			if got := readFile(t, root, dir+"scaling_max_freq"); got != tc.wantMaxNow {
				t.Fatalf("scaling_max_freq = %q, want %q", got, tc.wantMaxNow)
			}
		})
	}
}

func TestSetCPUFreqErrors(t *testing.T) {
	root := tempFixture(t, "host")
	fs, _ := NewFS(root)
	err := fs.SetCPUFreqMinMax(1, 1200000, 2200000)
	want := "cpufreq not available for cpu 1 (no " + root + "/devices/system/cpu/cpu1/cpufreq; needs CONFIG_CPU_FREQ and a cpufreq driver)"
	if err == nil || err.Error() != want || !errors.Is(err, ErrNoCPUFreq) {
		t.Fatalf("SetCPUFreqMinMax without cpufreq: %v\nwant %s", err, want)
	}
	if _, serr := os.Stat(filepath.Join(root, "devices/system/cpu/cpu1/cpufreq")); !os.IsNotExist(serr) {
		t.Fatalf("SetCPUFreqMinMax created a cpufreq directory (%v)", serr)
	}
	fq, _ := NewFS(tempFixture(t, "synth-2x4-cpufreq"))
	for _, tc := range []struct {
		name     string
		min, max uint64
	}{{"min above max", 2200000, 1200000}, {"zero min", 0, 1200000}, {"zero max", 0, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			if err := fq.SetCPUFreqMinMax(0, tc.min, tc.max); err == nil || !strings.Contains(err.Error(), "bad range") {
				t.Fatalf("SetCPUFreqMinMax(0, %d, %d) = %v, want bad range", tc.min, tc.max, err)
			}
		})
	}
	if err := fq.SetCPUFreqMinMax(99, 1200000, 2200000); !errors.Is(err, ErrNoCPUFreq) {
		t.Fatalf("SetCPUFreqMinMax on a missing CPU = %v, want ErrNoCPUFreq", err)
	}
}
