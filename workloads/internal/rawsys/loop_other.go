//go:build !amd64

package rawsys

import "sync/atomic"

func loopN(calls *Call, ncalls int, count *atomic.Uint64, inc uint64, stop *atomic.Bool, iters int) uintptr {
	return loopGo(calls, ncalls, count, inc, stop, iters)
}
