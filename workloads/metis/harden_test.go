package metis

import (
	"context"
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMetisBounds: values that panicked a worker (-r -5, -s 2^44) or ran
// for seconds past SIGINT (-r 100000000) are refused by flag and range
// before anything runs (issue 11 items 8 and 11).
func TestMetisBounds(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		flag string
	}{
		{Config{Procs: 1, InputMB: 1, ReduceTasks: -5}, "ReduceTasks -5"},
		{Config{Procs: 1, InputMB: 17592186044416}, "InputMB 17592186044416"},
		{Config{Procs: 1, InputMB: 1, ReduceTasks: 100000000}, "ReduceTasks 100000000"},
		{Config{Procs: 1, InputMB: 1, MapTasks: -1}, "MapTasks -1"},
		{Config{Procs: -1, InputMB: 1}, "Procs -1"},
		{Config{Procs: 1, InputMB: -3}, "InputMB -3"},
		{Config{Procs: 1, InputMB: 1, Top: -1}, "Top -1"},
	} {
		_, err := Run(context.Background(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.flag+" is out of range") {
			t.Errorf("%+v: %v, want an error naming %q out of range", tc.cfg, err, tc.flag)
		}
	}
}

// minorFaults is getrusage(RUSAGE_SELF).ru_minflt.
func minorFaults(t *testing.T) int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Minflt
}

// TestMetisCancelStopsGenerating: a cancelled run stops generating its
// input instead of faulting in all of it first. The witness is the page
// faults of the process, not the time taken: a 256 MiB input is 65536
// pages, a cancelled run must fault in less than a quarter of them.
func TestMetisCancelStopsGenerating(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := minorFaults(t)
	_, err := Run(ctx, Config{Procs: 1, InputMB: 256, CoresPerSocket: 1})
	faults := minorFaults(t) - before
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v, want context.Canceled", err)
	}
	if pages := int64(256 << 20 / 4096); faults > pages/4 {
		t.Fatalf("cancelled run faulted %d pages, the whole input is %d: generation went on after cancellation", faults, pages)
	}
}
