package numa

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseCPUList(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    CPUSet
		wantErr string
	}{
		{name: "sysfs line with ranges", in: "0-3,8,10-11\n", want: CPUSet{0, 1, 2, 3, 8, 10, 11}},
		{name: "empty", in: "", want: CPUSet{}},
		{name: "only newline", in: "\n", want: CPUSet{}},
		{name: "only whitespace", in: " \t\n", want: CPUSet{}},
		{name: "single cpu", in: "0\n", want: CPUSet{0}},
		{name: "whitespace around elements", in: " 1 , 3-4 \n", want: CPUSet{1, 3, 4}},
		{name: "unsorted and duplicate elements", in: "8,0-2,1", want: CPUSet{0, 1, 2, 8}},
		{name: "one-element range", in: "5-5", want: CPUSet{5}},
		{name: "largest cpu", in: "8191", want: CPUSet{8191}},
		{name: "reversed range", in: "3-1", wantErr: "reversed"},
		{name: "garbage", in: "abc", wantErr: "bad CPU number"},
		{name: "negative", in: "-1", wantErr: "bad CPU number"},
		{name: "open range", in: "2-", wantErr: "bad CPU number"},
		{name: "stride form", in: "0-7:2/4", wantErr: "bad CPU number"},
		{name: "empty element", in: "1,,2", wantErr: "empty element"},
		{name: "trailing comma", in: "1,", wantErr: "empty element"},
		{name: "leading zeros", in: "007,0010", want: CPUSet{7, 10}},
		{name: "cpu beyond NR_CPUS", in: "8192", wantErr: "beyond"},
		{name: "huge range", in: "0-99999999", wantErr: "beyond"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCPUList(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseCPUList(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), "cpulist") {
					t.Errorf("error %q does not say it is about a cpulist", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCPUList(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseCPUList(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestCPUSetString(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  CPUSet
		want string
	}{
		{"empty", CPUSet{}, ""},
		{"nil", nil, ""},
		{"single", NewCPUSet(4), "4"},
		{"pair is a range", NewCPUSet(0, 1), "0-1"},
		{"ranges and singles", NewCPUSet(11, 0, 1, 2, 3, 8, 10), "0-3,8,10-11"},
		{"duplicates collapse", NewCPUSet(2, 2, 2), "2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.set.String(); got != tc.want {
				t.Fatalf("%v.String() = %q, want %q", []int(tc.set), got, tc.want)
			}
		})
	}
}

func TestCPUSetContains(t *testing.T) {
	s := NewCPUSet(1, 3, 5)
	for cpu, want := range map[int]bool{0: false, 1: true, 2: false, 3: true, 5: true, 6: false, -1: false} {
		if got := s.Contains(cpu); got != want {
			t.Errorf("Contains(%d) = %v, want %v", cpu, got, want)
		}
	}
	if s.Len() != 3 {
		t.Errorf("Len() = %d, want 3", s.Len())
	}
}

// FuzzParseCPUList checks that whatever parses formats back to a list that
// parses to the same set, and that formatting is canonical.
func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{"0-3,8,10-11\n", "", "\n", " 1 , 3-4 ", "3-1", "0", "8191", "0-7:2/4", "1,,2", "0-8191", "+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		set, err := ParseCPUList(in)
		if err != nil {
			return
		}
		if set.Len() > maxCPUs {
			t.Fatalf("ParseCPUList(%q) has %d CPUs, more than %d", in, set.Len(), maxCPUs)
		}
		for i := 1; i < len(set); i++ {
			if set[i] <= set[i-1] {
				t.Fatalf("ParseCPUList(%q) = %v is not sorted and unique", in, set)
			}
		}
		str := set.String()
		again, err := ParseCPUList(str)
		if err != nil {
			t.Fatalf("ParseCPUList(%q).String() = %q does not parse: %v", in, str, err)
		}
		if !reflect.DeepEqual(again, set) {
			t.Fatalf("round trip of %q: %v -> %q -> %v", in, set, str, again)
		}
		if again.String() != str {
			t.Fatalf("String is not canonical: %q -> %q", str, again.String())
		}
	})
}
