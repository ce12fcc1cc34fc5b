package workloads

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestReport runs two counting tasks with a 10 ms Report: line is called
// with growing counts while the run goes and never after stop returned
// (stop twice is fine).
func TestReport(t *testing.T) {
	run, err := Launch(context.Background(), Config{Tasks: 2, CoresPerSocket: 1, NoAffinity: true}, func(tk *Task) error {
		if !tk.Ready() {
			return nil
		}
		for !tk.Stopped() {
			tk.Count.Add(1)
			time.Sleep(time.Millisecond)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer run.Stop()
	var mu sync.Mutex
	var calls int
	var stopped bool
	var last uint64
	stop := Report(context.Background(), run, 10*time.Millisecond, func(elapsed time.Duration, counts []uint64) {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			t.Errorf("line called after stop returned")
		}
		if len(counts) != 2 || elapsed <= 0 {
			t.Errorf("line(%v, %v): want 2 counts and a positive elapsed time", elapsed, counts)
			return
		}
		if sum := counts[0] + counts[1]; sum < last {
			t.Errorf("counts went back from %d to %d", last, sum)
		} else {
			last = sum
		}
		calls++
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := calls
		mu.Unlock()
		if n >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	mu.Lock()
	stopped = true
	n := calls
	mu.Unlock()
	stop()
	time.Sleep(50 * time.Millisecond) // a line after stop would show now
	if n < 3 {
		t.Fatalf("%d calls in 10 s at a 10 ms interval, want >= 3", n)
	}
	if last == 0 {
		t.Errorf("counts stayed 0 while the tasks counted")
	}
}
