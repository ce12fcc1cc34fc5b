package numa

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// CPUSet is a set of CPU ids, kept sorted and without duplicates.
type CPUSet []int

// ParseCPUList parses a kernel cpulist such as "0-3,8,10-11\n" (the format of
// /sys/devices/system/cpu/online and nodeN/cpulist). Surrounding whitespace is
// ignored and an empty list is the empty set.
func ParseCPUList(s string) (CPUSet, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return CPUSet{}, nil
	}
	var set CPUSet
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("cpulist %q: empty element", s)
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := parseCPU(lo)
		if err != nil {
			return nil, fmt.Errorf("cpulist %q: %v", s, err)
		}
		b := a
		if isRange {
			// "0-7:2/4" stride forms are not produced by sysfs cpulists.
			if b, err = parseCPU(hi); err != nil {
				return nil, fmt.Errorf("cpulist %q: %v", s, err)
			}
			if b < a {
				return nil, fmt.Errorf("cpulist %q: range %d-%d is reversed", s, a, b)
			}
		}
		if b-a > maxCPUs {
			return nil, fmt.Errorf("cpulist %q: range %d-%d is larger than %d CPUs", s, a, b, maxCPUs)
		}
		for c := a; c <= b; c++ {
			set = append(set, c)
		}
		if len(set) > maxCPUs {
			return nil, fmt.Errorf("cpulist %q: more than %d CPUs", s, maxCPUs)
		}
	}
	return set.normalize(), nil
}

// maxCPUs bounds what a cpulist may expand to (the kernel's NR_CPUS limit).
const maxCPUs = 8192

func parseCPU(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad CPU number %q", s)
	}
	if n >= maxCPUs {
		return 0, fmt.Errorf("CPU number %d is beyond %d", n, maxCPUs-1)
	}
	return n, nil
}

func (s CPUSet) normalize() CPUSet {
	sort.Ints(s)
	out := s[:0]
	for i, c := range s {
		if i == 0 || c != s[i-1] {
			out = append(out, c)
		}
	}
	return out
}

// NewCPUSet returns the set of the given CPUs.
func NewCPUSet(cpus ...int) CPUSet {
	return append(CPUSet(nil), cpus...).normalize()
}

// Contains reports whether cpu is in s.
func (s CPUSet) Contains(cpu int) bool {
	i := sort.SearchInts(s, cpu)
	return i < len(s) && s[i] == cpu
}

// Len is the number of CPUs in s.
func (s CPUSet) Len() int { return len(s) }

// String formats s as a kernel cpulist ("0-3,8,10-11"); the empty set is "".
func (s CPUSet) String() string {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(s[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(s[j]))
		}
		i = j + 1
	}
	return b.String()
}

// MarshalJSON encodes s as a JSON list of CPU numbers; the empty and the nil
// set are both [].
func (s CPUSet) MarshalJSON() ([]byte, error) {
	if s == nil {
		return []byte("[]"), nil
	}
	return json.Marshal([]int(s))
}
