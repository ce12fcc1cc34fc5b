package contention

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/syncord/syncord/bpf"
	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/kernel"
)

// ErrNoTracepoints means the kernel lacks lock:contention_begin/_end
// (added in Linux 5.19; the SynCord 5.4 kernels do not have them). It wraps
// ebpf.ErrNotSupported.
var ErrNoTracepoints = fmt.Errorf("no lock:contention_begin/contention_end tracepoints (need Linux 5.19+; on a SynCord kernel use the SynCord lockstat policy: syncord policy install lockstat): %w", ebpf.ErrNotSupported)

// Defaults for the map sizes in Options.
const (
	DefaultMaxLocks   = 10000 // as the SynCord lockstat map
	DefaultMaxTasks   = 16384
	DefaultMaxStacks  = 4096
	DefaultMaxCallers = 16384
)

// Options choose what the profiler records. The zero value records every
// lock of every process without call stacks, with the default map sizes.
type Options struct {
	// PID keeps only contentions by threads of this process (tgid); 0 keeps all.
	PID uint32
	// LockLo and LockHi keep only locks with LockLo <= address < LockHi;
	// LockHi 0 keeps all.
	LockLo, LockHi uint64
	// AllowedFlags is the bitmap from ParseTypes; 0 means all types.
	AllowedFlags uint64
	// Callers records a kernel stack id per contention so Snapshot can give
	// the call sites of each lock.
	Callers bool
	// Map sizes; 0 means the Default* constants. A full map counts drops
	// rather than failing.
	MaxLocks, MaxTasks, MaxStacks, MaxCallers uint32
	// Attached, if set, is called by Run once the programs are attached,
	// before the first period starts: the moment to start a workload.
	Attached func()
}

// Profiler is the loaded and attached program pair. Close detaches it;
// nothing is pinned.
type Profiler struct {
	objs   contentionObjects
	links  []link.Link
	opts   Options
	drops0 Drops // drop counters at the previous reset
}

// Check tells whether the running kernel has the contention tracepoints
// without loading anything: it looks for events/lock/contention_begin in
// tracefs (/sys/kernel/tracing, /sys/kernel/debug/tracing) and, when tracefs
// is not mounted, for __bpf_trace_contention_begin in /proc/kallsyms. It
// returns an error wrapping ErrNoTracepoints when they are surely missing,
// and nil when they exist or it cannot tell (then Start's attach decides).
// roots are normally pseudofs.DefaultRoots().
func Check(roots pseudofs.Roots) error {
	for _, dir := range []string{"kernel/tracing", "kernel/debug/tracing"} {
		tfs := roots.Sys.Path(dir)
		if _, err := os.Stat(filepath.Join(tfs, "events")); err != nil {
			continue // not mounted here
		}
		if _, err := os.Stat(filepath.Join(tfs, "events/lock/contention_begin")); err == nil {
			return nil
		}
		return noTracepoints(roots)
	}
	f, err := os.Open(roots.Proc.Path("kallsyms"))
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	any := false
	for sc.Scan() {
		line := sc.Bytes()
		any = true
		if bytes.HasSuffix(line, []byte(" __bpf_trace_contention_begin")) ||
			bytes.HasSuffix(line, []byte(" __traceiter_contention_begin")) {
			return nil
		}
	}
	if sc.Err() != nil || !any {
		return nil
	}
	return noTracepoints(roots)
}

func noTracepoints(roots pseudofs.Roots) error {
	rel, err := kernel.NewFS(roots).Release()
	if err != nil {
		return fmt.Errorf("lock contention profiling: %w", ErrNoTracepoints)
	}
	return fmt.Errorf("lock contention profiling on kernel %s: %w", rel, ErrNoTracepoints)
}

// Start loads the BPF programs with opts and attaches them to the raw
// tracepoints contention_begin and contention_end. The caller must Close
// the Profiler.
func Start(opts Options) (*Profiler, error) {
	spec, err := loadContention()
	if err != nil {
		return nil, err
	}
	or := func(v, d uint32) uint32 {
		if v == 0 {
			return d
		}
		return v
	}
	spec.Maps[contentionMapLocks].MaxEntries = or(opts.MaxLocks, DefaultMaxLocks)
	spec.Maps[contentionMapTaskWaits].MaxEntries = or(opts.MaxTasks, DefaultMaxTasks)
	if opts.Callers {
		spec.Maps[contentionMapStacks].MaxEntries = or(opts.MaxStacks, DefaultMaxStacks)
		spec.Maps[contentionMapCallers].MaxEntries = or(opts.MaxCallers, DefaultMaxCallers)
	} else {
		spec.Maps[contentionMapStacks].MaxEntries = 1
		spec.Maps[contentionMapCallers].MaxEntries = 1
	}
	allowed := opts.AllowedFlags
	if allowed == 0 {
		allowed = ^uint64(0)
	}
	var want uint32
	if opts.Callers {
		want = 1
	}
	for name, v := range map[string]any{
		contentionVarFilterTgid:   opts.PID,
		contentionVarFilterLockLo: opts.LockLo,
		contentionVarFilterLockHi: opts.LockHi,
		contentionVarAllowedFlags: allowed,
		contentionVarWantStacks:   want,
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("set %s in contention object: %w", name, err)
		}
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; later ones
	// ignore it and this is a no-op.
	_ = bpf.RemoveMemlock()

	p := &Profiler{opts: opts}
	if err := spec.LoadAndAssign(&p.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load contention profiler: %+v", ve)
		}
		return nil, fmt.Errorf("load contention profiler: %w (needs root or CAP_BPF+CAP_PERFMON)", err)
	}
	for _, a := range []struct {
		tp   string
		prog *ebpf.Program
	}{
		{"contention_begin", p.objs.ContentionBegin},
		{"contention_end", p.objs.ContentionEnd},
	} {
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: a.tp, Program: a.prog})
		if err != nil {
			p.Close()
			if errors.Is(err, unix.ENOENT) || errors.Is(err, os.ErrNotExist) {
				return nil, noTracepoints(pseudofs.DefaultRoots())
			}
			return nil, fmt.Errorf("attach raw tracepoint %s: %w", a.tp, err)
		}
		p.links = append(p.links, l)
	}
	return p, nil
}

// Close detaches both programs and frees the maps. It is idempotent.
func (p *Profiler) Close() error {
	var errs []error
	for _, l := range p.links {
		errs = append(errs, l.Close())
	}
	p.links = nil
	errs = append(errs, p.objs.Close())
	p.objs = contentionObjects{}
	return errors.Join(errs...)
}
