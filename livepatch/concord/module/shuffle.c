// SPDX-License-Identifier: GPL-2.0
/*
 * shuffle.c: target all_spinlocks on shfllock-syncord, #included by
 * concord.c (CONCORD_TARGET_ALL_SPINLOCKS with CONCORD_BRANCH_SHFLLOCK).
 *
 * ShflLock (kernel/locking/qspinlock.c of shfllock-syncord) lets a waiter of
 * a contended spinlock hold the "shuffler" role: it walks the MCS queue
 * behind it and moves the waiters that should go with it (the kernel: same
 * NUMA node) up next to it. The kernel's shuffle_waiters() calls its policy
 * stub syncord_should_reorder(), which is compiled into the same NUMA
 * comparison and inlined: there is no hook left to fill. So this module
 * replaces the whole (small) function the comparison lives in, the local
 * symbol shuffle_waiters.constprop.0, with our own implementation of the
 * same shuffle protocol whose comparator is the slot's should_reorder
 * program (concord_run_cmp: numa_node = the shuffler's node, next_numa_node
 * = the considered waiter's). It runs for every contended spinlock of the
 * kernel, as the artifact's numa-grouping livepatch made it.
 *
 * The clone's ABI is a property of this gcc-11 build, not of the source:
 * gcc dropped policy_id (dead, both comparator branches being the same
 * expression) and the callers pass (lock, node, is_next_waiter, custom) in
 * rdi, rsi, edx, ecx; the clone never reads custom. concord_target_init
 * therefore checks the symbol, its ftrace call site and its size (0x190 in
 * the kernel of ../shared/kernels/shfllock-syncord) and refuses anything
 * else.
 *
 * Why replacing it under the klp consistency model is sound: a shuffle is a
 * self-contained step on a queue whose nodes the callers own; old and new
 * shuffles may run at the same time on other CPUs during the transition
 * because both keep the protocol's invariants: only the waiter holding the
 * shuffler role (sleader) rewires links, never at the queue's tail (the
 * node whose cid the lock word's tail names), publishing with smp_wmb and
 * store-release; whatever the comparator says, the queue stays well formed.
 */

/*
 * struct mcs_spinlock of shfllock-syncord (kernel/locking/mcs_spinlock.h,
 * which the headers package lacks). The offsets are the ones the kernel's
 * own code uses (disassembly of queued_spin_lock_slowpath and
 * shuffle_waiters.constprop.0): checked with BUILD_BUG_ON below.
 */
struct concord_shfl_node {
	struct concord_shfl_node *next;
	union {
		int locked;
		struct {
			u8 lstatus;	/* 1: the MCS lock was passed to this waiter */
			u8 sleader;	/* 1: this waiter holds the shuffler role */
			u16 wcount;	/* shuffle batch mark, 0: not shuffled yet */
		};
	};
	int count;
	int nid;	/* NUMA node of the waiter */
	int cid;	/* CPU + 1, as in the lock word's tail */
	void *bpf_args;
	struct concord_shfl_node *last_visited;	/* where the last shuffle stopped */
};

#define CONCORD_SHFL_SYMBOL "shuffle_waiters.constprop.0"
#define CONCORD_SHFL_SIZE 0x190
#define CONCORD_SHFL_LOCKED_PENDING_MASK (_Q_LOCKED_MASK | _Q_PENDING_MASK)

/* Our own xorshift seeds (seeded odd at init: never 0, no get_random_bytes in a slow path). */
static DEFINE_PER_CPU(u32, concord_shfl_seed);

/* false with probability 1/65536, as the kernel's probably(): hand the shuffler role on. */
static bool concord_shfl_keep_role(void)
{
	u32 v = this_cpu_read(concord_shfl_seed);

	v ^= v << 6;
	v ^= v >> 21;
	v ^= v << 7;
	this_cpu_write(concord_shfl_seed, v);
	return v & 0xffff;
}

/* Should curr be grouped with the shuffler node? The slot's program decides. */
static int concord_shfl_cmp(struct qspinlock *lock, struct concord_shfl_node *node,
			    struct concord_shfl_node *curr)
{
	struct bpf_prog *prog = concord_prog(HOOK_SHOULD_REORDER, READ_ONCE(slot));

	if (unlikely(!prog))	/* not while patched: the slot is filled first, emptied last */
		return node->nid == curr->nid;
	return concord_run_cmp(prog, lock, node->nid, curr->nid) != 0;
}

static void concord_shfl_set_leader(struct concord_shfl_node *leader, struct concord_shfl_node *qend)
{
	smp_store_release(&leader->sleader, 1);
	if (qend != leader)
		smp_store_release(&leader->last_visited, qend);
}

/*
 * Replaces shuffle_waiters.constprop.0. node holds the shuffler role; it
 * walks the queue from where its last shuffle stopped, moves each waiter the
 * program groups with it up behind the group (marking it with node's
 * batch), and stops at the queue's tail, at its end, or once it grouped one
 * and it is time to stop: the lock is free for the queue head
 * (is_next_waiter), or node got the MCS lock. Then it hands the role to the
 * last waiter of the group.
 */
static void concord_shuffle_waiters(struct qspinlock *lock, struct concord_shfl_node *node,
				    int is_next_waiter, int custom)
{
	struct concord_shfl_node *prev, *curr, *next, *last = node, *leader = NULL, *qend = NULL;
	bool grouped = false;
	u16 batch;

	prev = smp_load_acquire(&node->last_visited);
	if (!prev)
		prev = node;
	batch = node->wcount;
	barrier();
	if (!batch) {
		batch = 1;
		smp_store_release(&node->wcount, batch);
	}
	node->sleader = 0;	/* one shuffler at a time: the next is chosen below */

	if (!concord_shfl_keep_role()) {
		leader = READ_ONCE(node->next);
		goto out;
	}

	for (;;) {
		curr = READ_ONCE(prev->next);
		if (!curr) {
			leader = last;
			qend = prev;
			break;
		}
recheck:
		/* Never touch the tail: a new waiter may be linking itself behind it. */
		if (curr->cid == (atomic_read(&lock->val) >> _Q_TAIL_CPU_OFFSET)) {
			leader = last;
			qend = prev;
			break;
		}
		if (concord_shfl_cmp(lock, node, curr)) {
			if (prev == last) {
				/* already next to the group: extend it */
				smp_store_release(&curr->wcount, batch);
				last = curr;
				prev = curr;
				grouped = true;
			} else {
				next = READ_ONCE(curr->next);
				if (!next) {
					leader = last;
					qend = prev;
					break;
				}
				smp_store_release(&curr->wcount, batch);
				/* unlink curr after prev, link it in after last */
				prev->next = next;
				curr->next = last->next;
				last->next = curr;
				smp_wmb();
				last = curr;
				curr = next;
				grouped = true;
				goto recheck;
			}
		} else {
			prev = curr;
		}
		if (grouped &&
		    ((is_next_waiter &&
		      !(atomic_read_acquire(&lock->val) & CONCORD_SHFL_LOCKED_PENDING_MASK)) ||
		     (!is_next_waiter && READ_ONCE(node->lstatus)))) {
			leader = last;
			qend = prev;
			break;
		}
	}
out:
	if (leader)
		concord_shfl_set_leader(leader, qend);
}

/*
 * Refuses a kernel this file does not know: the symbol must exist, start
 * with an ftrace call site and have the size of the clone whose ABI the
 * replacement follows.
 */
static int concord_target_init(void)
{
	int cpu, err;

	BUILD_BUG_ON(offsetof(struct concord_shfl_node, next) != 0);
	BUILD_BUG_ON(offsetof(struct concord_shfl_node, lstatus) != 8);
	BUILD_BUG_ON(offsetof(struct concord_shfl_node, sleader) != 9);
	BUILD_BUG_ON(offsetof(struct concord_shfl_node, wcount) != 0xa);
	BUILD_BUG_ON(offsetof(struct concord_shfl_node, count) != 0xc);
	BUILD_BUG_ON(offsetof(struct concord_shfl_node, nid) != 0x10);
	BUILD_BUG_ON(offsetof(struct concord_shfl_node, cid) != 0x14);
	BUILD_BUG_ON(offsetof(struct concord_shfl_node, bpf_args) != 0x18);
	BUILD_BUG_ON(offsetof(struct concord_shfl_node, last_visited) != 0x20);
	BUILD_BUG_ON(sizeof(struct concord_shfl_node) != 40);

	/* Another size may mean another argument order of the clone. */
	if (!concord_replaceable(CONCORD_SHFL_SYMBOL, CONCORD_SHFL_SIZE, "shfllock-syncord", &err))
		return err;
	for_each_possible_cpu(cpu)
		per_cpu(concord_shfl_seed, cpu) = get_random_u32() | 1;
	return 0;
}

/* concord_shuffle_waiters runs this module's slot: one such module at a time. */
#define CONCORD_TARGET_EXCLUSIVE "concord_shuffle_waiters"

#define CONCORD_TARGET_FUNCS \
	{ .old_name = CONCORD_SHFL_SYMBOL, .new_func = concord_shuffle_waiters },
