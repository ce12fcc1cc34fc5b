package wis

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/syncord/syncord/workloads"
	"github.com/syncord/syncord/workloads/internal/rawsys"
)

// A Test is one will-it-scale test case: its name, the description
// string the suite prints after "testcase:", and the task body.
type Test struct {
	Name        string
	Description string
	// prepare runs once before the tasks start (testcase_prepare).
	prepare func(e *env) error
	// body is the task's testcase(): setup, t.Ready(), loop.
	body func(e *env, t *workloads.Task) error
	// cleanup runs once after the tasks stopped.
	cleanup func(e *env)
}

// env is shared by the tasks of one test run.
type env struct {
	dir   string // private temp dir, removed after the run
	shm   string // private dir under /dev/shm (fallocate1), removed too
	tasks int
	// shared is the path of the shared file of the "Same file" tests.
	shared string
	// perTask are per-task paths prepared before the start (open1).
	perTask []string
	// sig is the SIGUSR1 channel of signal1.
	sig chan os.Signal
}

// futex(2) operations (linux/futex.h).
const (
	futexWait    = 0
	futexWake    = 1
	futexPrivate = 128
)

const (
	mem128M = 128 << 20
	mem1M   = 1 << 20
	buf4K   = 4096
)

// Tests returns every test, sorted by name.
func Tests() []*Test {
	out := make([]*Test, 0, len(wisTests))
	for _, t := range wisTests {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the test called name.
func Lookup(name string) (*Test, bool) {
	t, ok := wisTests[name]
	return t, ok
}

var wisTests = map[string]*Test{}

func addTest(t *Test) {
	if _, dup := wisTests[t.Name]; dup {
		panic("duplicate test " + t.Name)
	}
	wisTests[t.Name] = t
}

// loop runs op until the run stops, adding inc per successful iteration.
// op returns an errno; EINTR iterations are retried without counting.
func loop(t *workloads.Task, inc uint64, op func() unix.Errno) error {
	stop, c := t.StopFlag(), t.Count
	for !stop.Load() {
		if e := op(); e != 0 {
			if e == unix.EINTR {
				continue
			}
			return e
		}
		c.Add(inc)
	}
	return nil
}

// sysLoop waits at the start barrier, then issues calls in order and
// adds inc per iteration until the run stops (rawsys.Loop: the system
// calls of the loops that do nothing else, inline on amd64).
func sysLoop(t *workloads.Task, inc uint64, calls ...rawsys.Call) error {
	if !t.Ready() {
		return nil
	}
	if e := rawsys.Loop(calls, t.Count.Word(), inc, t.StopFlag()); e != 0 {
		return e
	}
	return nil
}

// call is a rawsys.Call of trap with up to six arguments.
func call(trap uintptr, args ...uintptr) rawsys.Call {
	c := rawsys.Call{Trap: trap}
	copy(c.Args[:], args)
	return c
}

// ignored is call whose result the suite ignores.
func ignored(trap uintptr, args ...uintptr) rawsys.Call {
	c := call(trap, args...)
	c.Flags = rawsys.IgnoreErr
	return c
}

func openShared(e *env, flags int) (int, error) {
	fd, err := unix.Open(e.shared, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", e.shared, err)
	}
	return fd, nil
}

func prepShared(size func(e *env) int) func(e *env) error {
	return func(e *env) (err error) {
		e.shared, err = rawsys.SharedFile(e.dir, size(e))
		return err
	}
}

func size4K(*env) int        { return buf4K }
func size1M(*env) int        { return mem1M }
func sizeEmpty(*env) int     { return 0 }
func sizePerTask(e *env) int { return rawsys.PageSize * e.tasks }

// lockLoop is lock1/lock2: F_SETLKW write-lock then unlock byte 0, +2.
// The loop sees the flock structs by address: heap objects, pinned while
// it runs.
func lockLoop(t *workloads.Task, fd int) error {
	wr := &unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 1}
	un := &unix.Flock_t{Type: unix.F_UNLCK, Whence: 0, Start: 0, Len: 1}
	var pin runtime.Pinner
	pin.Pin(wr)
	pin.Pin(un)
	defer pin.Unpin()
	return sysLoop(t, 2,
		call(unix.SYS_FCNTL, uintptr(fd), unix.F_SETLKW, uintptr(unsafe.Pointer(wr))),
		call(unix.SYS_FCNTL, uintptr(fd), unix.F_SETLKW, uintptr(unsafe.Pointer(un))))
}

// faultLoop maps size bytes (anonymous when fd < 0), writes one byte per
// page (+1 each) and unmaps, until stopped. One mapping at a time: a task
// holds at most size bytes.
func faultLoop(t *workloads.Task, fd int, flags int, size uintptr) error {
	if !t.Ready() {
		return nil
	}
	stop, c := t.StopFlag(), t.Count
	pg := uintptr(rawsys.PageSize)
	for !stop.Load() {
		p, err := rawsys.MmapRegion(size, unix.PROT_READ|unix.PROT_WRITE, flags, fd)
		if err != nil {
			return err
		}
		// Checking the stop flag per page (a plain load) ends the run
		// promptly instead of after up to a whole 128 MiB pass.
		for off := uintptr(0); off < size && !stop.Load(); off += pg {
			*(*byte)(unsafe.Add(p, off)) = 0
			c.Add(1)
		}
		if err := rawsys.MunmapRegion(p, size); err != nil {
			return err
		}
	}
	return nil
}

// fileOfSize returns an unlinked temp file truncated to size.
func fileOfSize(e *env, size int64) (int, error) {
	fd, err := rawsys.CreateUnlinked(e.dir)
	if err != nil {
		return -1, err
	}
	if err := unix.Ftruncate(fd, size); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("ftruncate: %w", err)
	}
	return fd, nil
}

// tlbLoop is tlb_flush1-3: per page write 1, madvise(MADV_DONTNEED) and
// check the value read back (want), +1 per page.
func tlbLoop(t *workloads.Task, fd, flags int, size uintptr, want byte) error {
	if !t.Ready() {
		return nil
	}
	stop, c := t.StopFlag(), t.Count
	pg := uintptr(rawsys.PageSize)
	for !stop.Load() {
		p, err := rawsys.MmapRegion(size, unix.PROT_READ|unix.PROT_WRITE, flags, fd)
		if err != nil {
			return err
		}
		for off := uintptr(0); off < size && !stop.Load(); off += pg {
			b := (*byte)(unsafe.Add(p, off))
			*b = 1
			if e := rawsys.MadviseDontneed(unsafe.Add(p, off), pg); e != 0 {
				rawsys.MunmapRegion(p, size)
				return fmt.Errorf("madvise: %w", e)
			}
			if *b != want {
				rawsys.MunmapRegion(p, size)
				return fmt.Errorf("page at offset %d reads %d after MADV_DONTNEED, want %d", off, *b, want)
			}
			c.Add(1)
		}
		if err := rawsys.MunmapRegion(p, size); err != nil {
			return err
		}
	}
	return nil
}

// futexLoop calls futex(op) on a word of its own page: the suite's word
// is on each thread's stack, so tasks never share the page whose
// reference count a shared futex's key lookup touches.
func futexLoop(t *workloads.Task, op, val uintptr) error {
	page, err := rawsys.MmapRegion(uintptr(rawsys.PageSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, -1)
	if err != nil {
		return err
	}
	defer rawsys.MunmapRegion(page, uintptr(rawsys.PageSize))
	*(*uint32)(page) = 0
	// The result is ignored, as in the suite (FUTEX_WAIT returns EAGAIN
	// at once: the word is 0, not val).
	return sysLoop(t, 1, ignored(unix.SYS_FUTEX, uintptr(page), op, val))
}

// rwPair is pipe1/unix1/eventfd1: write then read n bytes, +1.
func rwPair(t *workloads.Task, wfd, rfd int, n int) error {
	buf := new([8]byte)
	buf[0] = 1
	var pin runtime.Pinner
	pin.Pin(buf)
	defer pin.Unpin()
	p := uintptr(unsafe.Pointer(buf))
	return sysLoop(t, 1, call(unix.SYS_WRITE, uintptr(wfd), p, uintptr(n)), call(unix.SYS_READ, uintptr(rfd), p, uintptr(n)))
}

// readLoop is read1/read2: read 4 KiB, rewind at EOF, +1.
func readLoop(t *workloads.Task, fd int) error {
	buf := make([]byte, buf4K)
	if !t.Ready() {
		return nil
	}
	return loop(t, 1, func() unix.Errno {
		n, e := rawsys.Read(fd, &buf[0], buf4K)
		if e == 0 && n == 0 {
			e = rawsys.Lseek(fd, 0, unix.SEEK_SET)
		}
		return e
	})
}

// seekIOLoop is readseek*/writeseek*: lseek to off then a 4 KiB read or
// write that must be complete, +1.
func seekIOLoop(t *workloads.Task, fd int, off int64, write bool) error {
	buf := make([]byte, buf4K)
	if !t.Ready() {
		return nil
	}
	return loop(t, 1, func() unix.Errno {
		if e := rawsys.Lseek(fd, off, unix.SEEK_SET); e != 0 {
			return e
		}
		var n int
		var e unix.Errno
		if write {
			n, e = rawsys.Write(fd, &buf[0], buf4K)
		} else {
			n, e = rawsys.Read(fd, &buf[0], buf4K)
		}
		if e == 0 && n != buf4K {
			return unix.EIO
		}
		return e
	})
}

// pioLoop is pread*/pwrite*: a complete 4 KiB pread or pwrite at off, +1.
func pioLoop(t *workloads.Task, fd int, off int64, write bool) error {
	buf := make([]byte, buf4K)
	if !t.Ready() {
		return nil
	}
	return loop(t, 1, func() unix.Errno {
		var n int
		var e unix.Errno
		if write {
			n, e = rawsys.Pwrite(fd, &buf[0], buf4K, off)
		} else {
			n, e = rawsys.Pread(fd, &buf[0], buf4K, off)
		}
		if e == 0 && n != buf4K {
			return unix.EIO
		}
		return e
	})
}

// openCloseLoop opens path with flags and closes it (+1); with unlink it
// also unlinks (unlink1/2).
func openCloseLoop(t *workloads.Task, path string, flags int, unlink bool) error {
	p := rawsys.Cstr(path)
	if !t.Ready() {
		return nil
	}
	return loop(t, 1, func() unix.Errno {
		fd, e := rawsys.Open(p, flags|unix.O_CLOEXEC, 0o600)
		if e != 0 {
			return e
		}
		if e := rawsys.Close(fd); e != 0 {
			return e
		}
		if unlink {
			return rawsys.Unlink(p)
		}
		return 0
	})
}

// fallocLoop is fallocate1/2: fallocate 8 KiB steps up to 1 MiB, then
// truncate to 0, +1 per call.
func fallocLoop(t *workloads.Task, dir string) error {
	fd, err := rawsys.CreateUnlinked(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	const step = mem1M / 128
	var place int64
	if !t.Ready() {
		return nil
	}
	return loop(t, 1, func() unix.Errno {
		_, _, e := syscall.RawSyscall6(unix.SYS_FALLOCATE, uintptr(fd), 0, uintptr(place), step, 0, 0)
		if e != 0 && e != unix.EINTR {
			return e
		}
		place += step
		if place >= mem1M {
			if _, _, e := syscall.RawSyscall(unix.SYS_FTRUNCATE, uintptr(fd), 0, 0); e != 0 {
				return e
			}
			place = 0
		}
		return 0
	})
}

func withFd(fd int, err error, f func(fd int) error) error {
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return f(fd)
}

func unlinkedWith(e *env, size int) (int, error) {
	fd, err := rawsys.CreateUnlinked(e.dir)
	if err != nil {
		return -1, err
	}
	if err := rawsys.WriteZeros(fd, size); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// anon is an anonymous private mapping's flags.
const anon = unix.MAP_PRIVATE | unix.MAP_ANONYMOUS

func init() {
	lockTests()
	memoryTests()
	schedTests()
	fileTests()
	ipcTests()
	ioTests()
}

// lockTests registers the file lock tests (lock1, lock2).
func lockTests() {
	addTest(&Test{Name: "lock1", Description: "Separate file write lock/unlock",
		body: func(e *env, t *workloads.Task) error {
			fd, err := rawsys.CreateUnlinked(e.dir)
			return withFd(fd, err, func(fd int) error { return lockLoop(t, fd) })
		}})
	addTest(&Test{Name: "lock2", Description: "Same file write lock/unlock",
		prepare: prepShared(sizeEmpty),
		body: func(e *env, t *workloads.Task) error {
			fd, err := openShared(e, unix.O_RDWR)
			return withFd(fd, err, func(fd int) error { return lockLoop(t, fd) })
		}})
}

// memoryTests registers the address-space tests: page faults, mmap/munmap,
// brk, TLB flushes.
func memoryTests() {
	addTest(&Test{Name: "page_fault1", Description: "Anonymous memory page fault",
		body: func(e *env, t *workloads.Task) error { return faultLoop(t, -1, anon, mem128M) }})
	addTest(&Test{Name: "page_fault2", Description: "Separate file private mapping page fault",
		body: func(e *env, t *workloads.Task) error {
			fd, err := fileOfSize(e, mem128M)
			return withFd(fd, err, func(fd int) error { return faultLoop(t, fd, unix.MAP_PRIVATE, mem128M) })
		}})
	addTest(&Test{Name: "page_fault3", Description: "Separate file shared mapping page fault",
		body: func(e *env, t *workloads.Task) error {
			fd, err := fileOfSize(e, mem128M)
			return withFd(fd, err, func(fd int) error { return faultLoop(t, fd, unix.MAP_SHARED, mem128M) })
		}})

	mmapLoop := func(t *workloads.Task, fd, flags int) error {
		if !t.Ready() {
			return nil
		}
		stop, c := t.StopFlag(), t.Count
		for !stop.Load() {
			p, err := rawsys.MmapRegion(mem128M, unix.PROT_READ|unix.PROT_WRITE, flags, fd)
			if err != nil {
				return err
			}
			if err := rawsys.MunmapRegion(p, mem128M); err != nil {
				return err
			}
			c.Add(1)
		}
		return nil
	}
	addTest(&Test{Name: "mmap1", Description: "Anonymous memory mmap/munmap of 128MB",
		body: func(e *env, t *workloads.Task) error { return mmapLoop(t, -1, anon) }})
	addTest(&Test{Name: "mmap2", Description: "Separate file mmap/munmap of 128MB",
		body: func(e *env, t *workloads.Task) error {
			fd, err := fileOfSize(e, mem128M)
			return withFd(fd, err, func(fd int) error { return mmapLoop(t, fd, unix.MAP_PRIVATE) })
		}})

	addTest(&Test{Name: "brk1", Description: "brk increase/decrease of one page",
		body: func(e *env, t *workloads.Task) error {
			base, _, _ := syscall.RawSyscall(unix.SYS_BRK, 0, 0, 0)
			pg := uintptr(rawsys.PageSize)
			return sysLoop(t, 2, ignored(unix.SYS_BRK, base+pg), ignored(unix.SYS_BRK, base))
		}})

	addTest(&Test{Name: "tlb_flush1", Description: "TLB flush of separated file private mapping",
		body: func(e *env, t *workloads.Task) error {
			fd, err := fileOfSize(e, mem128M)
			return withFd(fd, err, func(fd int) error { return tlbLoop(t, fd, unix.MAP_PRIVATE, mem128M, 0) })
		}})
	addTest(&Test{Name: "tlb_flush2", Description: "TLB flush of anonymous memory private mapping",
		body: func(e *env, t *workloads.Task) error { return tlbLoop(t, -1, anon, mem1M, 0) }})
	addTest(&Test{Name: "tlb_flush3", Description: "TLB flush of separated file shared mapping",
		body: func(e *env, t *workloads.Task) error {
			fd, err := fileOfSize(e, mem128M)
			return withFd(fd, err, func(fd int) error { return tlbLoop(t, fd, unix.MAP_SHARED, mem128M, 1) })
		}})
}

// schedTests registers the scheduler, futex and signal tests and getppid1.
func schedTests() {
	addTest(&Test{Name: "futex1", Description: "futex(FUTEX_WAKE)",
		body: func(e *env, t *workloads.Task) error { return futexLoop(t, futexWake, 1) }})
	addTest(&Test{Name: "futex2", Description: "futex(FUTEX_WAIT)",
		body: func(e *env, t *workloads.Task) error { return futexLoop(t, futexWait, 1) }})
	addTest(&Test{Name: "futex3", Description: "futex(FUTEX_WAKE_PRIVATE)",
		body: func(e *env, t *workloads.Task) error { return futexLoop(t, futexWake|futexPrivate, 1) }})
	addTest(&Test{Name: "futex4", Description: "futex(FUTEX_WAIT_PRIVATE)",
		body: func(e *env, t *workloads.Task) error { return futexLoop(t, futexWait|futexPrivate, 1) }})

	addTest(&Test{Name: "context_switch1", Description: "Context switch via pipes", body: contextSwitch})

	addTest(&Test{Name: "getppid1", Description: "getppid",
		body: func(e *env, t *workloads.Task) error { return sysLoop(t, 1, ignored(unix.SYS_GETPPID)) }})

	addTest(&Test{Name: "sched_yield", Description: "sched_yield",
		body: func(e *env, t *workloads.Task) error { return sysLoop(t, 1, call(unix.SYS_SCHED_YIELD)) }})

	addTest(&Test{Name: "signal1", Description: "signal delivery",
		prepare: func(e *env) error {
			e.sig = make(chan os.Signal, 1)
			signal.Notify(e.sig, syscall.SIGUSR1)
			return nil
		},
		cleanup: func(e *env) {
			if e.sig != nil {
				signal.Stop(e.sig)
			}
		},
		body: func(e *env, t *workloads.Task) error {
			pid, tid := uintptr(unix.Getpid()), uintptr(unix.Gettid())
			if !t.Ready() {
				return nil
			}
			return loop(t, 1, func() unix.Errno {
				// raise(3) is tgkill on the calling thread.
				_, _, e := syscall.RawSyscall(unix.SYS_TGKILL, pid, tid, uintptr(syscall.SIGUSR1))
				return e
			})
		}})
}

// fileTests registers the file and directory tests: dup, fallocate, lseek,
// open, unlink.
func fileTests() {
	addTest(&Test{Name: "dup1", Description: "Separate file dup/close",
		body: func(e *env, t *workloads.Task) error {
			fd, _, err := rawsys.CreateTemp(e.dir)
			return withFd(fd, err, func(fd int) error {
				if !t.Ready() {
					return nil
				}
				return loop(t, 1, func() unix.Errno {
					fd2, _, e := syscall.RawSyscall(unix.SYS_DUP, uintptr(fd), 0, 0)
					if e != 0 {
						return e
					}
					return rawsys.Close(int(fd2))
				})
			})
		}})

	addTest(&Test{Name: "fallocate1", Description: "Separate file fallocate against tmpfs",
		prepare: func(e *env) error {
			d, err := os.MkdirTemp("/dev/shm", "willitscale.")
			if err != nil {
				return fmt.Errorf("fallocate1 needs a tmpfs at /dev/shm: %w (mount one: mount -t tmpfs tmpfs /dev/shm)", err)
			}
			e.shm = d
			return nil
		},
		body: func(e *env, t *workloads.Task) error { return fallocLoop(t, e.shm) }})
	addTest(&Test{Name: "fallocate2", Description: "Separate file fallocate",
		body: func(e *env, t *workloads.Task) error { return fallocLoop(t, e.dir) }})

	lseekLoop := func(t *workloads.Task, fd int) error {
		return sysLoop(t, 1, call(unix.SYS_LSEEK, uintptr(fd), 0, unix.SEEK_SET))
	}
	addTest(&Test{Name: "lseek1", Description: "Separate file lseek",
		body: func(e *env, t *workloads.Task) error {
			fd, err := unlinkedWith(e, buf4K)
			return withFd(fd, err, func(fd int) error { return lseekLoop(t, fd) })
		}})
	addTest(&Test{Name: "lseek2", Description: "Same file lseek", prepare: prepShared(size4K),
		body: func(e *env, t *workloads.Task) error {
			fd, err := openShared(e, unix.O_RDWR)
			return withFd(fd, err, func(fd int) error { return lseekLoop(t, fd) })
		}})

	addTest(&Test{Name: "open1", Description: "Separate file open/close",
		prepare: func(e *env) error {
			for range e.tasks {
				p, err := rawsys.SharedFile(e.dir, 0)
				if err != nil {
					return err
				}
				e.perTask = append(e.perTask, p)
			}
			return nil
		},
		body: func(e *env, t *workloads.Task) error { return openCloseLoop(t, e.perTask[t.ID], unix.O_RDWR, false) }})
	addTest(&Test{Name: "open2", Description: "Separate file open/close in different directories",
		body: func(e *env, t *workloads.Task) error {
			d, err := os.MkdirTemp(e.dir, "willitscale.")
			if err != nil {
				return err
			}
			p := filepath.Join(d, "willitscale")
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				return err
			}
			return openCloseLoop(t, p, unix.O_RDWR, false)
		}})
	addTest(&Test{Name: "open3", Description: "Same file open/close", prepare: prepShared(sizeEmpty),
		body: func(e *env, t *workloads.Task) error { return openCloseLoop(t, e.shared, unix.O_RDWR, false) }})

	addTest(&Test{Name: "unlink1", Description: "Separate file open/close/unlink",
		body: func(e *env, t *workloads.Task) error {
			return openCloseLoop(t, rawsys.TempName(e.dir, "willitscale"), unix.O_RDWR|unix.O_CREAT, true)
		}})
	// The suite's unlink2 reuses open2's description.
	addTest(&Test{Name: "unlink2", Description: "Separate file open/close in different directories",
		body: func(e *env, t *workloads.Task) error {
			d, err := os.MkdirTemp(e.dir, "willitscale.")
			if err != nil {
				return err
			}
			return openCloseLoop(t, filepath.Join(d, "willitscale"), unix.O_RDWR|unix.O_CREAT, true)
		}})
}

// ipcTests registers the pipe, socket, eventfd and poll tests.
func ipcTests() {
	addTest(&Test{Name: "eventfd1", Description: "eventfd read/write of 8 bytes",
		body: func(e *env, t *workloads.Task) error {
			fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
			if err != nil {
				return fmt.Errorf("eventfd: %w", err)
			}
			defer unix.Close(fd)
			return rwPair(t, fd, fd, 8)
		}})

	addTest(&Test{Name: "pipe1", Description: "pipe read/write",
		body: func(e *env, t *workloads.Task) error {
			var p [2]int
			if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
				return fmt.Errorf("pipe: %w", err)
			}
			defer unix.Close(p[0])
			defer unix.Close(p[1])
			return rwPair(t, p[1], p[0], 1)
		}})
	addTest(&Test{Name: "unix1", Description: "unix domain socket read/write",
		body: func(e *env, t *workloads.Task) error {
			p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("socketpair: %w", err)
			}
			defer unix.Close(p[0])
			defer unix.Close(p[1])
			return rwPair(t, p[1], p[0], 1)
		}})

	addTest(&Test{Name: "poll1", Description: "poll of 1 fd", body: func(e *env, t *workloads.Task) error { return pollLoop(e, t, 1) }})
	addTest(&Test{Name: "poll2", Description: "poll of 128 fds", prepare: raiseNofile,
		body: func(e *env, t *workloads.Task) error { return pollLoop(e, t, 128) }})
}

// ioTests registers the read and write tests (read, pread, readseek, write,
// pwrite, writeseek).
func ioTests() {
	addTest(&Test{Name: "pread1", Description: "Separate file pread",
		body: func(e *env, t *workloads.Task) error {
			fd, err := unlinkedWith(e, buf4K)
			return withFd(fd, err, func(fd int) error { return pioLoop(t, fd, 0, false) })
		}})
	addTest(&Test{Name: "pread2", Description: "Same file pread", prepare: prepShared(size4K),
		body: func(e *env, t *workloads.Task) error {
			fd, err := openShared(e, unix.O_RDONLY)
			return withFd(fd, err, func(fd int) error { return pioLoop(t, fd, 0, false) })
		}})
	addTest(&Test{Name: "pread3", Description: "Same file pread to different offsets", prepare: prepShared(sizePerTask),
		body: func(e *env, t *workloads.Task) error {
			fd, err := openShared(e, unix.O_RDONLY)
			return withFd(fd, err, func(fd int) error { return pioLoop(t, fd, int64(rawsys.PageSize*t.ID), false) })
		}})
	addTest(&Test{Name: "pwrite1", Description: "Separate file pwrite",
		body: func(e *env, t *workloads.Task) error {
			fd, err := rawsys.CreateUnlinked(e.dir)
			return withFd(fd, err, func(fd int) error { return pioLoop(t, fd, 0, true) })
		}})
	addTest(&Test{Name: "pwrite2", Description: "Same file pwrite", prepare: prepShared(size4K),
		body: func(e *env, t *workloads.Task) error {
			fd, err := openShared(e, unix.O_RDWR)
			return withFd(fd, err, func(fd int) error { return pioLoop(t, fd, 0, true) })
		}})
	addTest(&Test{Name: "pwrite3", Description: "Same file pwrite to different offsets", prepare: prepShared(sizePerTask),
		body: func(e *env, t *workloads.Task) error {
			fd, err := openShared(e, unix.O_RDWR)
			return withFd(fd, err, func(fd int) error { return pioLoop(t, fd, int64(rawsys.PageSize*t.ID), true) })
		}})

	addTest(&Test{Name: "read1", Description: "Separate file read",
		body: func(e *env, t *workloads.Task) error {
			fd, err := unlinkedWith(e, mem1M)
			return withFd(fd, err, func(fd int) error { return readLoop(t, fd) })
		}})
	addTest(&Test{Name: "read2", Description: "Same file read", prepare: prepShared(size1M),
		body: func(e *env, t *workloads.Task) error {
			fd, err := openShared(e, unix.O_RDONLY)
			return withFd(fd, err, func(fd int) error { return readLoop(t, fd) })
		}})

	addTest(&Test{Name: "readseek1", Description: "Separate file seek+read",
		body: func(e *env, t *workloads.Task) error {
			fd, err := unlinkedWith(e, buf4K)
			return withFd(fd, err, func(fd int) error { return seekIOLoop(t, fd, 0, false) })
		}})
	addTest(&Test{Name: "readseek2", Description: "Same file seek+read", prepare: prepShared(size4K),
		body: func(e *env, t *workloads.Task) error {
			fd, err := openShared(e, unix.O_RDWR)
			return withFd(fd, err, func(fd int) error { return seekIOLoop(t, fd, 0, false) })
		}})
	addTest(&Test{Name: "readseek3", Description: "Same file seek+read to different offsets", prepare: prepShared(sizePerTask),
		body: func(e *env, t *workloads.Task) error {
			fd, err := openShared(e, unix.O_RDONLY)
			return withFd(fd, err, func(fd int) error { return seekIOLoop(t, fd, int64(rawsys.PageSize*t.ID), false) })
		}})

	addTest(&Test{Name: "write1", Description: "Separate file write",
		body: func(e *env, t *workloads.Task) error {
			fd, err := rawsys.CreateUnlinked(e.dir)
			return withFd(fd, err, func(fd int) error {
				buf := make([]byte, buf4K)
				size := 0
				if !t.Ready() {
					return nil
				}
				return loop(t, 1, func() unix.Errno {
					n, e := rawsys.Write(fd, &buf[0], buf4K)
					if e != 0 {
						return e
					}
					if size += n; size >= mem1M {
						size = 0
						return rawsys.Lseek(fd, 0, unix.SEEK_SET)
					}
					return 0
				})
			})
		}})
	addTest(&Test{Name: "writeseek1", Description: "Separate file seek+write",
		body: func(e *env, t *workloads.Task) error {
			fd, err := rawsys.CreateUnlinked(e.dir)
			return withFd(fd, err, func(fd int) error { return seekIOLoop(t, fd, 0, true) })
		}})
	// The suite's writeseek2 describes itself as a read (sic).
	addTest(&Test{Name: "writeseek2", Description: "Same file seek+read to same offset", prepare: prepShared(size4K),
		body: func(e *env, t *workloads.Task) error {
			fd, err := openShared(e, unix.O_RDWR)
			return withFd(fd, err, func(fd int) error { return seekIOLoop(t, fd, 0, true) })
		}})
	addTest(&Test{Name: "writeseek3", Description: "Same file seek+write to different offsets", prepare: prepShared(sizePerTask),
		body: func(e *env, t *workloads.Task) error {
			fd, err := openShared(e, unix.O_RDWR)
			return withFd(fd, err, func(fd int) error { return seekIOLoop(t, fd, int64(rawsys.PageSize*t.ID), true) })
		}})
}

// contextSwitch is context_switch1: the task and a partner thread on the
// same CPU ping-pong one byte over two pipes, +2 per round trip. Only the
// task counts.
func contextSwitch(e *env, t *workloads.Task) error {
	var p1, p2 [2]int
	if err := unix.Pipe2(p1[:], unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("pipe: %w", err)
	}
	if err := unix.Pipe2(p2[:], unix.O_CLOEXEC); err != nil {
		unix.Close(p1[0])
		unix.Close(p1[1])
		return fmt.Errorf("pipe: %w", err)
	}
	var wg sync.WaitGroup
	// The partner inherits the task's affinity, as a pthread created by
	// the pinned thread does.
	var mask unix.CPUSet
	if err := unix.SchedGetaffinity(0, &mask); err != nil {
		return fmt.Errorf("sched_getaffinity: %w", err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread()
		unix.SchedSetaffinity(0, &mask)
		var b [1]byte
		for {
			n, err := unix.Read(p1[0], b[:])
			if err == unix.EINTR {
				continue
			}
			if n != 1 {
				return // EOF: the task closed its end
			}
			for {
				if _, err := unix.Write(p2[1], b[:]); err != unix.EINTR {
					break
				}
			}
		}
	}()
	defer func() {
		unix.Close(p1[1]) // partner sees EOF
		wg.Wait()
		unix.Close(p1[0])
		unix.Close(p2[0])
		unix.Close(p2[1])
	}()
	if !t.Ready() {
		return nil
	}
	var b [1]byte
	stop, c := t.StopFlag(), t.Count
	for !stop.Load() {
		if _, err := unix.Write(p1[1], b[:]); err != nil {
			if err == unix.EINTR {
				continue
			}
			return fmt.Errorf("write pipe: %w", err)
		}
		for {
			n, err := unix.Read(p2[0], b[:])
			if err == unix.EINTR {
				continue
			}
			if err != nil || n != 1 {
				return fmt.Errorf("read pipe: %d bytes, %v", n, err)
			}
			break
		}
		c.Add(2)
	}
	return nil
}

// pollLoop is poll1/poll2: poll nfds unlinked temp files for POLLOUT with
// a zero timeout, +1. ppoll(2) is used (what poll(3) is on arm64).
func pollLoop(e *env, t *workloads.Task, nfds int) error {
	pfds := make([]unix.PollFd, nfds)
	defer func() {
		for _, p := range pfds {
			if p.Fd > 0 {
				unix.Close(int(p.Fd))
			}
		}
	}()
	for i := range pfds {
		fd, err := rawsys.CreateUnlinked(e.dir)
		if err != nil {
			return err
		}
		pfds[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLOUT}
	}
	var ts unix.Timespec
	if !t.Ready() {
		return nil
	}
	return loop(t, 1, func() unix.Errno {
		_, _, e := syscall.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&pfds[0])), uintptr(nfds), uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		return e
	})
}

// raiseNofile makes room for poll2's 128 fds per task (the suite sets
// RLIMIT_NOFILE to (128+10) per CPU).
func raiseNofile(e *env) error {
	need := uint64((128 + 10) * e.tasks)
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return fmt.Errorf("getrlimit NOFILE: %w", err)
	}
	if rl.Cur >= need {
		return nil
	}
	rl.Cur = max(need, rl.Cur)
	if rl.Max < rl.Cur {
		rl.Max = rl.Cur
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return fmt.Errorf("raise RLIMIT_NOFILE to %d for %d tasks: %w (raise it with ulimit -n)", need, e.tasks, err)
	}
	return nil
}
