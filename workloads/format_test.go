package workloads

import (
	"bytes"
	"math"
	"testing"
	"unsafe"

	"github.com/syncord/syncord/numa"
)

func TestWISLinesGolden(t *testing.T) {
	var buf bytes.Buffer
	l := WISLines{W: &buf}
	l.done()
	l.testcase("Separate file write lock/unlock")
	l.warmup()
	l.sample(Sample{Min: 10, Max: 20, Total: 30, Fast: 20, Slow: 10})
	l.measurement()
	l.sample(Sample{Min: 0, Max: 18446744073709551615, Total: 18446744073709551615, Fast: 18446744073709551615, Slow: 0})
	l.average(Sample{Total: 7, Fast: 4, Slow: 3})
	want := "done\n" +
		"testcase:Separate file write lock/unlock\n" +
		"warmup\n" +
		"min:10 max:20 total:30 fast:20 slow:10\n" +
		"measurement\n" +
		"min:0 max:18446744073709551615 total:18446744073709551615 fast:18446744073709551615 slow:0\n" +
		"average:7:4:3\n"
	if buf.String() != want {
		t.Fatalf("got\n%q\nwant\n%q", buf.String(), want)
	}
}

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

func TestFxReportGolden(t *testing.T) {
	r := &FxResult{NCPU: 2, Secs: 1.0000005, Works: 10, WorksPerSec: 9.9999950000025, FastPerSec: 6, SlowPerSec: 3.9999980000010}
	var buf bytes.Buffer
	if err := r.WriteReport(&buf); err != nil {
		t.Fatal(err)
	}
	want := "# ncpu secs works works/sec  fast_works/sec, slow_works/sec\n" +
		"2 1.000001 10.000000 9.999995 6.000000 3.999998 \n"
	if buf.String() != want {
		t.Fatalf("got\n%q\nwant\n%q", buf.String(), want)
	}
}

func TestFxDatGolden(t *testing.T) {
	rows := []FxSweepRow{
		{NCPU: 4, Total: 0.1188244002801654, Fast: 0.0594370904608841, Slow: 0.0593873098192813},
		{NCPU: 1, Total: 0.0462382995338567, Fast: 0.0462382995338567, Slow: 0},
	}
	var buf bytes.Buffer
	if err := WriteFxDat(&buf, "mem", "tmpfs", "MWRL", "bufferedio", rows); err != nil {
		t.Fatal(err)
	}
	want := "# mem:tmpfs:MWRL:bufferedio:*\n" +
		"# core, total, fast, slow\n" +
		"1 0.0462382995338567 0.0462382995338567 0.0\n" +
		"4 0.1188244002801654 0.0594370904608841 0.0593873098192813\n"
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

// TestPyFloat: expectations printed by python3's str(float).
func TestPyFloat(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{0, "0.0"},
		{1, "1.0"},
		{0.0462382995338567, "0.0462382995338567"},
		{1234567, "1234567.0"},
		{12345678901234567, "1.2345678901234568e+16"},
		{1e-5, "1e-05"},
		{0.0001, "0.0001"},
		{1.5e16, "1.5e+16"},
		{123.456, "123.456"},
		{2.0 / 3, "0.6666666666666666"},
		{1e22, "1e+22"},
		{9999999999999998, "9999999999999998.0"},
		{math.NaN(), "nan"},
		{math.Inf(1), "inf"},
	} {
		if got := PyFloat(tc.in); got != tc.want {
			t.Errorf("PyFloat(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSweepLinesGolden(t *testing.T) {
	h := numa.RuntestHeader{NumCores: 224, NumNodes: 8, CoresPerSocket: 28}
	if got, want := h.String(), "(num_cores, num_nodes, cores_per_socket) = (224, 8, 28)"; got != want {
		t.Fatalf("header %q, want %q", got, want)
	}
	for _, tc := range []struct {
		row  SweepRow
		want string
	}{
		{SweepRow{Cores: 1, Total: 2200000, Fast: 2200000, Slow: 0}, "1,2200000,2200000,0"},
		{SweepRow{Cores: 56, Total: -1, Fast: -1, Slow: -1}, "56,-1,-1,-1"},
	} {
		if got := FormatSweepRow(tc.row); got != tc.want {
			t.Errorf("row %q, want %q", got, tc.want)
		}
	}
	if SweepColumns != "# core,total,fast,slow" {
		t.Fatal("columns line changed")
	}
}

func TestPutFileNum(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want string
	}{
		{0, "0.dat\x00"},
		{9, "9.dat\x00"},
		{10, "10.dat\x00"},
		{18446744073709551615, "18446744073709551615.dat\x00"},
	} {
		buf := make([]byte, 32)
		putFileNum(buf, tc.n)
		if got := string(buf[:len(tc.want)]); got != tc.want {
			t.Errorf("putFileNum(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
