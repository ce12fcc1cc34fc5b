package workloads

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/numa"
)

// fakeSys makes a sysfs root whose online CPUs are online.
func fakeSys(t *testing.T, online string) pseudofs.FS {
	root := t.TempDir()
	d := filepath.Join(root, "devices/system/cpu")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "online"), []byte(online+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return pseudofs.FS(root)
}

func TestPlan(t *testing.T) {
	sys := fakeSys(t, "0-1,3")
	for _, tc := range []struct {
		name    string
		cfg     Config
		want    []int
		wantErr string
	}{
		{"one task", Config{Tasks: 1, CoresPerSocket: 4, SysRoot: sys}, []int{0}, ""},
		{"half fast half slow", Config{Tasks: 2, CoresPerSocket: 6, SysRoot: fakeSys(t, "0-5")}, []int{0, 3}, ""},
		{"offline CPU", Config{Tasks: 3, CoresPerSocket: 4, SysRoot: sys}, nil, "CPU 2"},
		{"missing CPU", Config{Tasks: 5, CoresPerSocket: 4, SysRoot: sys}, nil, "does not exist or is offline"},
		{"offline but unpinned", Config{Tasks: 3, CoresPerSocket: 4, SysRoot: sys, NoAffinity: true}, []int{0, 2, 3}, ""},
		{"zero tasks", Config{Tasks: 0, CoresPerSocket: 4, SysRoot: sys}, nil, "tasks must be > 0"},
		{"zero cps", Config{Tasks: 1, CoresPerSocket: 0, SysRoot: sys}, nil, "cores per socket must be > 0"},
		{"no sysfs", Config{Tasks: 1, CoresPerSocket: 1, SysRoot: pseudofs.FS(t.TempDir())}, nil, "read online CPUs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Plan(tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !equalInts(got, tc.want) {
				t.Fatalf("Plan = %v, want %v", got, tc.want)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestLaunchPinsAndReleasesTogether: every task runs on exactly its
// placement CPU, and none passes the barrier before all finished setup.
func TestLaunchPinsAndReleasesTogether(t *testing.T) {
	n := min(onlineCount(t), 4)
	var setups atomic.Int32
	masks := make([]unix.CPUSet, n)
	early := make([]bool, n)
	run, err := Launch(context.Background(), Config{Tasks: n, CoresPerSocket: n}, func(tk *Task) error {
		if err := unix.SchedGetaffinity(0, &masks[tk.ID]); err != nil {
			return err
		}
		time.Sleep(time.Duration(tk.ID) * 20 * time.Millisecond)
		setups.Add(1)
		if !tk.Ready() {
			return nil
		}
		early[tk.ID] = setups.Load() != int32(n)
		for !tk.Stopped() {
			tk.Count.Add(1)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every released task counts; how soon it gets a CPU is the machine's
	// business, so wait (up to a generous bound) until each has counted.
	var counts []uint64
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		counts = run.Counts(counts[:0])
		if !slices.Contains(counts, 0) || time.Now().After(deadline) {
			break
		}
	}
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
	for i, tk := range run.Tasks() {
		if masks[i].Count() != 1 || !masks[i].IsSet(tk.CPU) {
			t.Errorf("task %d: affinity has %d CPUs, want only CPU %d", i, masks[i].Count(), tk.CPU)
		}
		if tk.Fast != numa.IsFast(tk.CPU, n) {
			t.Errorf("task %d: fast = %v", i, tk.Fast)
		}
		if early[i] {
			t.Errorf("task %d passed the barrier before every setup finished", i)
		}
		if counts[i] == 0 {
			t.Errorf("task %d did nothing in 30 s after its release", i)
		}
	}
}

func TestLaunchSetupFailure(t *testing.T) {
	boom := errors.New("boom")
	done := make(chan error, 1)
	go func() {
		_, err := Launch(context.Background(), Config{Tasks: 2, CoresPerSocket: 2, NoAffinity: true}, func(tk *Task) error {
			if tk.ID == 1 {
				return boom
			}
			if tk.Ready() {
				t.Error("task 0 was released after task 1 failed")
			}
			return nil
		})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "task 1") {
			t.Fatalf("err = %v, want task 1: boom", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Launch hung after a setup failure")
	}
}

func TestLaunchCancelledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := Launch(ctx, Config{Tasks: 1, CoresPerSocket: 1, NoAffinity: true}, func(tk *Task) error {
		time.Sleep(200 * time.Millisecond) // a setup longer than the context
		if tk.Ready() {
			t.Error("task released after the context ended")
		}
		return nil
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

// TestTempFilesGoneAfterCancel: runs of tests that keep named files are
// cancelled mid-way (with -s 0, which is how such a run ends, and with -s
// 50, which is an interruption: 5 s of samples cannot end before the
// 350 ms deadline); nothing is left in the temp directory.
func TestTempFilesGoneAfterCancel(t *testing.T) {
	for _, name := range []string{"lock1", "lock2", "open1", "open2", "unlink2", "dup1", "page_fault2", "readseek3"} {
		for _, secs := range []int{0, 50} {
			t.Run(name, func(t *testing.T) {
				tmp := t.TempDir()
				var ctx context.Context
				var cancel context.CancelFunc
				var buf bytes.Buffer
				var out io.Writer = &buf
				if secs == 0 {
					// Cancelled once the first measured sample is out,
					// however long a busy machine takes to get there.
					ctx, cancel = context.WithCancel(context.Background())
					out = &cancelAfterSample{w: &buf, cancel: cancel}
				} else {
					ctx, cancel = context.WithTimeout(context.Background(), 350*time.Millisecond)
				}
				defer cancel()
				res, err := RunWillItScale(ctx, WISOptions{Test: name, Tasks: 2, CoresPerSocket: 2, Seconds: secs, Warmup: -1,
					Interval: 100 * time.Millisecond, NoAffinity: true, TmpDir: tmp}, out)
				if secs == 0 {
					if err != nil {
						t.Fatalf("-s 0 ended by cancel: %v", err)
					}
					if res.Measured == 0 || !regexp.MustCompile(`\naverage:\d+:\d+:\d+\n$`).MatchString(buf.String()) {
						t.Fatalf("no average after cancel:\n%s", buf.String())
					}
				} else if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("err = %v, want the context's", err)
				}
				ents, _ := os.ReadDir(tmp)
				for _, e := range ents {
					t.Errorf("left behind: %s", e.Name())
				}
			})
		}
	}
}

// cancelAfterSample cancels once a measured sample line (a "min:" line
// after "measurement") has been written.
type cancelAfterSample struct {
	w         io.Writer
	cancel    context.CancelFunc
	measuring bool
}

func (c *cancelAfterSample) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if bytes.Contains(p, []byte("measurement")) {
		c.measuring = true
	} else if c.measuring && bytes.Contains(p, []byte("min:")) {
		c.cancel()
	}
	return n, err
}

// TestLock1RealRun is a real lock1 run with the suite's 5 warmup samples
// of 1 s and one measured second, 2 tasks.
func TestLock1RealRun(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: 7 s run (drop -short)")
	}
	var buf bytes.Buffer
	res, err := RunWillItScale(context.Background(), WISOptions{Test: "lock1", Tasks: 2, CoresPerSocket: 2, Seconds: 1,
		NoAffinity: onlineCount(t) < 2, TmpDir: t.TempDir()}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	checkWISOutput(t, buf.String(), "Separate file write lock/unlock", 5, 1)
	if res.Average.Total == 0 || res.Average.Total%2 != 0 && res.Average.Total < 2 {
		t.Errorf("average %+v", res.Average)
	}
	last := res.Samples[len(res.Samples)-1]
	if res.Average.Total != last.Total {
		t.Errorf("average of one measured sample %d != that sample %d", res.Average.Total, last.Total)
	}
}

func TestSweep(t *testing.T) {
	var out, prog bytes.Buffer
	h := numa.RuntestHeader{NumCores: 2, NumNodes: 1, CoresPerSocket: 2}
	res, err := RunSweep(context.Background(), SweepOptions{
		Run:      WISOptions{Test: "getppid1", CoresPerSocket: 2, Warmup: -1, Interval: 100 * time.Millisecond, TmpDir: t.TempDir(), SysRoot: fakeSys(t, "0")},
		Points:   []int{1, 4},
		Duration: 1,
		Header:   h,
	}, &out, &prog)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 4 || lines[0] != h.String() || lines[1] != SweepColumns || lines[3] != "4,-1,-1,-1" {
		t.Fatalf("output:\n%s", out.String())
	}
	// One 100 ms sample: whether the task got CPU 0 in it is the busy
	// machine's business; where its work counts is not.
	if m := regexp.MustCompile(`^1,(\d+),(\d+),0$`).FindStringSubmatch(lines[2]); m == nil || m[1] != m[2] {
		t.Fatalf("row %q: one task on CPU 0 of a 2-core socket is all fast", lines[2])
	}
	if res.Rows[1].Error == "" || !strings.Contains(prog.String(), "point 2 of 2") {
		t.Fatalf("failed point not reported: %+v\n%s", res.Rows[1], prog.String())
	}
}

// TestProcessesMode runs tests in processes mode (the test binary is
// re-executed as each task): the lines have the same shape, the tasks did
// work, their CPU time was collected, and the temp directory is empty.
func TestProcessesMode(t *testing.T) {
	for _, name := range []string{"lock1", "open1", "brk1", "signal1", "context_switch1"} {
		t.Run(name, func(t *testing.T) {
			tmp := t.TempDir()
			var buf bytes.Buffer
			tc, _ := LookupWISTest(name)
			res, err := RunWillItScale(context.Background(), WISOptions{Test: name, Tasks: 2, CoresPerSocket: 2, Seconds: 1, Warmup: -1,
				Interval: 200 * time.Millisecond, NoAffinity: onlineCount(t) < 2, Processes: true, TmpDir: tmp}, &buf)
			if err != nil {
				t.Fatal(err)
			}
			checkWISOutput(t, buf.String(), tc.Description, 0, 1)
			for i := range res.TaskOps {
				if res.TaskOps[i] == 0 || res.TaskCPU[i] <= 0 {
					t.Errorf("task %d: %d ops, %f CPU seconds", i, res.TaskOps[i], res.TaskCPU[i])
				}
			}
			ents, _ := os.ReadDir(tmp)
			for _, e := range ents {
				t.Errorf("left behind: %s", e.Name())
			}
		})
	}
}

// TestProcessesModeCancel: a processes-mode run cancelled mid-way
// leaves no task process and no temp file behind.
func TestProcessesModeCancel(t *testing.T) {
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	// 50 samples of 100 ms: the run cannot end by itself before the
	// deadline (with 5 it raced the deadline on a busy machine).
	_, err := RunWillItScale(ctx, WISOptions{Test: "open1", Tasks: 2, CoresPerSocket: 2, Seconds: 50, Warmup: -1,
		Interval: 100 * time.Millisecond, NoAffinity: true, Processes: true, TmpDir: tmp}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's", err)
	}
	if kids := childPids(t); len(kids) != 0 {
		t.Errorf("task processes left: %v", kids)
	}
	ents, _ := os.ReadDir(tmp)
	for _, e := range ents {
		t.Errorf("left behind: %s", e.Name())
	}
}

// childPids lists this process's children (/proc/self/task/*/children).
func childPids(t *testing.T) []string {
	files, _ := filepath.Glob("/proc/self/task/*/children")
	var pids []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pids = append(pids, strings.Fields(string(b))...)
	}
	return pids
}
