package rawsys

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// impl is one inner loop: the one this architecture uses (loopN) and the
// Go one it must agree with.
type impl struct {
	name string
	f    func(calls *Call, ncalls int, count *atomic.Uint64, inc uint64, stop *atomic.Bool, iters int) uintptr
}

var impls = []impl{{"loopN", loopN}, {"loopGo", loopGo}}

// run is Loop on f with a deadline: a loop that never sees the stop flag
// (the flag's layout misread by the assembly) fails the test instead of
// hanging it.
func run(t *testing.T, f impl, calls []Call, count *atomic.Uint64, inc uint64, stop *atomic.Bool) unix.Errno {
	t.Helper()
	done := make(chan unix.Errno, 1)
	go func() {
		var e unix.Errno
		for !stop.Load() {
			if r := f.f(&calls[0], len(calls), count, inc, stop, Batch); r != 0 {
				e = unix.Errno(r)
				break
			}
		}
		done <- e
	}()
	select {
	case e := <-done:
		return e
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not end 60 s after it was started (does it read the stop flag?)", f.name)
		return 0
	}
}

func eventfd(t *testing.T) int {
	t.Helper()
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatalf("eventfd: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func eventCount(t *testing.T, fd int) uint64 {
	t.Helper()
	var b [8]byte
	if _, err := unix.Read(fd, b[:]); err != nil {
		if errors.Is(err, unix.EAGAIN) {
			return 0
		}
		t.Fatalf("read eventfd: %v", err)
	}
	return binary.NativeEndian.Uint64(b[:])
}

// TestLoopCountsEveryCall checks each implementation against an
// independent witness: every call adds 1 (first call) or 2 (second) to an
// eventfd counter, so after the run the eventfd holds 3 per iteration, and
// the loop's count (inc 5 per iteration) must be 5 per iteration.
func TestLoopCountsEveryCall(t *testing.T) {
	for _, f := range impls {
		t.Run(f.name, func(t *testing.T) {
			fd := eventfd(t)
			one, two := new(uint64), new(uint64)
			*one, *two = 1, 2
			var pin runtime.Pinner
			pin.Pin(one)
			pin.Pin(two)
			defer pin.Unpin()
			calls := []Call{
				{Trap: unix.SYS_WRITE, Args: [6]uintptr{uintptr(fd), uintptr(unsafe.Pointer(one)), 8}},
				{Trap: unix.SYS_WRITE, Args: [6]uintptr{uintptr(fd), uintptr(unsafe.Pointer(two)), 8}},
			}
			var count atomic.Uint64
			var stop atomic.Bool
			go func() {
				for count.Load() < 5*10000 {
					runtime.Gosched()
				}
				stop.Store(true)
			}()
			if e := run(t, f, calls, &count, 5, &stop); e != 0 {
				t.Fatalf("loop failed: %v", e)
			}
			n := count.Load()
			if n < 5*10000 || n%5 != 0 {
				t.Fatalf("count %d, want a multiple of 5 and >= 50000", n)
			}
			if got, want := eventCount(t, fd), n/5*3; got != want {
				t.Fatalf("the eventfd saw %d, want %d (3 per iteration, %d iterations)", got, want, n/5)
			}
		})
	}
}

// TestLoopFailure: a failing call ends the loop with its errno before the
// iteration is counted; the calls before it ran.
func TestLoopFailure(t *testing.T) {
	for _, f := range impls {
		t.Run(f.name, func(t *testing.T) {
			fd := eventfd(t)
			one := new(uint64)
			*one = 1
			var pin runtime.Pinner
			pin.Pin(one)
			defer pin.Unpin()
			calls := []Call{
				{Trap: unix.SYS_WRITE, Args: [6]uintptr{uintptr(fd), uintptr(unsafe.Pointer(one)), 8}},
				{Trap: unix.SYS_LSEEK, Args: [6]uintptr{^uintptr(0), 0, unix.SEEK_SET}}, // fd -1
			}
			var count atomic.Uint64
			var stop atomic.Bool
			if e := run(t, f, calls, &count, 1, &stop); e != unix.EBADF {
				t.Fatalf("loop returned %v, want EBADF", e)
			}
			if n := count.Load(); n != 0 {
				t.Fatalf("count %d after a failed first iteration, want 0", n)
			}
			if got := eventCount(t, fd); got != 1 {
				t.Fatalf("the eventfd saw %d writes, want 1 (the call before the failing one)", got)
			}
		})
	}
}

// TestLoopIgnoreErr: with IgnoreErr the same failing call is counted.
func TestLoopIgnoreErr(t *testing.T) {
	for _, f := range impls {
		t.Run(f.name, func(t *testing.T) {
			calls := []Call{{Trap: unix.SYS_LSEEK, Args: [6]uintptr{^uintptr(0), 0, unix.SEEK_SET}, Flags: IgnoreErr}}
			var count atomic.Uint64
			var stop atomic.Bool
			go func() {
				for count.Load() < 1000 {
					runtime.Gosched()
				}
				stop.Store(true)
			}()
			if e := run(t, f, calls, &count, 1, &stop); e != 0 {
				t.Fatalf("loop returned %v with IgnoreErr", e)
			}
			if n := count.Load(); n < 1000 {
				t.Fatalf("count %d, want >= 1000", n)
			}
		})
	}
}

// threadState is the state letter of thread tid (/proc/self/task/tid/stat).
func threadState(tid int) (byte, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, fmt.Errorf("unexpected stat %q", s)
	}
	return s[i+2], nil
}

// TestLoopRepeatsEINTR: a signal handled while the loop's thread sleeps in
// nanosleep(2) makes the call fail with EINTR (nanosleep is never
// restarted, SA_RESTART or not); the loop repeats the call instead of
// failing. The signal (SIGUSR1, with a handler through signal.Notify) is
// sent only once the thread is seen asleep, so it interrupts the call.
// The thread blocks SIGURG, as a task's does: otherwise the runtime's
// preemption signals, sent every 10 ms or so to a goroutine that runs
// that long, would interrupt every sleep.
func TestLoopRepeatsEINTR(t *testing.T) {
	for _, f := range impls {
		t.Run(f.name, func(t *testing.T) {
			ts := &unix.Timespec{Nsec: int64(200 * time.Millisecond)}
			var pin runtime.Pinner
			pin.Pin(ts)
			defer pin.Unpin()
			calls := []Call{{Trap: unix.SYS_NANOSLEEP, Args: [6]uintptr{uintptr(unsafe.Pointer(ts))}}}
			var count atomic.Uint64
			var stop atomic.Bool
			tid := make(chan int, 1)
			res := make(chan unix.Errno, 1)
			usr1 := make(chan os.Signal, 1)
			signal.Notify(usr1, unix.SIGUSR1)
			defer signal.Stop(usr1)
			go func() {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				var urg unix.Sigset_t
				urg.Val[(unix.SIGURG-1)/64] |= 1 << ((unix.SIGURG - 1) % 64)
				if err := unix.PthreadSigmask(unix.SIG_BLOCK, &urg, nil); err != nil {
					panic(err)
				}
				defer unix.PthreadSigmask(unix.SIG_UNBLOCK, &urg, nil)
				tid <- unix.Gettid()
				var e unix.Errno
				for !stop.Load() {
					if r := f.f(&calls[0], len(calls), &count, 1, &stop, 1); r != 0 {
						e = unix.Errno(r)
						break
					}
				}
				res <- e
			}()
			id := <-tid
			deadline := time.Now().Add(30 * time.Second)
			for {
				st, err := threadState(id)
				if err != nil {
					t.Fatal(err)
				}
				if st == 'S' {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the loop's thread never slept (state %c)", st)
				}
				time.Sleep(time.Millisecond)
			}
			if err := unix.Tgkill(os.Getpid(), id, unix.SIGUSR1); err != nil {
				t.Fatal(err)
			}
			stop.Store(true)
			select {
			case e := <-res:
				if e != 0 {
					t.Fatalf("loop returned %v, want the interrupted call repeated", e)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("loop did not end")
			}
			if n := count.Load(); n != 1 {
				t.Fatalf("count %d, want 1 (one completed sleep)", n)
			}
			select {
			case <-usr1:
			default:
				t.Fatal("SIGUSR1 was not delivered")
			}
		})
	}
}

// TestLoopLetsTheWorldStop: the loop returns to Go every Batch
// iterations, where its goroutine can be preempted, so a garbage
// collection (which stops the world) completes while it runs. A loop that
// never returned would hold the collection until it stops.
func TestLoopLetsTheWorldStop(t *testing.T) {
	calls := []Call{{Trap: unix.SYS_GETPPID, Flags: IgnoreErr}}
	var count atomic.Uint64
	var stop atomic.Bool
	done := make(chan unix.Errno, 1)
	go func() { done <- Loop(calls, &count, 1, &stop) }()
	for count.Load() == 0 {
		runtime.Gosched()
	}
	gc := make(chan struct{})
	go func() {
		runtime.GC()
		close(gc)
	}()
	select {
	case <-gc:
	case <-time.After(60 * time.Second):
		stop.Store(true)
		t.Fatal("a garbage collection did not complete in 60 s while the loop ran")
	}
	stop.Store(true)
	if e := <-done; e != 0 {
		t.Fatalf("loop failed: %v", e)
	}
}

// BenchmarkLoop is the cost of one getppid(2) iteration in the loop this
// architecture uses (loopN: on amd64 SYSCALL inline) and in the Go one
// (syscall.RawSyscall6 and the runtime's Syscall6: two user returns after
// every system call, the path the drivers took before), side by side.
func BenchmarkLoop(b *testing.B) {
	for _, f := range impls {
		b.Run(f.name, func(b *testing.B) {
			calls := []Call{{Trap: unix.SYS_GETPPID, Flags: IgnoreErr}}
			var count atomic.Uint64
			var stop atomic.Bool
			for done := 0; done < b.N; {
				n := min(b.N-done, Batch)
				f.f(&calls[0], len(calls), &count, 1, &stop, n)
				done += n
			}
			if count.Load() != uint64(b.N) {
				b.Fatalf("count %d after %d iterations", count.Load(), b.N)
			}
		})
	}
}
