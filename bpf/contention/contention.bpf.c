//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// Per-lock contention profile from the lock:contention_begin and
// lock:contention_end tracepoints (Linux 5.19+). Attached as raw tracepoints:
// their arguments are plain u64s (contention_begin: lock, flags;
// contention_end: lock, ret), so neither kernel BTF nor CO-RE is needed.
//
// A begin counts a contention on its lock (and a con-bounce when its CPU
// differs from the lock's previous contender's) and pushes {lock, timestamp,
// flags, cpu, stack id} on a small stack: per CPU for spinning locks (they
// wait with preemption off, and only an interrupt can nest another wait on
// the same CPU), per task for sleeping ones (mutex, rwsem, rt-mutex: the
// task may migrate while it waits). An end pops the matching entry and adds
// the wait time to its lock. Counting at begin keeps the count right when
// an end is never seen; such a wait is forgotten (and counted as lost) when
// its CPU spins on the same lock again or its stack runs out of slots.
//
// Regenerate with `go generate ./bpf/contention/` (clang, libbpf-dev).

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* flags for lock:contention_begin, include/trace/events/lock.h */
#define LCB_F_SPIN   (1U << 0)
#define LCB_F_READ   (1U << 1)
#define LCB_F_WRITE  (1U << 2)
#define LCB_F_RT     (1U << 3)
#define LCB_F_PERCPU (1U << 4)
#define LCB_F_MUTEX  (1U << 5)

#define MAX_NEST 4 /* a power of two: indexes are masked with MAX_NEST - 1 */
#define SLOT(i) ((i) & (MAX_NEST - 1))
#define MINMAX_RETRIES 4

/* Per-lock aggregate. Layout mirrored by the generated Go type. */
struct lock_stat {
	__u64 contentions; /* contention_begin events */
	__u64 con_bounces;
	__u64 waits;       /* contentions whose end was seen (timed) */
	__u64 wait_min;   /* ns */
	__u64 wait_max;   /* ns */
	__u64 wait_total; /* ns */
	__u32 prev_cpu;   /* CPU of the previous contender */
	__u32 flags;      /* OR of the contention_begin flags seen */
};

struct wait {
	__u64 lock;
	__u64 ts;
	__u32 flags;
	__u32 cpu;
	__s32 stack_id;
	__u32 pad;
};

struct wait_stack {
	__u32 depth;
	__u32 pad;
	struct wait w[MAX_NEST];
};

struct caller_key {
	__u64 lock;
	__s32 stack_id;
	__u32 pad;
};

struct caller_stat {
	__u64 contentions;
	__u64 wait_total; /* ns */
};

enum drop_reason {
	DROP_LOCK_MAP_FULL = 0,
	DROP_TASK_MAP_FULL,
	DROP_NEST_TOO_DEEP,
	DROP_LOST_WAIT,
	DROP_STACK_FAILED,
	DROP_CALLER_MAP_FULL,
	DROP_UNMATCHED_END,
	DROP_MAX,
};

/* Filters and options, set by the loader before load (rodata). */
volatile const __u32 filter_tgid = 0;         /* 0: every process */
volatile const __u64 filter_lock_lo = 0;      /* lock address range [lo, hi) */
volatile const __u64 filter_lock_hi = 0;      /* 0: every lock */
volatile const __u64 allowed_flags = ~0ULL;   /* bit f: flags value f is kept */
volatile const __u32 want_stacks = 0;         /* record stack ids per caller */

/* Sizes below are defaults; the loader sets max_entries from its options. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10000);
	__type(key, __u64);
	__type(value, struct lock_stat);
} locks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct wait_stack);
} task_waits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wait_stack);
} cpu_waits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 4096);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct caller_key);
	__type(value, struct caller_stat);
} callers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

static __always_inline void drop_n(__u32 reason, __u64 count)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &reason);

	if (n)
		*n += count; /* per-CPU slot */
}

static __always_inline void drop(__u32 reason)
{
	drop_n(reason, 1);
}

static __always_inline int spinning(__u32 flags)
{
	return (flags & LCB_F_SPIN) && !(flags & (LCB_F_MUTEX | LCB_F_RT));
}

static __always_inline struct wait_stack *task_stack(__u32 tid, int create)
{
	struct wait_stack *ws = bpf_map_lookup_elem(&task_waits, &tid);
	struct wait_stack zero = {};

	if (ws || !create)
		return ws;
	if (bpf_map_update_elem(&task_waits, &tid, &zero, BPF_NOEXIST) &&
	    !(ws = bpf_map_lookup_elem(&task_waits, &tid))) {
		drop(DROP_TASK_MAP_FULL);
		return 0;
	}
	return bpf_map_lookup_elem(&task_waits, &tid);
}

static __always_inline void update_min(__u64 *p, __u64 v)
{
	__u64 old = *p;

	for (int i = 0; i < MINMAX_RETRIES && v < old; i++) {
		__u64 seen = __sync_val_compare_and_swap(p, old, v);

		if (seen == old)
			break;
		old = seen;
	}
}

static __always_inline void update_max(__u64 *p, __u64 v)
{
	__u64 old = *p;

	for (int i = 0; i < MINMAX_RETRIES && v > old; i++) {
		__u64 seen = __sync_val_compare_and_swap(p, old, v);

		if (seen == old)
			break;
		old = seen;
	}
}

/* count_contention counts one contention_begin on lock; 0 if the lock map
 * is full. */
static __always_inline int count_contention(__u64 lock, __u32 flags, __u32 cpu)
{
	struct lock_stat *s = bpf_map_lookup_elem(&locks, &lock);
	__u32 prev;

	if (!s) {
		struct lock_stat init = {
			.wait_min = ~0ULL,
			.prev_cpu = cpu,
		};

		bpf_map_update_elem(&locks, &lock, &init, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&locks, &lock);
		if (!s) {
			drop(DROP_LOCK_MAP_FULL);
			return 0;
		}
	}
	__sync_fetch_and_add(&s->contentions, 1);
	__sync_fetch_and_or(&s->flags, flags);
	prev = __sync_lock_test_and_set(&s->prev_cpu, cpu);
	if (prev != cpu)
		__sync_fetch_and_add(&s->con_bounces, 1);
	return 1;
}

static __always_inline void count_caller(__u64 lock, __s32 stack_id)
{
	struct caller_key k = { .lock = lock, .stack_id = stack_id };
	struct caller_stat *c = bpf_map_lookup_elem(&callers, &k);

	if (!c) {
		struct caller_stat zero = {};

		bpf_map_update_elem(&callers, &k, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&callers, &k);
		if (!c) {
			drop(DROP_CALLER_MAP_FULL);
			return;
		}
	}
	__sync_fetch_and_add(&c->contentions, 1);
}

SEC("raw_tracepoint/contention_begin")
int contention_begin(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 lock = ctx->args[0];
	__u32 flags = (__u32)ctx->args[1];
	__u64 id = bpf_get_current_pid_tgid();
	__u32 zero = 0, d, cpu;
	struct wait_stack *ws;
	int spin = spinning(flags);
	__s32 sid = -1;

	if (filter_tgid && (__u32)(id >> 32) != filter_tgid)
		return 0;
	if (filter_lock_hi && (lock < filter_lock_lo || lock >= filter_lock_hi))
		return 0;
	if (flags < 64 ? !((allowed_flags >> flags) & 1) : allowed_flags != ~0ULL)
		return 0;

	if (spin)
		ws = bpf_map_lookup_elem(&cpu_waits, &zero);
	else
		ws = task_stack((__u32)id, 1);
	if (!ws)
		return 0;

	d = ws->depth;
	if (d > MAX_NEST)
		d = MAX_NEST;
	/* Indexes below are masked although they are in range: the 6.1
	 * verifier loses the bounds of a copied register. */
	if (!spin && d > 0 && ws->w[SLOT(d - 1)].lock == lock) {
		/* A mutex spins (MUTEX|SPIN), then sleeps (MUTEX) on the same
		 * wait: one contention, timed from the first begin. */
		ws->w[SLOT(d - 1)].flags |= flags;
		return 0;
	}
	if (spin) {
		/* A CPU cannot spin twice on one lock: an older entry for it
		 * lost its end. Forget it and what was pushed above it. */
#pragma unroll
		for (int i = 0; i < MAX_NEST; i++) {
			if ((__u32)i < d && ws->w[i].lock == lock) {
				drop_n(DROP_LOST_WAIT, d - i);
				d = i;
				ws->depth = d;
				break;
			}
		}
	}
	if (d >= MAX_NEST) {
		/* Out of slots: the oldest wait is the likeliest to have lost
		 * its end; make room by forgetting it. */
#pragma unroll
		for (int i = 0; i < MAX_NEST - 1; i++)
			ws->w[i] = ws->w[i + 1];
		drop(DROP_NEST_TOO_DEEP);
		d = MAX_NEST - 1;
		ws->depth = d;
	}

	cpu = bpf_get_smp_processor_id();
	if (!count_contention(lock, flags, cpu))
		return 0;
	if (want_stacks) {
		long r = bpf_get_stackid(ctx, &stacks, 0);

		if (r < 0) {
			drop(DROP_STACK_FAILED);
		} else {
			sid = r;
			count_caller(lock, sid);
		}
	}

	/* Reserve the slot before filling it: an interrupt that nests a wait
	 * here pushes above it. */
	ws->depth = d + 1;
	d = SLOT(d);
	ws->w[d].lock = lock;
	ws->w[d].flags = flags;
	ws->w[d].cpu = cpu;
	ws->w[d].stack_id = sid;
	ws->w[d].ts = bpf_ktime_get_ns();
	return 0;
}

/* account_wait adds a finished wait to its lock (and caller). A lock whose
 * entry is gone was reset by a snapshot since the wait began: the wait
 * belongs to a period already reported and is not counted. */
static __always_inline void account_wait(struct wait *w, __u64 now)
{
	__u64 lock = w->lock, delta = now - w->ts;
	struct lock_stat *s = bpf_map_lookup_elem(&locks, &lock);

	if (!s)
		return;
	__sync_fetch_and_add(&s->waits, 1);
	__sync_fetch_and_add(&s->wait_total, delta);
	update_min(&s->wait_min, delta);
	update_max(&s->wait_max, delta);

	if (want_stacks && w->stack_id >= 0) {
		struct caller_key k = { .lock = lock, .stack_id = w->stack_id };
		struct caller_stat *c = bpf_map_lookup_elem(&callers, &k);

		if (c)
			__sync_fetch_and_add(&c->wait_total, delta);
	}
}

/* pop looks for lock in ws from the top down; on a hit it accounts the wait,
 * forgets the entries above it (their ends were lost) and returns 1. */
static __always_inline int pop(struct wait_stack *ws, __u64 lock, __u64 now)
{
	__u32 d = ws->depth;

	if (d > MAX_NEST)
		d = MAX_NEST;
#pragma unroll
	for (int i = MAX_NEST - 1; i >= 0; i--) {
		if ((__u32)i >= d || ws->w[i].lock != lock)
			continue;
		account_wait(&ws->w[i], now);
		if (d - 1 - i)
			drop_n(DROP_LOST_WAIT, d - 1 - i);
		ws->depth = i;
		return 1;
	}
	return 0;
}

SEC("raw_tracepoint/contention_end")
int contention_end(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 lock = ctx->args[0], now = bpf_ktime_get_ns();
	__u32 zero = 0, tid = (__u32)bpf_get_current_pid_tgid();
	struct wait_stack *ws = bpf_map_lookup_elem(&cpu_waits, &zero);

	if (ws && ws->depth && pop(ws, lock, now))
		return 0;
	ws = bpf_map_lookup_elem(&task_waits, &tid);
	if (ws && pop(ws, lock, now)) {
		if (!ws->depth)
			bpf_map_delete_elem(&task_waits, &tid);
		return 0;
	}
	/* Begun before we attached, or filtered out at begin. */
	drop(DROP_UNMATCHED_END);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
