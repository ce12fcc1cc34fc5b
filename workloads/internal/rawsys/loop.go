package rawsys

import (
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A Call is one system call of a Loop iteration: its number, its six
// arguments and flags. Pointer arguments must point to memory that does
// not move and stays alive while the loop runs (heap objects kept by the
// caller, runtime.Pinner, or a mapping of its own): the loop sees only
// their addresses.
type Call struct {
	Trap  uintptr
	Args  [6]uintptr
	Flags uintptr
}

// IgnoreErr in Call.Flags counts the call whatever it returns (the suite
// ignores the results of futex, getppid and brk). Without it a failure
// other than EINTR ends the loop with its errno, and EINTR repeats the
// call.
const IgnoreErr = 1

// callSize is the layout the assembly loop walks: Trap at 0, Args at 8,
// Flags at 56.
const callSize = 64

var _ [callSize - unsafe.Sizeof(Call{})]byte
var _ [unsafe.Sizeof(Call{}) - callSize]byte

// Batch is how many iterations one call of the inner loop runs before it
// returns to Go, where the goroutine can be preempted (a stop-the-world
// waits for it at most that long; the loop itself, system calls included,
// is never a preemption point).
const Batch = 256

// Loop runs calls in order and then adds inc to count, until stop is set
// or a call fails; it returns the failing call's errno, 0 when stopped.
// count must have a single writer (this loop): on amd64 the add is a plain
// one, as will-it-scale's (*iterations)++, which an atomic load elsewhere
// reads whole.
//
// Why: a will-it-scale iteration is one or two system calls of a few
// hundred nanoseconds, and the kernel's return-stack-buffer filling on
// system call exit (spectre_v2 "RSB filling", SRSO "Safe RET") makes each
// user return after a system call mispredict. The Go path
// (syscall.RawSyscall6, then the runtime's Syscall6) returns twice after
// every call, glibc's syscall(3) once; on amd64 this loop issues the
// SYSCALL instruction inline and returns after none.
func Loop(calls []Call, count *atomic.Uint64, inc uint64, stop *atomic.Bool) unix.Errno {
	if len(calls) == 0 {
		panic("rawsys.Loop: no calls")
	}
	for !stop.Load() {
		if e := loopN(&calls[0], len(calls), count, inc, stop, Batch); e != 0 {
			return unix.Errno(e)
		}
	}
	return 0
}

// loopGo is the inner loop in Go (architectures without the assembly one,
// and the reference the amd64 one is tested against): up to iters
// iterations, ending early when stop is set or a call fails.
func loopGo(calls *Call, ncalls int, count *atomic.Uint64, inc uint64, stop *atomic.Bool, iters int) uintptr {
	cs := unsafe.Slice(calls, ncalls)
	for ; iters > 0; iters-- {
		for i := 0; i < len(cs); i++ {
			c := &cs[i]
			_, _, e := syscall.RawSyscall6(c.Trap, c.Args[0], c.Args[1], c.Args[2], c.Args[3], c.Args[4], c.Args[5])
			if e != 0 && c.Flags&IgnoreErr == 0 {
				if e == unix.EINTR {
					i--
					continue
				}
				return uintptr(e)
			}
		}
		count.Add(inc)
		if stop.Load() {
			break
		}
	}
	return 0
}
