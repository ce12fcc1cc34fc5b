// SPDX-License-Identifier: GPL-2.0
/*
 * cna.c: target all_spinlocks on cna-syncord, #included by concord.c
 * (CONCORD_TARGET_ALL_SPINLOCKS with CONCORD_BRANCH_CNA).
 *
 * cna-syncord makes CNA (compact NUMA-aware lock) the slow path of every
 * queued spinlock when the machine has two or more NUMA nodes ("Enabling
 * CNA spinlock" at boot: pv_ops.lock.queued_spin_lock_slowpath is
 * __cna_queued_spin_lock_slowpath). Its reorder decision ("move the next
 * waiter to the secondary queue?") is a static stub inlined into that slow
 * path, so the whole function is replaced here with our own implementation
 * of the same qspinlock + CNA protocol in which that decision runs the
 * slot's should_reorder program, with the node of the queue head
 * (numa_node, ctx offset 56) and of the next waiter (next_numa_node, 64)
 * as values; 0xffff is CNA's priority node (a waiter queued from irq
 * context, with irqs off or from an RT task). The program decides for
 * every contended spinlock of the kernel.
 *
 * The old and the new slow path run side by side during the klp
 * transitions and meet in the same locks, so everything they share must be
 * bit for bit the kernel's (kernel/locking/qspinlock.c and qspinlock_cna.c
 * of cna-syncord): the per-cpu queue nodes are the kernel's own qnodes
 * (kallsyms; cna_init_nodes() set each one's real_numa_node and
 * encoded_tail at boot), the lock word transitions, the node layout
 * (checked below), the meaning of node->locked (0 wait, 1 go, > 1 go with
 * the encoded tail of the secondary queue, a circular list) and of
 * start_time (0 no secondary queue, 1 flush it), and the flush interval is
 * the kernel's numa_spinlock_threshold_ns, read through kallsyms on every
 * use so /sys/module/qspinlock_cna/parameters keeps tuning it. Only the
 * pseudo-random numbers that thin out the ordering are our own (per-cpu
 * seed).
 *
 * init refuses a kernel that is not cna-syncord (symbols missing), whose
 * slow path was compiled to another size than the one this code was
 * checked against, or on which CNA is not active on this boot (one NUMA
 * node, or numa_spinlock=off).
 */
#include <linux/percpu.h>
#include <linux/random.h>
#include <linux/hardirq.h>
#include <linux/sched/rt.h>
#include <linux/sched/clock.h>
#include <linux/prefetch.h>
#include <asm/paravirt.h>

#define CONCORD_CNA_SLOWPATH "__cna_queued_spin_lock_slowpath"
/* Its size in cna-syncord's vmlinux (System.map: next symbol - this one). */
#define CONCORD_CNA_SLOWPATH_SIZE 0x3c0

#define CONCORD_CNA_PRIORITY_NODE 0xffff	/* CNA_PRIORITY_NODE */
#define CONCORD_CNA_FLUSH 1			/* FLUSH_SECONDARY_QUEUE */
#define CONCORD_CNA_MAX_NODES 4			/* MAX_NODES */
#define CONCORD_CNA_BUSY (_Q_LOCKED_MASK | _Q_PENDING_MASK)
#ifndef _Q_PENDING_LOOPS
#define _Q_PENDING_LOOPS 1
#endif

/*
 * The kernel's struct qnode as CNA sees it (struct cna_node over struct
 * mcs_spinlock, padded to 32 bytes by PARAVIRT_SPINLOCKS).
 */
struct concord_cna_node {
	struct concord_cna_node *next;
	unsigned int locked;	/* 0 wait, 1 go, > 1 go + encoded tail of the secondary queue */
	int count;		/* nesting count, in the first node of each CPU */
	u16 numa_node;		/* node the queue prefers; CNA_PRIORITY_NODE for a priority waiter */
	u16 real_numa_node;	/* this CPU's node (set at boot) */
	u32 encoded_tail;	/* this node as a tail (set at boot) */
	u64 start_time;		/* secondary queue made at; CONCORD_CNA_FLUSH: flush it */
};

static struct concord_cna_node __percpu *concord_cna_qnodes;	/* the kernel's qnodes */
static unsigned long *concord_cna_threshold_ns;			/* numa_spinlock_threshold_ns */
static DEFINE_PER_CPU(u32, concord_cna_seed);

/*
 * TEST ONLY: CNA skips ordering the queue with probability 1 - 1/2^bits
 * while its secondary queue is empty; the kernel's value is 7 (1 in 128).
 * 0 orders on every wait at the head of the queue, so a test sees the
 * program run within seconds. Not a tuning knob: leave it at 7.
 */
static unsigned int reorder_prob_bits = 7;

static int concord_set_prob_bits(const char *val, const struct kernel_param *kp)
{
	unsigned int v;
	int err = kstrtouint(val, 0, &v);

	if (err)
		return err;
	if (v > 31)
		return -ERANGE;
	WRITE_ONCE(reorder_prob_bits, v);
	return 0;
}

static const struct kernel_param_ops concord_prob_bits_ops = {
	.set = concord_set_prob_bits,
	.get = param_get_uint,
};
module_param_cb(reorder_prob_bits, &concord_prob_bits_ops, &reorder_prob_bits, 0644);
MODULE_PARM_DESC(reorder_prob_bits,
		 "TEST ONLY: order CNA's queue on 1 in 2^bits head waits while the secondary queue is empty (0..31; kernel: 7; 0: every time)");

/*
 * Read-only counters, so a test sees which of CNA's paths ran: waiters
 * moved to a secondary queue, and secondary queues flushed back because
 * their head waited longer than numa_spinlock_threshold_ns.
 */
static atomic_long_t concord_cna_moved, concord_cna_flushed;

static int concord_get_counter(char *buf, const struct kernel_param *kp)
{
	return sprintf(buf, "%ld\n", atomic_long_read(kp->arg));
}

static const struct kernel_param_ops concord_counter_ops = {
	.get = concord_get_counter,
};
module_param_cb(moved, &concord_counter_ops, &concord_cna_moved, 0444);
MODULE_PARM_DESC(moved, "waiters moved to a CNA secondary queue by this module's slow path (read-only)");
module_param_cb(flushed, &concord_counter_ops, &concord_cna_flushed, 0444);
MODULE_PARM_DESC(flushed, "CNA secondary queues flushed back by this module's slow path (read-only)");

static inline u32 concord_cna_encode(int cpu, int idx)
{
	return ((u32)(cpu + 1) << _Q_TAIL_CPU_OFFSET) | ((u32)idx << _Q_TAIL_IDX_OFFSET);
}

static inline struct concord_cna_node *concord_cna_decode(u32 tail)
{
	int cpu = (tail >> _Q_TAIL_CPU_OFFSET) - 1;
	int idx = (tail & _Q_TAIL_IDX_MASK) >> _Q_TAIL_IDX_OFFSET;

	return per_cpu_ptr(concord_cna_qnodes, cpu) + idx;
}

/* false with probability 1/2^bits (CNA's probably()) */
static bool concord_cna_probably(unsigned int bits)
{
	u32 s = next_pseudo_random32(this_cpu_read(concord_cna_seed));

	this_cpu_write(concord_cna_seed, s);
	return s & ((1U << bits) - 1);
}

/*
 * The hook: true moves next to the secondary queue. Without a program (not
 * while the patch is on) the kernel's own choice: none for a
 * bpf_queued_spin_lock caller (custom), CNA's default otherwise.
 */
static bool concord_cna_should_reorder(struct qspinlock *lock, struct concord_cna_node *node,
				       struct concord_cna_node *next, int custom)
{
	struct bpf_prog *prog = concord_prog(HOOK_SHOULD_REORDER, READ_ONCE(slot));

	if (likely(prog))
		return concord_run_cmp(prog, lock, node->numa_node, next->numa_node) != 0;
	if (custom)
		return false;
	return next->numa_node != node->numa_node && next->numa_node != CONCORD_CNA_PRIORITY_NODE;
}

/*
 * Splice the whole secondary queue in front of next (the primary queue's
 * head), or, when next is NULL, make it the primary queue: its tail becomes
 * the lock's tail if the lock word is still val. Returns the new head, or
 * NULL when the lock word changed.
 */
static struct concord_cna_node *concord_cna_splice_head(struct qspinlock *lock, u32 val,
							struct concord_cna_node *node,
							struct concord_cna_node *next)
{
	struct concord_cna_node *tail2 = concord_cna_decode(node->locked);
	struct concord_cna_node *head2 = tail2->next;

	if (next) {
		tail2->next = next;
		return head2;
	}
	tail2->next = NULL;	/* break the circle before tail2 becomes the lock's tail */
	if (!atomic_try_cmpxchg_release(&lock->val, &val, tail2->encoded_tail | _Q_LOCKED_VAL)) {
		tail2->next = head2;
		return NULL;
	}
	return head2;
}

/* Move next from the primary queue to the tail of the secondary queue. */
static void concord_cna_splice_next(struct concord_cna_node *node, struct concord_cna_node *next,
				    struct concord_cna_node *nnext)
{
	node->next = nnext;
	if (node->locked <= 1) {
		next->next = next;
		node->start_time = local_clock();
		WARN_ON_ONCE(!node->start_time);
	} else {
		struct concord_cna_node *tail2 = concord_cna_decode(node->locked);

		next->next = tail2->next;
		tail2->next = next;
	}
	node->locked = next->encoded_tail;
	atomic_long_inc(&concord_cna_moved);
}

/*
 * Look at the waiter behind the queue head node: 1 when it may take the
 * lock next, 0 to keep waiting (none yet, or it was moved aside).
 */
static int concord_cna_order_queue(struct qspinlock *lock, struct concord_cna_node *node, int custom)
{
	struct concord_cna_node *next = READ_ONCE(node->next), *nnext;

	if (!next)
		return 0;
	if (!concord_cna_should_reorder(lock, node, next, custom))
		return 1;
	nnext = READ_ONCE(next->next);
	if (nnext)
		concord_cna_splice_next(node, next, nnext);
	return 0;
}

/* At the head of the queue while the lock is busy: order the queue, or mark a flush. */
static void concord_cna_wait_head(struct qspinlock *lock, struct concord_cna_node *node, int custom)
{
	if (node->locked <= 1 && concord_cna_probably(READ_ONCE(reorder_prob_bits)))
		return;
	if (!node->start_time ||
	    local_clock() <= node->start_time + READ_ONCE(*concord_cna_threshold_ns)) {
		if (node->numa_node == CONCORD_CNA_PRIORITY_NODE)
			node->numa_node = node->real_numa_node;
		while ((atomic_read(&lock->val) & CONCORD_CNA_BUSY) &&
		       !concord_cna_order_queue(lock, node, custom))
			cpu_relax();
	} else {
		node->start_time = CONCORD_CNA_FLUSH;
	}
}

/* Pass the queue on to next, keeping (or flushing) the secondary queue. */
static void concord_cna_handoff(struct concord_cna_node *node, struct concord_cna_node *next)
{
	u32 val = 1;

	if (node->start_time != CONCORD_CNA_FLUSH) {
		if (node->locked > 1) {
			val = node->locked;	/* the secondary queue goes along */
			next = node->next;	/* may have changed while ordering */
			next->numa_node = node->numa_node;
			next->start_time = node->start_time;
		}
	} else {
		WARN_ON_ONCE(node->locked <= 1);
		next = concord_cna_splice_head(NULL, 0, node, next);
		atomic_long_inc(&concord_cna_flushed);
	}
	smp_store_release(&next->locked, val);
}

/*
 * Replaces __cna_queued_spin_lock_slowpath(lock, val, custom, policy_id):
 * pending bit, then the MCS queue with CNA's ordering at its head.
 * policy_id is not used (the kernel drops it too); the hook runs this
 * module's slot for every caller.
 */
static void concord_cna_slowpath(struct qspinlock *lock, u32 val, int custom, int policy_id)
{
	struct concord_cna_node *prev, *next, *node, *base;
	u32 old, tail;
	int idx;

	/* A pending -> locked hand-over in progress: wait a bounded time. */
	if (val == _Q_PENDING_VAL) {
		int cnt = _Q_PENDING_LOOPS;

		val = atomic_cond_read_relaxed(&lock->val, (VAL != _Q_PENDING_VAL) || !cnt--);
	}
	if (val & ~_Q_LOCKED_MASK)
		goto queue;

	/* trylock || pending: 0,0,* -> 0,1,* -> 0,0,1 */
	val = queued_fetch_set_pending_acquire(lock);
	if (unlikely(val & ~_Q_LOCKED_MASK)) {
		if (!(val & _Q_PENDING_MASK))
			WRITE_ONCE(lock->pending, 0);
		goto queue;
	}
	if (val & _Q_LOCKED_MASK)
		atomic_cond_read_acquire(&lock->val, !(VAL & _Q_LOCKED_MASK));
	WRITE_ONCE(lock->locked_pending, _Q_LOCKED_VAL);
	return;

queue:
	base = this_cpu_ptr(concord_cna_qnodes);
	idx = base->count++;
	tail = concord_cna_encode(smp_processor_id(), idx);
	if (unlikely(idx >= CONCORD_CNA_MAX_NODES)) {
		while (!queued_spin_trylock(lock))
			cpu_relax();
		goto release;
	}
	node = base + idx;
	barrier();	/* count before the node: an irq may nest here */
	node->locked = 0;
	node->next = NULL;
	node->numa_node = (!in_task() || irqs_disabled() || rt_task(current)) ?
			  CONCORD_CNA_PRIORITY_NODE : node->real_numa_node;
	node->start_time = 0;
	if (queued_spin_trylock(lock))
		goto release;
	smp_wmb();	/* the node is initialised before it is published */
	old = (u32)xchg_relaxed(&lock->tail, tail >> _Q_TAIL_OFFSET) << _Q_TAIL_OFFSET;
	next = NULL;
	if (old & _Q_TAIL_MASK) {
		prev = concord_cna_decode(old);
		WRITE_ONCE(prev->next, node);
		smp_cond_load_acquire(&node->locked, VAL);
		next = READ_ONCE(node->next);
		if (next)
			prefetchw(next);
	}

	/* Head of the queue: order it while the owner and pending go away. */
	concord_cna_wait_head(lock, node, custom);
	val = atomic_cond_read_acquire(&lock->val, !(VAL & CONCORD_CNA_BUSY));

	if ((val & _Q_TAIL_MASK) == tail) {
		if (node->locked > 1) {
			/* primary queue empty: the secondary queue takes over */
			next = concord_cna_splice_head(lock, val, node, NULL);
			if (next) {
				smp_store_release(&next->locked, 1);
				goto release;
			}
		} else if (atomic_try_cmpxchg_relaxed(&lock->val, &val, _Q_LOCKED_VAL)) {
			goto release;	/* both queues empty */
		}
	}
	WRITE_ONCE(lock->locked, _Q_LOCKED_VAL);
	if (!next)
		next = smp_cond_load_relaxed(&node->next, (VAL));
	concord_cna_handoff(node, next);
release:
	__this_cpu_dec(concord_cna_qnodes->count);
}

/* Resolves the kernel's CNA state; refuses a kernel this code does not fit. */
static int concord_target_init(void)
{
	unsigned long slowpath;
	int cpu, err;

	BUILD_BUG_ON(sizeof(struct concord_cna_node) != 32);
	BUILD_BUG_ON(offsetof(struct concord_cna_node, locked) != 8);
	BUILD_BUG_ON(offsetof(struct concord_cna_node, count) != 12);
	BUILD_BUG_ON(offsetof(struct concord_cna_node, numa_node) != 0x10);
	BUILD_BUG_ON(offsetof(struct concord_cna_node, real_numa_node) != 0x12);
	BUILD_BUG_ON(offsetof(struct concord_cna_node, encoded_tail) != 0x14);
	BUILD_BUG_ON(offsetof(struct concord_cna_node, start_time) != 0x18);
	BUILD_BUG_ON(_Q_PENDING_BITS != 8);	/* the byte-wide pending/tail stores below */

	slowpath = concord_replaceable(CONCORD_CNA_SLOWPATH, CONCORD_CNA_SLOWPATH_SIZE, "cna-syncord", &err);
	if (!slowpath)
		return err;
	concord_cna_qnodes = (struct concord_cna_node __percpu *)kallsyms_lookup_name("qnodes");
	concord_cna_threshold_ns = (unsigned long *)kallsyms_lookup_name("numa_spinlock_threshold_ns");
	if (!concord_cna_qnodes || !concord_cna_threshold_ns) {
		pr_err("concord: policy %s: kallsyms has no qnodes or numa_spinlock_threshold_ns: not cna-syncord (target %s is attached there only)\n",
		       CONCORD_POLICY, CONCORD_TARGET);
		return -ENOENT;
	}
	if (pv_ops.lock.queued_spin_lock_slowpath != (void *)slowpath ||
	    per_cpu_ptr(concord_cna_qnodes, 0)->encoded_tail != concord_cna_encode(0, 0)) {
		pr_err("concord: policy %s: CNA is not active on this boot (no \"Enabling CNA spinlock\": it needs 2+ NUMA nodes, or numa_spinlock=on)\n",
		       CONCORD_POLICY);
		return -ENODEV;
	}
	for_each_possible_cpu(cpu)
		per_cpu(concord_cna_seed, cpu) = get_random_u32() | 1;
	return 0;
}

/* concord_cna_slowpath runs this module's slot: one such module at a time. */
#define CONCORD_TARGET_EXCLUSIVE "concord_cna_slowpath"

#define CONCORD_TARGET_FUNCS \
	{ .old_name = CONCORD_CNA_SLOWPATH, .new_func = concord_cna_slowpath },
