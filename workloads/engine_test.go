package workloads

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/numa"
	"github.com/syncord/syncord/workloads/internal/cputest"
)

func TestPlan(t *testing.T) {
	sys := cputest.FakeSys(t, "0-1,3")
	for _, tc := range []struct {
		name    string
		cfg     Config
		want    []int
		wantErr string
	}{
		{"one task", Config{Tasks: 1, CoresPerSocket: 4, SysRoot: sys}, []int{0}, ""},
		{"half fast half slow", Config{Tasks: 2, CoresPerSocket: 6, SysRoot: cputest.FakeSys(t, "0-5")}, []int{0, 3}, ""},
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
	n := min(cputest.Online(t), 4)
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

// TestPlanExplicitCPUs: Config.CPUs places task i on CPUs[i] (xdir's
// task i on CPU i), with no roles without a cores per socket, and a
// missing CPU is refused naming the task.
func TestPlanExplicitCPUs(t *testing.T) {
	sys := cputest.FakeSys(t, "0-3")
	cpus, err := Plan(Config{Tasks: 3, CPUs: []int{2, 0, 3}, SysRoot: sys})
	if err != nil || !equalInts(cpus, []int{2, 0, 3}) {
		t.Fatalf("Plan = %v, %v; want [2 0 3]", cpus, err)
	}
	if _, err := Plan(Config{Tasks: 2, CPUs: []int{0}, SysRoot: sys}); err == nil || !strings.Contains(err.Error(), "1 CPUs given for 2 tasks") {
		t.Fatalf("one CPU for two tasks: %v", err)
	}
	if _, err := Plan(Config{Tasks: 2, CPUs: []int{0, 4}, SysRoot: sys}); err == nil || !strings.Contains(err.Error(), "task 1 of 2 must run on CPU 4, which does not exist or is offline (online: 0-3); run fewer tasks") {
		t.Fatalf("offline CPU 4: %v", err)
	}
	run, err := Launch(context.Background(), Config{Tasks: 1, CPUs: []int{0}, NoAffinity: true}, func(t *Task) error {
		t.Ready()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	run.Stop()
	if tk := run.Tasks()[0]; tk.CPU != 0 || tk.Fast {
		t.Fatalf("task %+v: want CPU 0 and no role", tk)
	}
}

// TestLaunchRefusesCPUOutsideAffinity: a CPU that is online but outside
// this thread's affinity mask (a cpuset, taskset) is refused before any
// task starts, naming the CPUs that may be used. The test narrows its own
// locked thread's mask to one CPU, and restores it.
func TestLaunchRefusesCPUOutsideAffinity(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		t.Fatal(err)
	}
	online, err := OnlineCPUs("")
	if err != nil {
		t.Fatal(err)
	}
	var allowed []int
	for _, c := range online {
		if old.IsSet(c) {
			allowed = append(allowed, c)
		}
	}
	if len(allowed) < 2 {
		t.Skipf("skipping: needs two online CPUs this process may use, has %v", allowed)
	}
	var one unix.CPUSet
	one.Set(allowed[0])
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	defer unix.SchedSetaffinity(0, &old)
	started := false
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	run, err := Launch(ctx, Config{Tasks: 1, CPUs: []int{allowed[1]}}, func(t *Task) error {
		started = true
		t.Ready()
		return nil
	})
	if run != nil {
		run.Stop()
	}
	want := fmt.Sprintf("task 0 of 1 must run on CPU %d, which this process may not use (it may use CPUs %d); run fewer tasks", allowed[1], allowed[0])
	if err == nil || !strings.Contains(err.Error(), want) || started {
		t.Fatalf("Launch on CPU %d outside the mask: %v (started %v), want %q", allowed[1], err, started, want)
	}
}
