package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestWisOps(t *testing.T) {
	out := `done
testcase:Separate file write lock/unlock
warmup
min:10 max:10 total:10 fast:10 slow:0
min:20 max:20 total:20 fast:20 slow:0
measurement
min:30 max:30 total:30 fast:30 slow:0
min:40 max:40 total:40 fast:40 slow:0
average:35:35:0`
	lines := strings.Split(out, "\n")
	t0 := time.Now()
	stamps := make([]time.Time, len(lines))
	for i := range stamps {
		// Sample lines 1 s apart: the one before "measurement" at +2 s,
		// the measured two at +3 s and +4 s.
		stamps[i] = t0.Add(time.Duration(strings.Count(strings.Join(lines[:i+1], "\n"), "min:")) * time.Second)
	}
	avg, all, timed, err := wisOps(lines, stamps)
	if err != nil {
		t.Fatal(err)
	}
	if avg != 35 || all != 100 {
		t.Errorf("avg, all = %v, %v; want 35, 100", avg, all)
	}
	if math.Abs(timed-35) > 1e-9 {
		t.Errorf("timed = %v, want 70 ops over 2 s = 35", timed)
	}
	// Lines that came all at once (a buffered pipe): no timed figure.
	same := make([]time.Time, len(lines))
	if _, _, timed, _ := wisOps(lines, same); timed != 0 {
		t.Errorf("timed = %v from lines read at one instant, want 0", timed)
	}
	if _, _, _, err := wisOps(lines[:5], stamps[:5]); err == nil {
		t.Error("no error without an average line")
	}
}

func TestFxOps(t *testing.T) {
	out := `worker id 0, total_cpu 1, CORE_PER_CHIP 2
cpu: 0, worker->fast: 1
# ncpu secs works works/sec  fast_works/sec, slow_works/sec
1 3.000050 463771.000000 154587.756871 154587.756871 0.000000 `
	ps, works, err := fxOps(strings.Split(out, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if ps != 154587.756871 || works != 463771 {
		t.Errorf("works/sec, works = %v, %v", ps, works)
	}
	if _, _, err := fxOps([]string{"nothing"}); err == nil {
		t.Error("no error without a report")
	}
}
