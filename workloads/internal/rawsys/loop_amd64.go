package rawsys

import (
	"sync/atomic"
	"unsafe"
)

// loopAsm is the inner loop in assembly (loop_amd64.s): loopGo's
// semantics with SYSCALL inline. count and stop are the words of an
// atomic.Uint64 and an atomic.Bool (their values are their only fields).
//
//go:noescape
func loopAsm(calls *Call, ncalls int, count *uint64, inc uint64, stop *uint32, iters int) (errno uintptr)

// loopN is not inlined so that its prologue, which checks the stack
// bound, is a cooperative preemption point between batches: the assembly
// loop is not one, and an asynchronous preemption signal almost always
// lands there.
//
//go:noinline
func loopN(calls *Call, ncalls int, count *atomic.Uint64, inc uint64, stop *atomic.Bool, iters int) uintptr {
	return loopAsm(calls, ncalls, (*uint64)(unsafe.Pointer(count)), inc, (*uint32)(unsafe.Pointer(stop)), iters)
}
