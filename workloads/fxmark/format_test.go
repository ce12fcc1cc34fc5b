package fxmark

import (
	"bytes"
	"math"
	"testing"
)

func TestFxReportGolden(t *testing.T) {
	r := &Result{NCPU: 2, Secs: 1.0000005, Works: 10, WorksPerSec: 9.9999950000025, FastPerSec: 6, SlowPerSec: 3.9999980000010}
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	want := "# ncpu secs works works/sec  fast_works/sec, slow_works/sec\n" +
		"2 1.000001 10.000000 9.999995 6.000000 3.999998 \n"
	if buf.String() != want {
		t.Fatalf("got\n%q\nwant\n%q", buf.String(), want)
	}
}

func TestFxDatGolden(t *testing.T) {
	rows := []SweepRow{
		{NCPU: 4, Total: 0.1188244002801654, Fast: 0.0594370904608841, Slow: 0.0593873098192813},
		{NCPU: 1, Total: 0.0462382995338567, Fast: 0.0462382995338567, Slow: 0},
	}
	var buf bytes.Buffer
	if err := WriteDat(&buf, "mem", "tmpfs", "MWRL", "bufferedio", rows); err != nil {
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
