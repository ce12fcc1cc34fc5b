// Package contention profiles kernel lock contention on stock kernels
// (Linux 5.19+) from the lock:contention_begin and lock:contention_end
// tracepoints, and gives the SynCord lockstat table without a SynCord
// kernel. It is what `syncord lockstat --contention` runs.
//
// Two BPF programs (contention.bpf.c, compiled by bpf2go; the objects are
// committed) attach as raw tracepoints, so they need neither kernel BTF nor
// CO-RE. contention_begin(lock, flags) counts a contention on the lock,
// a con-bounce when the contending CPU differs from the lock's previous
// contender's, ORs the flags (which name the lock type, TypeName) and
// pushes the wait on a small stack (MaxNest deep): per CPU for spinning
// locks, per task for sleeping ones (mutex, rwsem, rt-mutex).
// contention_end(lock, ret) pops it and adds the wait (min/max/total, ns)
// to the lock. Contentions are counted at begin so that a lost end costs
// only a wait time: the kernel emits begin and end from different places,
// and on some guests (QEMU TCG) ends go missing. With
// Options.Callers each wait also records a kernel stack id
// (BPF_MAP_TYPE_STACK_TRACE), and Report names the first frame outside the
// locking code as the call site. Filters (process, lock address range,
// lock types) are rodata constants set before load. Full maps and
// unpaired events are counted (Drops), never fatal.
//
// Nothing is pinned: Close (and Run on every return path) detaches the
// links and frees the maps. Check tells from tracefs
// (/sys/kernel/tracing/events/lock/contention_begin) or /proc/kallsyms
// (__bpf_trace_contention_begin) whether the tracepoints exist; without
// them Start fails with ErrNoTracepoints, which points to the SynCord
// lockstat policy (`syncord policy install lockstat`) for SynCord kernels.
//
// Lock names come from /proc/kallsyms (kernel.Symbols): a lock address
// within 4 KiB of a data symbol (types d, D, b, B) is named after it, with
// the offset (rename_lock's spinlock is rename_lock+4). Kernels built
// without CONFIG_KALLSYMS_ALL list no data symbols; their locks stay
// unnamed, but call sites (text symbols) are still resolved.
//
// # JSON output
//
// `syncord lockstat --contention --json` writes one Report per line: one
// line at the end, or one per --interval and a last one with "final":true.
// Counts cover only that line's period. Field names and units are stable:
//
//	kernel          string   release of the profiled kernel (uname -r)
//	interval        int      0-based index of the period
//	final           bool     true on the last line
//	start           string   start of the period, RFC 3339 with ns, UTC
//	duration_ns     uint64   length of the period in ns
//	locks           array    sorted by wait_total_ns, largest first; ties by address
//	  addr          string   lock address, "0x" and lower-case hex
//	  symbol        string   data symbol the lock lies in (omitted if none or no --symbols)
//	  symbol_offset uint64   offset of addr into symbol in bytes (omitted if 0)
//	  type          string   spinlock, rwlock[:R|:W], rwsem[:R|:W], pcpu-sem[:R|:W],
//	                         mutex, rtmutex, rt-rw[:R|:W] (":R"/":W" when only readers/writers waited)
//	  flags         uint32   OR of the contention_begin flags (LCB_F_SPIN=1, READ=2,
//	                         WRITE=4, RT=8, PERCPU=16, MUTEX=32)
//	  contentions   uint64   contention_begin events in the period
//	  con_bounces   uint64   contentions whose CPU differs from the lock's previous contender's
//	  waits         uint64   contentions whose end was seen; the wait_* fields cover these
//	  wait_min_ns   uint64   shortest wait, ns (0 when waits is 0)
//	  wait_max_ns   uint64   longest wait, ns
//	  wait_total_ns uint64   sum of waits, ns
//	  wait_avg_ns   uint64   wait_total_ns / waits, ns
//	  callers       array    with --callers K: top K call sites by wait_total_ns
//	    symbol      string   "function+0xoff", the hex address if unknown, or "[unknown]"
//	                         when the stack was evicted
//	    addr        string   call site address, "0x..." ("" when unknown)
//	    contentions uint64   contentions from that call site
//	    wait_total_ns uint64 their summed (timed) wait, ns
//	dropped         object   events not (fully) recorded in the period
//	  lock_map_full, task_map_full, nest_too_deep, lost_waits,
//	  stack_failed, caller_map_full, unmatched_ends   uint64 counts (see Drops)
//
// The table (without --json) is the SynCord lockstat reader's, byte for
// byte (bpf.WriteLockstatTable), with "-" in the acquisition, acq-bounces
// and hold columns, since the tracepoints do not see acquisitions; with
// --symbols a trailing symbol column, with --callers a section per lock.
package contention
