package workloads

import (
	"testing"
	"unsafe"
)

func TestReduce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		deltas []uint64
		fast   []bool
		want   Sample
	}{
		{"none", nil, nil, Sample{}},
		{"one fast", []uint64{5}, []bool{true}, Sample{Min: 5, Max: 5, Total: 5, Fast: 5}},
		{"one slow idle", []uint64{0}, []bool{false}, Sample{}},
		{"mixed", []uint64{4, 9, 1, 6}, []bool{true, false, true, false}, Sample{Min: 1, Max: 9, Total: 20, Fast: 5, Slow: 15}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Reduce(tc.deltas, tc.fast); got != tc.want {
				t.Fatalf("Reduce = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCountersArePadded(t *testing.T) {
	if s := unsafe.Sizeof(Counter{}); s != CacheLineStride {
		t.Fatalf("Counter is %d bytes, want %d", s, CacheLineStride)
	}
	c := make([]Counter, 3)
	if d := uintptr(unsafe.Pointer(&c[1])) - uintptr(unsafe.Pointer(&c[0])); d != 128 {
		t.Fatalf("counters %d bytes apart, want 128", d)
	}
}
