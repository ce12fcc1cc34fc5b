// Package lockwitness records lock:contention_begin events with ftrace, in
// a private tracefs instance, as an independent witness for tests of the
// BPF contention profiler: a test runs its workload inside a witness window
// and fails only when the witness saw contention the profiler missed; when
// neither saw any (a hypervisor without paravirt spinlocks sends contended
// spinlocks through virt_spin_lock's test-and-set loop, which has no
// tracepoint; or the workers never overlapped) the test skips saying so.
//
// The witness changes no global tracing state: it creates its own instance
// (/sys/kernel/tracing/instances/<unique>), enables the event only there,
// and removes the instance when stopped. When tracefs is not mounted, it
// mounts it inside a throwaway mount namespace of one locked OS thread and
// keeps only a file descriptor of the mount, so the host's mount table
// never changes.
package lockwitness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Flags of lock:contention_begin (include/trace/events/lock.h), by the
// names ftrace prints.
var flagNames = map[string]uint32{
	"SPIN": 1 << 0, "READ": 1 << 1, "WRITE": 1 << 2, "RT": 1 << 3, "PERCPU": 1 << 4, "MUTEX": 1 << 5,
}

// FlagSpin is LCB_F_SPIN alone: a plain spinlock (not a rwlock, not a
// spinning mutex).
const FlagSpin = 1 << 0

// Event is one lock:contention_begin record.
type Event struct {
	TID  int // the contending thread (common_pid)
	TGID int // its process, when the trace recorded it (0: unknown)
	// Ours: of this process (by TGID; without one, TID was a thread of
	// this process when the witness stopped).
	Ours  bool
	Addr  uint64 // the lock's address (0 if the kernel printed it hashed)
	Flags uint32
	// Stack is the kernel call chain, innermost first, function names
	// without offsets, when Options.Stacks.
	Stack []string
}

// Called reports whether fn is on the event's stack.
func (e Event) Called(fn string) bool {
	for _, f := range e.Stack {
		if f == fn {
			return true
		}
	}
	return false
}

// Caller is the first function on the stack outside tracing and the
// locking code: the code that took the lock ("" without a stack).
func (e Event) Caller() string {
	for _, f := range e.Stack {
		if !isLockOrTrace(f) {
			return f
		}
	}
	return ""
}

func isLockOrTrace(fn string) bool {
	for _, p := range []string{"trace_", "perf_trace_", "__traceiter_", "__bpf_trace_",
		"_raw_", "__raw_", "do_raw_", "queued_", "native_queued_", "__pv_queued_", "pv_queued_",
		"rwsem_", "__rwsem_", "down_", "__down_", "mutex_", "__mutex_", "rt_mutex", "percpu_down_", "__percpu_down_"} {
		if strings.HasPrefix(fn, p) {
			return true
		}
	}
	return false
}

// Record is what the witness saw.
type Record struct {
	Events []Event
	// Lost counts events the ring buffer overwrote or dropped: the
	// witness may undercount, never overcount.
	Lost uint64
}

// Count returns how many events match.
func (r *Record) Count(match func(Event) bool) uint64 {
	var n uint64
	for _, e := range r.Events {
		if match(e) {
			n++
		}
	}
	return n
}

// Options choose what the witness records.
type Options struct {
	// Stacks records each event's kernel stack (the instance's stacktrace
	// option), to tell which call path contended.
	Stacks bool
	// BufferKB is the per-CPU ring buffer size; 0 means 4096.
	BufferKB int
}

// Witness is one enabled tracefs instance.
type Witness struct {
	dir     string // the instance directory
	release func()
	stopped bool
}

// ErrNoTracefs means the witness cannot run here: no tracefs, no
// lock:contention_begin event, or no privilege to create an instance.
var ErrNoTracefs = errors.New("no tracefs instance with lock:contention_begin")

var seq atomic.Uint64

// Start creates a private instance and enables lock:contention_begin in it.
func Start(opts Options) (*Witness, error) {
	root, release, err := tracefsRoot()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoTracefs, err)
	}
	if _, err := os.Stat(filepath.Join(root, "events/lock/contention_begin")); err != nil {
		release()
		return nil, fmt.Errorf("%w: the kernel has no lock:contention_begin event (needs 5.19 or later): %w", ErrNoTracefs, err)
	}
	dir := filepath.Join(root, "instances", fmt.Sprintf("syncord-witness-%d-%d", os.Getpid(), seq.Add(1)))
	if err := os.Mkdir(dir, 0o700); err != nil {
		release()
		return nil, fmt.Errorf("%w: create tracefs instance: %w", ErrNoTracefs, err)
	}
	w := &Witness{dir: dir, release: release}
	kb := opts.BufferKB
	if kb <= 0 {
		kb = 4096
	}
	settings := []struct{ file, value string }{
		{"buffer_size_kb", strconv.Itoa(kb)},
		{"options/hash-ptr", "0"}, // real addresses (kernels before 5.12 lack the option: boot with no_hash_pointers)
		{"options/stacktrace", map[bool]string{true: "1", false: "0"}[opts.Stacks]},
		// The tgid column tells our events from others' even after our
		// threads have exited (pinned worker threads end with their run).
		{"options/record-tgid", "1"},
		{"events/lock/contention_begin/enable", "1"},
	}
	for _, s := range settings {
		err := os.WriteFile(filepath.Join(dir, s.file), []byte(s.value), 0)
		optional := s.file == "options/hash-ptr" || s.file == "options/record-tgid"
		if err != nil && !(optional && errors.Is(err, os.ErrNotExist)) {
			w.Close()
			return nil, fmt.Errorf("%w: set %s in %s: %w", ErrNoTracefs, s.file, dir, err)
		}
	}
	return w, nil
}

// Stop disables the event, reads what the instance recorded and removes
// the instance.
func (w *Witness) Stop() (*Record, error) {
	if w.stopped {
		return nil, errors.New("lockwitness: stopped twice")
	}
	if err := os.WriteFile(filepath.Join(w.dir, "events/lock/contention_begin/enable"), []byte("0"), 0); err != nil {
		w.Close()
		return nil, fmt.Errorf("disable contention_begin in %s: %w", w.dir, err)
	}
	rec := &Record{}
	cpus, _ := filepath.Glob(filepath.Join(w.dir, "per_cpu/cpu*/stats"))
	for _, f := range cpus {
		b, err := os.ReadFile(f)
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		rec.Lost += parseLost(b)
	}
	b, err := os.ReadFile(filepath.Join(w.dir, "trace"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("read %s/trace: %w", w.dir, err)
	}
	rec.Events = parseTrace(b)
	pid := os.Getpid()
	for i := range rec.Events {
		if e := &rec.Events[i]; e.TGID > 0 {
			e.Ours = e.TGID == pid
		} else {
			_, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", e.TID))
			e.Ours = err == nil
		}
	}
	return rec, w.Close()
}

// Close removes the instance (which disables its event); closing twice is
// nil.
func (w *Witness) Close() error {
	if w.stopped {
		return nil
	}
	w.stopped = true
	defer w.release()
	// record-tgid holds a count in the kernel's sched_switch recording;
	// give it back before the instance goes.
	os.WriteFile(filepath.Join(w.dir, "events/lock/contention_begin/enable"), []byte("0"), 0)
	os.WriteFile(filepath.Join(w.dir, "options/record-tgid"), []byte("0"), 0)
	if err := os.Remove(w.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove tracefs instance %s: %w", w.dir, err)
	}
	return nil
}

// tracefsRoot finds a mounted tracefs or mounts a private one.
func tracefsRoot() (string, func(), error) {
	for _, d := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		if st, err := os.Stat(filepath.Join(d, "instances")); err == nil && st.IsDir() {
			return d, func() {}, nil
		}
	}
	return privateTracefs()
}

// privateTracefs mounts tracefs on a temporary directory inside a new mount
// namespace of one OS thread, opens it, and lets the thread exit: the mount
// lives on through the descriptor only, reachable as /proc/self/fd/N from
// every thread, and no mount ever shows in the host's namespace.
func privateTracefs() (string, func(), error) {
	mnt, err := os.MkdirTemp("", "syncord-tracefs-")
	if err != nil {
		return "", nil, err
	}
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	mount := func() {
		// Never unlocked: the thread, in its own mount namespace, ends
		// with this goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			ch <- result{-1, fmt.Errorf("unshare a mount namespace: %w (needs CAP_SYS_ADMIN)", err)}
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			ch <- result{-1, fmt.Errorf("make the private mount namespace private: %w", err)}
			return
		}
		if err := unix.Mount("tracefs", mnt, "tracefs", 0, ""); err != nil {
			ch <- result{-1, fmt.Errorf("mount tracefs: %w", err)}
			return
		}
		fd, err := unix.Open(mnt, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			err = fmt.Errorf("open the private tracefs mount: %w", err)
		}
		ch <- result{fd, err}
	}
	go func() {
		// Not on the main thread: Go never ends it (a goroutine that exits
		// locked to it wedges it instead), and /proc/self shows its mount
		// namespace. Holding the main thread here sends the mounting
		// goroutine to another one.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if unix.Gettid() != unix.Getpid() {
			mount() // locks once more: the thread ends with the goroutine
			return
		}
		done := make(chan struct{})
		go func() { defer close(done); mount() }()
		<-done
	}()
	r := <-ch
	os.Remove(mnt) // never mounted in our namespace
	if r.err != nil {
		return "", nil, r.err
	}
	return fmt.Sprintf("/proc/self/fd/%d", r.fd), func() { unix.Close(r.fd) }, nil
}

// parseLost sums "overrun" and "dropped events" of a per_cpu/cpuN/stats file.
func parseLost(b []byte) uint64 {
	var n uint64
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "overrun" && k != "dropped events") {
			continue
		}
		if x, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			n += x
		}
	}
	return n
}

// eventLine matches "  comm-tid  [cpu] flags  ts: contention_begin: ADDR (flags=SPIN|READ)";
// the greedy comm takes the last "-tid [" so commands with dashes parse.
var eventLine = regexp.MustCompile(`^\s*(.*)-(\d+)\s+(?:\(\s*([-\d]+)\)\s+)?\[\d+\].*?: contention_begin: (?:0x)?([0-9a-f]+) \(flags=([A-Za-z0-9|]*)\)\s*$`)

// ParseTrace reads the text of a tracefs trace file: each contention_begin
// line, and the " => func+off/len" lines of the <stack trace> record after
// it. Ours is left false. It is for traces recorded elsewhere (in an e2e
// guest); Stop parses its own.
func ParseTrace(b []byte) []Event { return parseTrace(b) }

func parseTrace(b []byte) []Event {
	var evs []Event
	inStack := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "<stack trace>") {
			inStack = len(evs) > 0
			continue
		}
		if fn, ok := strings.CutPrefix(strings.TrimLeft(line, " "), "=> "); ok {
			if inStack {
				fn, _, _ = strings.Cut(fn, "+")
				evs[len(evs)-1].Stack = append(evs[len(evs)-1].Stack, strings.TrimSpace(fn))
			}
			continue
		}
		inStack = false
		m := eventLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		tid, _ := strconv.Atoi(m[2])
		tgid, _ := strconv.Atoi(m[3]) // "-------" (unknown) gives 0
		e := Event{TID: tid, TGID: max(tgid, 0)}
		if len(m[4]) == 16 { // a hashed pointer prints 8 significant digits after 00000000
			if a, err := strconv.ParseUint(m[4], 16, 64); err == nil && a>>32 != 0 {
				e.Addr = a
			}
		}
		for _, f := range strings.Split(m[5], "|") {
			if v, ok := flagNames[f]; ok {
				e.Flags |= v
			} else if v, err := strconv.ParseUint(f, 0, 32); err == nil {
				e.Flags |= uint32(v)
			}
		}
		evs = append(evs, e)
	}
	return evs
}
