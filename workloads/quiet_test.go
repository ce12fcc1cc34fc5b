package workloads

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/syncord/syncord/workloads/internal/cputest"
)

// threadSigs reads the calling thread's blocked and pending signal masks
// (SigBlk and SigPnd of /proc/thread-self/status).
func threadSigs(t *testing.T) (blocked, pending uint64) {
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		t.Error(err)
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		switch k {
		case "SigBlk":
			blocked = n
		case "SigPnd":
			pending = n
		}
	}
	return blocked, pending
}

const urgBit = 1 << (unix.SIGURG - 1)

func gogc(t *testing.T) int64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		t.Fatalf("/gc/gogc:percent: kind %v", s[0].Value.Kind())
	}
	// -1 (off) reads as the uint64 of -1.
	return int64(s[0].Value.Uint64())
}

// spinBody is a raw-syscall hot loop like the drivers' (getppid); after
// the loop it records the thread's signal masks into blk/pnd[task].
func spinBody(blk, pnd []uint64, t *testing.T) Body {
	return func(tk *Task) error {
		if !tk.Ready() {
			return nil
		}
		stop, c := tk.StopFlag(), tk.Count
		for !stop.Load() {
			syscall.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
			c.Add(1)
		}
		blk[tk.ID], pnd[tk.ID] = threadSigs(t)
		return nil
	}
}

// The tasks of a run do not take the runtime's preemption signal while
// they loop, the collector is off for the run, and both come back after
// Stop.
func TestLaunchQuietsTasks(t *testing.T) {
	gc0, procs0 := gogc(t), runtime.GOMAXPROCS(0)
	n := min(cputest.Online(t), 2)
	blk, pnd := make([]uint64, n), make([]uint64, n)
	run, err := Launch(context.Background(), Config{Tasks: n, CoresPerSocket: n}, spinBody(blk, pnd, t))
	if err != nil {
		t.Fatal(err)
	}
	if g := gogc(t); g != -1 {
		t.Errorf("GOGC during the run = %d, want -1 (off)", g)
	}
	if p := runtime.GOMAXPROCS(0); p < n+2 {
		t.Errorf("GOMAXPROCS during the run = %d, want >= %d", p, n+2)
	}
	// sysmon asks a goroutine to yield after 10 ms of running.
	time.Sleep(300 * time.Millisecond)
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if blk[i]&urgBit == 0 {
			t.Errorf("task %d: SIGURG not blocked while it ran (SigBlk %x)", i, blk[i])
		}
		// The witness that sysmon did ask: one SIGURG left pending.
		t.Logf("task %d: SIGURG pending at the end of its loop: %v", i, pnd[i]&urgBit != 0)
	}
	if g := gogc(t); g != gc0 {
		t.Errorf("GOGC after Stop = %d, want %d", g, gc0)
	}
	if p := runtime.GOMAXPROCS(0); p != procs0 {
		t.Errorf("GOMAXPROCS after Stop = %d, want %d", p, procs0)
	}
}

// A run launched while another is active leaves the signal alone (and
// GOMAXPROCS: changing it stops the world, which the first run's tasks
// could not join); the last Stop restores the collector.
func TestLaunchConcurrentRuns(t *testing.T) {
	gc0 := gogc(t)
	blkA, pndA := make([]uint64, 1), make([]uint64, 1)
	a, err := Launch(context.Background(), Config{Tasks: 1, CoresPerSocket: 1}, spinBody(blkA, pndA, t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	procs := runtime.GOMAXPROCS(0)
	blkB, pndB := make([]uint64, 1), make([]uint64, 1)
	b, err := Launch(context.Background(), Config{Tasks: 1, CoresPerSocket: 1, NoAffinity: true}, spinBody(blkB, pndB, t))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if blkB[0]&urgBit != 0 {
		t.Errorf("second run's task blocked SIGURG")
	}
	if p := runtime.GOMAXPROCS(0); p != procs {
		t.Errorf("GOMAXPROCS changed from %d to %d while a run was active", procs, p)
	}
	if g := gogc(t); g != -1 {
		t.Errorf("GOGC = %d after the second run stopped, want -1 while the first runs", g)
	}
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	if blkA[0]&urgBit == 0 {
		t.Errorf("first run's task did not block SIGURG")
	}
	if g := gogc(t); g != gc0 {
		t.Errorf("GOGC after the last Stop = %d, want %d", g, gc0)
	}
}

// The sampler's tick does not allocate (the collector is off during runs).
func TestSamplerNextDoesNotAllocate(t *testing.T) {
	run, err := Launch(context.Background(), Config{Tasks: 1, CoresPerSocket: 1}, func(tk *Task) error {
		tk.Ready()
		for !tk.Stopped() {
			time.Sleep(time.Millisecond)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer run.Stop()
	s := NewSampler(run, time.Millisecond)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := s.Next(ctx); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Sampler.Next allocates %.1f times per tick, want 0", allocs)
	}
}

// With a memory limit the collector can run even when off, so the tasks
// stay preemptible.
func TestLaunchMemoryLimitKeepsTasksPreemptible(t *testing.T) {
	prev := debug.SetMemoryLimit(1 << 40)
	defer debug.SetMemoryLimit(prev)
	blk, pnd := make([]uint64, 1), make([]uint64, 1)
	run, err := Launch(context.Background(), Config{Tasks: 1, CoresPerSocket: 1}, spinBody(blk, pnd, t))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
	if blk[0]&urgBit != 0 {
		t.Errorf("task blocked SIGURG with a memory limit set")
	}
}

// A run whose bodies allocate (Metis, LevelDB) keeps the collector on and
// its tasks preemptible: with the collector off its heap would grow until
// the process's memory limit killed it (seen in FuzzAgentArgv: a LevelDB
// child under the agent's RLIMIT_DATA died with "cannot allocate memory").
func TestLaunchAllocatingRunKeepsCollector(t *testing.T) {
	gc0 := gogc(t)
	blk, pnd := make([]uint64, 1), make([]uint64, 1)
	run, err := Launch(context.Background(), Config{Tasks: 1, CoresPerSocket: 1, Allocates: true}, spinBody(blk, pnd, t))
	if err != nil {
		t.Fatal(err)
	}
	if g := gogc(t); g != gc0 {
		t.Errorf("GOGC during an allocating run = %d, want %d (unchanged)", g, gc0)
	}
	time.Sleep(20 * time.Millisecond)
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
	if blk[0]&urgBit != 0 {
		t.Errorf("a task of an allocating run blocked SIGURG")
	}
	if g := gogc(t); g != gc0 {
		t.Errorf("GOGC after Stop = %d, want %d", g, gc0)
	}
}
