package numa

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseInt(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     int
		wantErr  bool
	}{
		{name: "core_id", in: "27\n", want: 27},
		{name: "unknown package", in: "-1\n", want: -1},
		{name: "no newline", in: "3", want: 3},
		{name: "empty", in: "", wantErr: true},
		{name: "only newline", in: "\n", wantErr: true},
		{name: "garbage", in: "zero\n", wantErr: true},
		{name: "two numbers", in: "1 2\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseInt([]byte(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("parseInt(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseKHz(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     uint64
		wantErr  bool
	}{
		{name: "scaling_max_freq", in: "2200000\n", want: 2200000},
		{name: "negative", in: "-1\n", wantErr: true},
		{name: "unit suffix", in: "2.2GHz\n", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseKHz([]byte(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("parseKHz(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseKHzList(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []uint64
		wantErr  bool
	}{
		{name: "kernel trailing space", in: "2200000 2000000 1200000 \n", want: []uint64{2200000, 2000000, 1200000}},
		{name: "one", in: "800000\n", want: []uint64{800000}},
		{name: "empty", in: "\n", want: []uint64{}},
		{name: "garbage", in: "2200000 fast\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseKHzList([]byte(tc.in))
			if (err != nil) != tc.wantErr || (!tc.wantErr && !reflect.DeepEqual(got, tc.want)) {
				t.Fatalf("parseKHzList(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseWord(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		wantErr        bool
	}{
		{name: "acpi-cpufreq", in: "acpi-cpufreq\n", want: "acpi-cpufreq"},
		{name: "intel_pstate", in: "intel_pstate", want: "intel_pstate"},
		{name: "empty", in: "\n", wantErr: true},
		{name: "two words", in: "acpi cpufreq\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWord([]byte(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("parseWord(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseDistances(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []int
		wantErr  bool
	}{
		{name: "one node", in: "10\n", want: []int{10}},
		{name: "four nodes", in: "20 10 20 20\n", want: []int{20, 10, 20, 20}},
		{name: "empty", in: "\n", wantErr: true},
		{name: "negative", in: "10 -1\n", wantErr: true},
		{name: "garbage", in: "10 far\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseDistances([]byte(tc.in))
			if (err != nil) != tc.wantErr || (!tc.wantErr && !reflect.DeepEqual(got, tc.want)) {
				t.Fatalf("parseDistances(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseMemTotal(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     uint64
		wantErr  string
	}{
		{name: "node meminfo", in: "Node 0 MemTotal:        4941600 kB\nNode 0 MemFree:         3899808 kB\n", want: 4941600 * 1024},
		{name: "MemTotal not first", in: "Node 3 MemFree: 1 kB\nNode 3 MemTotal: 16777216 kB\n", want: 16 << 30},
		{name: "no MemTotal", in: "Node 0 MemFree: 1 kB\n", wantErr: "no MemTotal"},
		{name: "empty", in: "", wantErr: "no MemTotal"},
		{name: "missing unit", in: "Node 0 MemTotal: 12\n", wantErr: "bad MemTotal line"},
		{name: "bad number", in: "Node 0 MemTotal: lots kB\n", wantErr: "bad MemTotal value"},
		{name: "overflow", in: "Node 0 MemTotal: 18446744073709551615 kB\n", wantErr: "bad MemTotal value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMemTotal([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseMemTotal(%q) = %d, %v; want error %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseMemTotal(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}
