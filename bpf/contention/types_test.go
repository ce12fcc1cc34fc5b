package contention

import (
	"math/bits"
	"testing"
)

func TestTypeName(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags uint32
		want  string
	}{
		{"raw spinlock", FlagSpin, "spinlock"},
		{"rwlock reader", FlagSpin | FlagRead, "rwlock:R"},
		{"rwlock writer", FlagSpin | FlagWrite, "rwlock:W"},
		{"rwsem reader", FlagRead, "rwsem:R"},
		{"rwsem writer", FlagWrite, "rwsem:W"},
		{"rwsem both", FlagRead | FlagWrite, "rwsem"},
		{"percpu rwsem reader", FlagPerCPU | FlagRead, "pcpu-sem:R"},
		{"percpu rwsem writer", FlagPerCPU | FlagWrite, "pcpu-sem:W"},
		{"mutex sleeping", FlagMutex, "mutex"},
		{"mutex spinning then sleeping", FlagMutex | FlagSpin, "mutex"},
		{"rt mutex", FlagRT, "rtmutex"},
		{"rt rwbase reader", FlagRT | FlagRead, "rt-rw:R"},
		{"no flags", 0, "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := TypeName(tc.flags); got != tc.want {
				t.Errorf("TypeName(%#x) = %q, want %q", tc.flags, got, tc.want)
			}
		})
	}
}

func TestParseTypes(t *testing.T) {
	bit := func(fs ...uint32) (m uint64) {
		for _, f := range fs {
			m |= 1 << f
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		in      string
		want    uint64
		wantErr bool
	}{
		{"empty means all", "", ^uint64(0), false},
		{"spinlock", "spinlock", bit(FlagSpin), false},
		{"rwsem both sides", "rwsem", bit(FlagRead, FlagWrite, FlagRead|FlagWrite), false},
		{"rwsem writer", "rwsem:W", bit(FlagWrite), false},
		{"rwlock", "rwlock", bit(FlagSpin|FlagRead, FlagSpin|FlagWrite, FlagSpin|FlagRead|FlagWrite), false},
		{"list", "spinlock, rwsem:W", bit(FlagSpin, FlagWrite), false},
		{"unknown name", "futex", 0, true},
		{"unknown is not a type", "unknown", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTypes(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseTypes(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Errorf("ParseTypes(%q) = %#x, want %#x", tc.in, got, tc.want)
			}
		})
	}
	// Every mutex flag combination is a mutex: 32 of the 64 values.
	m, err := ParseTypes("mutex")
	if err != nil || bits.OnesCount64(m) != 32 || m&bit(FlagMutex) == 0 || m&bit(FlagMutex|FlagSpin) == 0 {
		t.Errorf("ParseTypes(mutex) = %#x, %v; want the 32 values with LCB_F_MUTEX", m, err)
	}
}

// Every name TypeNames offers parses, and every flags value 1..63 is
// allowed by exactly the type it is named after.
func TestTypeNamesRoundTrip(t *testing.T) {
	for _, n := range TypeNames() {
		if n == "unknown" {
			continue
		}
		if _, err := ParseTypes(n); err != nil {
			t.Errorf("TypeNames offers %q but ParseTypes rejects it: %v", n, err)
		}
	}
	for f := uint32(1); f < 64; f++ {
		m, err := ParseTypes(TypeName(f))
		if err != nil || m&(1<<f) == 0 {
			t.Errorf("flags %#x (%s) not allowed by its own type: %#x %v", f, TypeName(f), m, err)
		}
	}
}

func FuzzParseTypes(f *testing.F) {
	for _, s := range []string{"", "spinlock", "rwsem:W,mutex", ",", "rt-rw:R", "x:y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseTypes(s)
		if err == nil && m == 0 {
			t.Errorf("ParseTypes(%q) allowed nothing without an error", s)
		}
	})
}
