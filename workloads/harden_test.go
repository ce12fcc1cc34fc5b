package workloads

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMetisBounds: values that panicked a worker (-r -5, -s 2^44) or ran
// for seconds past SIGINT (-r 100000000) are refused by flag and range
// before anything runs (issue 11 items 8 and 11).
func TestMetisBounds(t *testing.T) {
	for _, tc := range []struct {
		cfg  MetisConfig
		flag string
	}{
		{MetisConfig{Procs: 1, InputMB: 1, ReduceTasks: -5}, "-r -5"},
		{MetisConfig{Procs: 1, InputMB: 17592186044416}, "-s 17592186044416"},
		{MetisConfig{Procs: 1, InputMB: 1, ReduceTasks: 100000000}, "-r 100000000"},
		{MetisConfig{Procs: 1, InputMB: 1, MapTasks: -1}, "-m -1"},
		{MetisConfig{Procs: -1, InputMB: 1}, "-p -1"},
		{MetisConfig{Procs: 1, InputMB: -3}, "-s -3"},
		{MetisConfig{Procs: 1, InputMB: 1, Top: -1}, "-l -1"},
	} {
		_, err := MetisRun(context.Background(), tc.cfg, nil)
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
	_, err := MetisRun(ctx, MetisConfig{Procs: 1, InputMB: 256, CoresPerSocket: 1}, nil)
	faults := minorFaults(t) - before
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v, want context.Canceled", err)
	}
	if pages := int64(256 << 20 / 4096); faults > pages/4 {
		t.Fatalf("cancelled run faulted %d pages, the whole input is %d: generation went on after cancellation", faults, pages)
	}
}

// TestLevelDBValueSizeBound: --value-size above the 1 MiB generator is an
// error naming the limit (it panicked and sent a Go stack), and the
// database directory it would have made is not left behind (issue 11
// item 9).
func TestLevelDBValueSizeBound(t *testing.T) {
	root := t.TempDir()
	db := filepath.Join(root, "new", "db")
	_, err := LevelDBReadRandom(context.Background(), LevelDBConfig{Threads: 1, CoresPerSocket: 1, Num: 10, ValueSize: 2 << 20, DB: db, Duration: time.Second})
	if err == nil || !strings.Contains(err.Error(), "--value-size 2097152") || !strings.Contains(err.Error(), "1048576") {
		t.Fatalf("--value-size 2 MiB: %v, want an error naming it and the 1 MiB limit", err)
	}
	if _, err := os.Stat(filepath.Join(root, "new")); err == nil {
		t.Fatalf("%s was made by a refused run", filepath.Join(root, "new"))
	}
}

// TestLevelDBFillRemovesHalfMadeDB: a fill that stops early (here: a
// cancelled context) removes the directories it made; in a directory that
// existed it removes what it wrote and keeps the directory.
func TestLevelDBFillRemovesHalfMadeDB(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	root := t.TempDir()
	made := filepath.Join(root, "made")
	if _, _, err := LevelDBFillSeq(ctx, filepath.Join(made, "db"), 1000, 100); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled fill: %v", err)
	}
	if _, err := os.Stat(made); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("half-made database left in %s (stat: %v)", made, err)
	}
	existing := filepath.Join(root, "existing")
	if err := os.Mkdir(existing, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LevelDBFillSeq(ctx, existing, 1000, 100); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled fill: %v", err)
	}
	if ents, err := os.ReadDir(existing); err != nil || len(ents) != 0 {
		t.Fatalf("%s after a cancelled fill: %v %v, want it kept and empty", existing, ents, err)
	}
}

// TestWISTasksBound: -t beyond TasksPerCPU per CPU is refused naming the
// limit, before the run's temp directory exists (issue 11 item 10).
func TestWISTasksBound(t *testing.T) {
	tmp := t.TempDir()
	n := MaxTasks() + 1
	_, err := RunWillItScale(context.Background(), WISOptions{Test: "getppid1", Tasks: n, CoresPerSocket: 1, NoAffinity: true,
		Seconds: 1, Warmup: -1, Interval: 10 * time.Millisecond, TmpDir: tmp}, nil)
	if err == nil || !strings.Contains(err.Error(), "exceed the limit of") {
		t.Fatalf("-t %d --no-affinity: %v, want the task limit", n, err)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Fatalf("left %v in --tmpdir", ents)
	}
}
