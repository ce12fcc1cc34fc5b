// Package rawsys holds the system call helpers of the workload drivers'
// hot loops (will-it-scale, FxMark): raw calls on preallocated arguments.
package rawsys

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Helpers for the hot loops: raw system calls on preallocated arguments,
// so a loop iteration allocates nothing and never enters the Go scheduler
// (tasks have a P each; see Launch). Calls that may block for long (pipe
// reads of context_switch1) use unix.Syscall instead. The raw calls go
// straight to syscall.RawSyscall6 (unix.RawSyscall* are assembly stubs
// that jump there through two ABI wrappers). Loops of nothing but system
// calls with fixed arguments use Loop (loop.go), which issues them inline.

var PageSize = unix.Getpagesize()

// Cstr returns a NUL-terminated copy of s for raw path arguments.
func Cstr(s string) *byte {
	p, err := unix.BytePtrFromString(s)
	if err != nil {
		// Paths here are built by us and never contain NUL.
		panic(err)
	}
	return p
}

// tmpCounter makes temp file names unique within a process.
var tmpCounter atomic.Uint64

// TempName returns a fresh path in dir named like mkstemp's template.
func TempName(dir, prefix string) string {
	return filepath.Join(dir, fmt.Sprintf("%s.%d.%06d", prefix, os.Getpid(), tmpCounter.Add(1)))
}

// CreateTemp creates a new file in dir (O_RDWR|O_CREAT|O_EXCL, 0600, as
// mkstemp) and returns its fd and path.
func CreateTemp(dir string) (int, string, error) {
	p := TempName(dir, "willitscale")
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return -1, "", fmt.Errorf("create temp file %s: %w", p, err)
	}
	return fd, p, nil
}

// CreateUnlinked creates a temp file and unlinks it at once (the tests'
// mkstemp + unlink): it disappears with its last fd.
func CreateUnlinked(dir string) (int, error) {
	fd, p, err := CreateTemp(dir)
	if err != nil {
		return -1, err
	}
	if err := unix.Unlink(p); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("unlink %s: %w", p, err)
	}
	return fd, nil
}

// WriteZeros writes n zero bytes to fd.
func WriteZeros(fd int, n int) error {
	buf := make([]byte, min(n, 1<<20))
	for n > 0 {
		w, err := unix.Write(fd, buf[:min(n, len(buf))])
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		n -= w
	}
	return nil
}

// SharedFile creates a named file of size zero bytes in dir (the tests'
// testcase_prepare) and returns its path; it is removed with dir.
func SharedFile(dir string, size int) (string, error) {
	fd, p, err := CreateTemp(dir)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	if err := WriteZeros(fd, size); err != nil {
		return "", fmt.Errorf("fill %s: %w", p, err)
	}
	return p, nil
}

func Open(path *byte, flags int, mode uint32) (int, unix.Errno) {
	for {
		r, _, e := syscall.RawSyscall6(unix.SYS_OPENAT, atFDCWD, uintptr(unsafe.Pointer(path)), uintptr(flags), uintptr(mode), 0, 0)
		if e != unix.EINTR {
			return int(r), e
		}
	}
}

func Close(fd int) unix.Errno {
	_, _, e := syscall.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
	return e
}

func Unlink(path *byte) unix.Errno {
	_, _, e := syscall.RawSyscall(unix.SYS_UNLINKAT, atFDCWD, uintptr(unsafe.Pointer(path)), 0)
	return e
}

func Rename(from, to *byte) unix.Errno {
	_, _, e := syscall.RawSyscall6(unix.SYS_RENAMEAT, atFDCWD, uintptr(unsafe.Pointer(from)), atFDCWD, uintptr(unsafe.Pointer(to)), 0, 0)
	return e
}

func Read(fd int, p *byte, n int) (int, unix.Errno) {
	for {
		r, _, e := syscall.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(p)), uintptr(n))
		if e != unix.EINTR {
			return int(r), e
		}
	}
}

func Write(fd int, p *byte, n int) (int, unix.Errno) {
	for {
		r, _, e := syscall.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(p)), uintptr(n))
		if e != unix.EINTR {
			return int(r), e
		}
	}
}

func Pread(fd int, p *byte, n int, off int64) (int, unix.Errno) {
	for {
		r, _, e := syscall.RawSyscall6(unix.SYS_PREAD64, uintptr(fd), uintptr(unsafe.Pointer(p)), uintptr(n), uintptr(off), 0, 0)
		if e != unix.EINTR {
			return int(r), e
		}
	}
}

func Pwrite(fd int, p *byte, n int, off int64) (int, unix.Errno) {
	for {
		r, _, e := syscall.RawSyscall6(unix.SYS_PWRITE64, uintptr(fd), uintptr(unsafe.Pointer(p)), uintptr(n), uintptr(off), 0, 0)
		if e != unix.EINTR {
			return int(r), e
		}
	}
}

func Lseek(fd int, off int64, whence int) unix.Errno {
	_, _, e := syscall.RawSyscall(unix.SYS_LSEEK, uintptr(fd), uintptr(off), uintptr(whence))
	return e
}

func Stat(path *byte, st *unix.Stat_t) unix.Errno {
	_, _, e := syscall.RawSyscall6(sysFstatat, atFDCWD, uintptr(unsafe.Pointer(path)), uintptr(unsafe.Pointer(st)), 0, 0, 0)
	return e
}

// mapping is an mmap'd region addressed by pointer (no slice header, no
// allocation per map).
func MmapRegion(size uintptr, prot, flags, fd int) (unsafe.Pointer, error) {
	p, err := unix.MmapPtr(fd, 0, nil, size, prot, flags)
	if err != nil {
		return nil, fmt.Errorf("mmap %d bytes: %w", size, err)
	}
	return p, nil
}

func MunmapRegion(p unsafe.Pointer, size uintptr) error {
	if err := unix.MunmapPtr(p, size); err != nil {
		return fmt.Errorf("munmap: %w", err)
	}
	return nil
}

func MadviseDontneed(p unsafe.Pointer, n uintptr) unix.Errno {
	_, _, e := syscall.RawSyscall(unix.SYS_MADVISE, uintptr(p), n, unix.MADV_DONTNEED)
	return e
}

// atFDCWD is AT_FDCWD (-100) as a system call argument.
var atFDCWD = func() uintptr { fd := unix.AT_FDCWD; return uintptr(fd) }()
