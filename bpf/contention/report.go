package contention

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/syncord/syncord/bpf"
	"github.com/syncord/syncord/kernel"
)

// Period is one report's worth of profile: what was contended between
// Start and Start+Duration.
type Period struct {
	Index    int
	Start    time.Time
	Duration time.Duration
	// Final is set on the last period, after the profiler has detached.
	Final    bool
	Snapshot *Snapshot
}

// Run starts the profiler, and emits a Period every interval (0: once at
// the end) until duration has passed (0: until ctx is done, e.g. SIGINT).
// The end of ctx is a normal end: the last period is still emitted. The
// profiler is detached and closed before Run returns, on every path.
func Run(ctx context.Context, opts Options, duration, interval time.Duration, emit func(*Period) error) (err error) {
	p, err := Start(opts)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := p.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("detach contention profiler: %w", cerr)
		}
	}()
	if opts.Attached != nil {
		opts.Attached()
	}
	var deadline <-chan time.Time
	if duration > 0 {
		t := time.NewTimer(duration)
		defer t.Stop()
		deadline = t.C
	}
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	start := time.Now()
	for i := 0; ; i++ {
		final := false
		select {
		case <-ctx.Done():
			final = true
		case <-deadline:
			final = true
		case <-tick:
		}
		now := time.Now()
		snap, err := p.Snapshot(true)
		if err != nil {
			return err
		}
		if final {
			// Detach before the last report so that printing it
			// costs the traced kernel nothing.
			if err := p.Close(); err != nil {
				return fmt.Errorf("detach contention profiler: %w", err)
			}
		}
		if err := emit(&Period{Index: i, Start: start, Duration: now.Sub(start), Final: final, Snapshot: snap}); err != nil {
			return err
		}
		if final {
			return nil
		}
		start = now
	}
}

// ReportOptions shape a Report.
type ReportOptions struct {
	// Symbols names locks that are global variables from kallsyms.
	Symbols bool
	// LockSymbol keeps only locks inside this kallsyms symbol.
	LockSymbol string
	// Top keeps the N locks with the most wait time; 0 keeps all.
	Top int
	// Callers keeps the K call sites with the most wait time per lock
	// (needs Options.Callers and a symbol table).
	Callers int
	// Kernel is the release to record in the report.
	Kernel string
}

// Report is the documented JSON document of `syncord lockstat
// --contention --json` (one per line, see the package documentation).
type Report struct {
	Kernel     string       `json:"kernel"`
	Interval   int          `json:"interval"`
	Final      bool         `json:"final"`
	Start      time.Time    `json:"start"`
	DurationNS uint64       `json:"duration_ns"`
	Locks      []LockReport `json:"locks"`
	Dropped    Drops        `json:"dropped"`
}

// LockReport is one lock in a Report.
type LockReport struct {
	Addr         string   `json:"addr"`
	Symbol       string   `json:"symbol,omitempty"`
	SymbolOffset uint64   `json:"symbol_offset,omitempty"`
	Type         string   `json:"type"`
	Flags        uint32   `json:"flags"`
	Contentions  uint64   `json:"contentions"`
	ConBounces   uint64   `json:"con_bounces"`
	Waits        uint64   `json:"waits"`
	WaitMinNS    uint64   `json:"wait_min_ns"`
	WaitMaxNS    uint64   `json:"wait_max_ns"`
	WaitTotalNS  uint64   `json:"wait_total_ns"`
	WaitAvgNS    uint64   `json:"wait_avg_ns"`
	Callers      []Caller `json:"callers,omitempty"`
	addr         uint64
}

// Caller is one call site that contended a lock: the first stack frame
// outside the locking code, tracing and BPF.
type Caller struct {
	Symbol      string `json:"symbol"`
	Addr        string `json:"addr"`
	Contentions uint64 `json:"contentions"`
	WaitTotalNS uint64 `json:"wait_total_ns"`
}

// maxLockOffset bounds how far into a data symbol an address may lie and
// still be named after it (rename_lock's spinlock is at +4 in its seqlock_t).
// Further out, the "nearest symbol" is a guess about a heap address.
const maxLockOffset = 4096

// LockName names addr after the data symbol (kallsyms type d, D, b or B)
// it lies in, if any, and returns the offset into it. Heap locks and
// kernels without CONFIG_KALLSYMS_ALL have no name.
func LockName(syms *kernel.Symbols, addr uint64) (string, uint64, bool) {
	if syms == nil {
		return "", 0, false
	}
	sym, off, ok := syms.Lookup(addr)
	if !ok || off >= maxLockOffset {
		return "", 0, false
	}
	switch sym.Type {
	case 'd', 'D', 'b', 'B':
		return sym.Name, off, true
	}
	return "", 0, false
}

// NewReport builds the report for one period: locks sorted by wait total
// (largest first, then by address), named and cut as opt says.
func NewReport(p *Period, syms *kernel.Symbols, opt ReportOptions) *Report {
	r := &Report{Kernel: opt.Kernel, Interval: p.Index, Final: p.Final, Start: p.Start.UTC(),
		DurationNS: uint64(p.Duration), Dropped: p.Snapshot.Drops, Locks: []LockReport{}}
	lf := newLockFuncs(syms)
	for _, l := range p.Snapshot.Locks {
		name, off, named := LockName(syms, l.Addr)
		if opt.LockSymbol != "" && name != opt.LockSymbol {
			continue
		}
		lr := LockReport{Addr: hex(l.Addr), Type: TypeName(l.Flags), Flags: l.Flags,
			Contentions: l.Contentions, ConBounces: l.ConBounces, Waits: l.Waits, WaitMinNS: l.WaitMin,
			WaitMaxNS: l.WaitMax, WaitTotalNS: l.WaitTotal, addr: l.Addr}
		if l.Waits > 0 {
			lr.WaitAvgNS = l.WaitTotal / l.Waits
		}
		if opt.Symbols && named {
			lr.Symbol, lr.SymbolOffset = name, off
		}
		if opt.Callers > 0 {
			lr.Callers = topCallers(l.Stacks, syms, lf, opt.Callers)
		}
		r.Locks = append(r.Locks, lr)
	}
	sort.SliceStable(r.Locks, func(i, j int) bool {
		a, b := &r.Locks[i], &r.Locks[j]
		if a.WaitTotalNS != b.WaitTotalNS {
			return a.WaitTotalNS > b.WaitTotalNS
		}
		return a.addr < b.addr
	})
	if opt.Top > 0 && len(r.Locks) > opt.Top {
		r.Locks = r.Locks[:opt.Top]
	}
	return r
}

func hex(v uint64) string { return "0x" + strconv.FormatUint(v, 16) }

// lockFuncs recognises stack frames inside the locking code: the
// .lock.text and .sched.text sections (where _raw_spin_lock, mutex_lock,
// down_write and friends live), the slow paths and the tracing/BPF frames
// between the tracepoint and the program.
type lockFuncs struct {
	ranges [][2]uint64
}

var lockFuncPrefixes = []string{
	"bpf_prog_", "bpf_trace_run", "__bpf_trace_", "__traceiter_", "trace_contention",
	"perf_trace_", "trace_event_raw_event_",
	"queued_spin_lock_slowpath", "native_queued_spin_lock_slowpath", "__pv_queued_spin_lock_slowpath",
	"pv_queued_spin_lock_slowpath", "queued_read_lock_slowpath", "queued_write_lock_slowpath",
	"do_raw_spin_lock", "do_raw_read_lock", "do_raw_write_lock", "_raw_", "__raw_",
	"mutex_lock", "__mutex_lock", "mutex_optimistic_spin", "ww_mutex_lock", "__ww_mutex_lock",
	"rwsem_down_", "rwsem_optimistic_spin", "down_read", "down_write", "__down_read", "__down_write",
	"rt_mutex", "__rt_mutex", "rtlock_", "rt_spin_lock", "rwbase_",
	"percpu_down_", "__percpu_down_", "percpu_rwsem_wait",
}

func newLockFuncs(syms *kernel.Symbols) *lockFuncs {
	lf := &lockFuncs{}
	if syms == nil {
		return lf
	}
	for _, sec := range []string{"__lock_text", "__sched_text"} {
		lo, ok1 := syms.Address(sec + "_start")
		hi, ok2 := syms.Address(sec + "_end")
		if ok1 && ok2 && lo < hi {
			lf.ranges = append(lf.ranges, [2]uint64{lo, hi})
		}
	}
	return lf
}

func (lf *lockFuncs) is(pc uint64, name string) bool {
	for _, r := range lf.ranges {
		if pc >= r[0] && pc < r[1] {
			return true
		}
	}
	for _, p := range lockFuncPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// CallerPC returns the first frame of pcs (innermost first) outside the
// locking code, or 0.
func CallerPC(pcs []uint64, syms *kernel.Symbols) uint64 {
	return callerPC(pcs, syms, newLockFuncs(syms))
}

// maxFuncOffset: a text address further than this from the symbol below
// it is not inside that symbol (a BPF program or module loaded after
// kallsyms was read).
const maxFuncOffset = 1 << 20

func callerPC(pcs []uint64, syms *kernel.Symbols, lf *lockFuncs) uint64 {
	for _, pc := range pcs {
		name := ""
		if syms != nil {
			s, off, ok := syms.Lookup(pc)
			if !ok || off >= maxFuncOffset {
				// Unknown frame between the tracepoint and the
				// lock: the BPF program itself.
				continue
			}
			name = s.Name
		}
		if !lf.is(pc, name) {
			return pc
		}
	}
	return 0
}

func topCallers(stacks []Stack, syms *kernel.Symbols, lf *lockFuncs, k int) []Caller {
	by := map[string]*Caller{}
	var order []string
	for _, s := range stacks {
		pc := callerPC(s.PCs, syms, lf)
		name, addr := "[unknown]", ""
		if pc != 0 {
			addr = hex(pc)
			name = addr
			if syms != nil {
				if n := syms.Name(pc, false); n != "" {
					name = n
				}
			}
		}
		c, ok := by[name]
		if !ok {
			c = &Caller{Symbol: name, Addr: addr}
			by[name] = c
			order = append(order, name)
		}
		c.Contentions += s.Contentions
		c.WaitTotalNS += s.WaitTotal
	}
	out := make([]Caller, 0, len(order))
	for _, n := range order {
		out = append(out, *by[n])
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].WaitTotalNS != out[j].WaitTotalNS {
			return out[i].WaitTotalNS > out[j].WaitTotalNS
		}
		return out[i].Symbol < out[j].Symbol
	})
	if len(out) > k {
		out = out[:k]
	}
	return out
}

// WriteJSON writes r as one line of JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteTable prints r as the SynCord lockstat table (bpf.WriteLockstatTable;
// acquisition and hold columns "-"), with a trailing symbol column when
// symbols is set, then the callers of each lock that has any.
func (r *Report) WriteTable(w io.Writer, symbols bool) error {
	rows := make([]bpf.LockStat, len(r.Locks))
	for i, l := range r.Locks {
		rows[i] = bpf.LockStat{Addr: l.addr, Symbol: l.displaySymbol(), Contentions: l.Contentions,
			ConBounces: l.ConBounces, WaitMin: l.WaitMinNS, WaitMax: l.WaitMaxNS, WaitTotal: l.WaitTotalNS}
		if rows[i].Addr == 0 {
			rows[i].Addr, _ = strconv.ParseUint(strings.TrimPrefix(l.Addr, "0x"), 16, 64)
		}
	}
	if err := bpf.WriteLockstatTable(w, rows, bpf.TableOptions{ContentionOnly: true, Symbols: symbols}); err != nil {
		return err
	}
	for _, l := range r.Locks {
		if len(l.Callers) == 0 {
			continue
		}
		what := l.Addr
		if s := l.displaySymbol(); s != "" {
			what = s + " (" + l.Addr + ")"
		}
		if _, err := fmt.Fprintf(w, "\ncallers of %s %s:\n%15s %15s  %s\n", l.Type, what, "contentions", "wait-tot", "caller"); err != nil {
			return err
		}
		for _, c := range l.Callers {
			if _, err := fmt.Fprintf(w, "%15d %15d  %s\n", c.Contentions, c.WaitTotalNS, c.Symbol); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *LockReport) displaySymbol() string {
	if l.Symbol == "" || l.SymbolOffset == 0 {
		return l.Symbol
	}
	return fmt.Sprintf("%s+0x%x", l.Symbol, l.SymbolOffset)
}
