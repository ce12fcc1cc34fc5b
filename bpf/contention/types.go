package contention

import (
	"fmt"
	"sort"
	"strings"
)

// Flags of lock:contention_begin (include/trace/events/lock.h).
const (
	FlagSpin   = 1 << 0 // LCB_F_SPIN: the waiter spins
	FlagRead   = 1 << 1 // LCB_F_READ: reader of a rwlock, rwsem or percpu-rwsem
	FlagWrite  = 1 << 2 // LCB_F_WRITE: writer of one
	FlagRT     = 1 << 3 // LCB_F_RT: rt_mutex based (PREEMPT_RT)
	FlagPerCPU = 1 << 4 // LCB_F_PERCPU: percpu-rwsem
	FlagMutex  = 1 << 5 // LCB_F_MUTEX: mutex (with FlagSpin while it spins optimistically)
)

// TypeName names the kind of lock behind the contention_begin flags seen on
// it (ORed over all its contentions):
//
//	spinlock, rwlock:R, rwlock:W, rwsem:R, rwsem:W, pcpu-sem:R, pcpu-sem:W,
//	mutex, rtmutex, rt-rw:R, rt-rw:W
//
// A lock contended both as reader and writer drops the ":R"/":W" suffix;
// flags 0 is "unknown".
func TypeName(flags uint32) string {
	rw := ""
	switch flags & (FlagRead | FlagWrite) {
	case FlagRead:
		rw = ":R"
	case FlagWrite:
		rw = ":W"
	}
	switch {
	case flags&FlagMutex != 0:
		return "mutex"
	case flags&FlagRT != 0:
		if flags&(FlagRead|FlagWrite) != 0 {
			return "rt-rw" + rw
		}
		return "rtmutex"
	case flags&FlagPerCPU != 0:
		return "pcpu-sem" + rw
	case flags&FlagSpin != 0:
		if flags&(FlagRead|FlagWrite) != 0 {
			return "rwlock" + rw
		}
		return "spinlock"
	case flags&(FlagRead|FlagWrite) != 0:
		return "rwsem" + rw
	}
	return "unknown"
}

// TypeNames lists the names ParseTypes accepts.
func TypeNames() []string {
	seen := map[string]bool{}
	for f := uint32(1); f < 64; f++ {
		n := TypeName(f)
		seen[n] = true
		if i := strings.IndexByte(n, ':'); i > 0 {
			seen[n[:i]] = true
		}
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ParseTypes turns a comma-separated list of lock types ("spinlock",
// "rwsem", "rwsem:W", "mutex,spinlock", ...) into the allowed-flags bitmap
// the BPF program filters with: bit f is set when a contention_begin with
// flags f is of one of the types. A name without ":R"/":W" matches both.
// The empty string allows everything.
func ParseTypes(list string) (uint64, error) {
	if strings.TrimSpace(list) == "" {
		return ^uint64(0), nil
	}
	var mask uint64
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		var m uint64
		for f := uint32(0); f < 64; f++ {
			n := TypeName(f)
			if n == t || strings.HasPrefix(n, t+":") {
				m |= 1 << f
			}
		}
		if m == 0 || t == "unknown" {
			return 0, fmt.Errorf("unknown lock type %q (one of %s)", t, strings.Join(TypeNames(), ", "))
		}
		mask |= m
	}
	return mask, nil
}
