// SPDX-License-Identifier: GPL-2.0
/*
 * concord.c: syncord's livepatch for the SynCord 5.4 kernels.
 *
 * One generic module, configured at build time by concord_policy.h (made by
 * `syncord policy build --livepatch` from the policy's manifest): the name of
 * the policy, the lock it targets and the bpffs pin of each hook program.
 *
 * The pre-patch callback takes a free slot (1..4) of the kernel's exported
 * policy arrays (bpf_prog_lock_*[MAX_POLICY]) and fills it with the pinned
 * programs, each looked up at /sys/fs/bpf/<pin> and checked to be a
 * BPF_PROG_TYPE_LOCK_POLICY program. A missing pin, a program of another
 * type or no free slot fails the patch, and everything taken so far is given
 * back. The post-unpatch callback empties the slot, drops the programs and
 * frees the per-lock data.
 *
 * Replaced functions (kept minimal):
 *  - bpf_queued_spin_lock / bpf_queued_spin_unlock: the SynCord kernel's
 *    policy-aware entry points, whose hook stubs are empty static functions
 *    compiled away; ours run the slot's programs around the lock:
 *    to_acquire, bypass_acquire, enable_fastpath, to_enter_slowpath (the
 *    fast path failed: the lock is contended, before queueing), acquired;
 *    to_release, bypass_release, released.
 *  - d_move (target rename_lock): takes rename_lock through
 *    bpf_write_seqlock with this module's slot, preemption disabled as
 *    write_seqlock would.
 *  - target s_vfs_rename (scl.c): lock_rename, unlock_rename and the
 *    rename syscall entries run the slot's programs around the real
 *    s_vfs_rename_mutex (see scl.c).
 *  - target rwsem (the slot's _read arrays of kernel/locking/rwsem.c):
 *    down_read, down_read_killable, down_read_trylock and up_read run
 *    bypass_acquire / acquired / bypass_release around the kernel's own
 *    code; down_write, down_write_killable and down_write_trylock revoke the
 *    reader bypass after taking the lock. The kernel's code is reached past
 *    its ftrace call site (checked with ftrace_location at init), so no rwsem
 *    internals are copied here. The rwsem target's contract with a policy:
 *    arg1 is the reader-bias word, cleared by a writer to revoke; arg2 is set
 *    by the writer to the time (ns) before which bias must not come back
 *    (now + 9 x the revocation's duration, as BRAVO). The module counts the
 *    readers that bypassed each rwsem and remembers, per reader, the CPU
 *    cell it bypassed on (a reader may migrate before up_read); a writer
 *    waits for that count to drain (a trylock fails instead), and the
 *    pre-unpatch callback stops new bypasses and waits for all of them to be
 *    released before the original functions come back. up_read_non_owner
 *    is not replaced: a reader that bypassed must release from its own task.
 *
 *  - target all_spinlocks (every spinlock of the kernel): the branch's code
 *    in its own file, chosen by the CONCORD_BRANCH_* macro of
 *    concord_policy.h: shuffle.c on shfllock-syncord (ShflLock's waiter
 *    shuffle, whose grouping decision runs the slot's should_reorder
 *    program through concord_run_cmp), cna.c on cna-syncord (CNA's whole
 *    slow path, whose "move the next waiter to the secondary queue"
 *    decision runs it). Such a file provides
 *    concord_target_init() (refuses a kernel it does not know) and
 *    CONCORD_TARGET_FUNCS (its klp_func entries).
 *
 * Every field of the program context points at valid memory: per_cpu_data
 * at this CPU's 64-byte cell and arg1..arg8 at eight words of per-lock data
 * (a klp shadow variable of the lock, one per slot), so a policy may read and
 * write any of them. should_reorder programs (concord_run_cmp) run inside
 * spinlock slow paths, where no shadow may be allocated: their per_cpu_data
 * and arg1..arg4 point into one static block of this module (its slot's),
 * arg5/arg6 are the two waiters' NUMA nodes as values (numa_node,
 * next_numa_node: the shfllock/cna context), arg7/arg8 are 0. Target
 * s_vfs_rename has the scl policies' context instead (scl.c).
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/kallsyms.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/dcache.h>
#include <linux/seqlock.h>
#include <linux/slab.h>
#include <linux/rcupdate.h>
#include <linux/rwsem.h>
#include <linux/delay.h>
#include <linux/ftrace.h>
#include <linux/sched.h>
#include <linux/random.h>
#include <linux/percpu.h>
#include <linux/lock_policy.h>
#include <asm/qspinlock.h>

#include "concord_policy.h"

/*
 * The SynCord branch of the kernel tree (syncord reads it from the tree's
 * Module.symvers, else its release): none, when unknown, is fine for
 * targets every branch has.
 */
#if defined(CONCORD_BRANCH_STOCK) + defined(CONCORD_BRANCH_SHFLLOCK) + defined(CONCORD_BRANCH_CNA) > 1
#error "concord_policy.h names more than one SynCord branch"
#endif

#if defined(CONCORD_BRANCH_SHFLLOCK) || defined(CONCORD_BRANCH_CNA)
/* The kernel exports bpf_prog_should_reorder (ShflLock's and CNA's comparator slot). */
#define CONCORD_HAVE_REORDER_SLOTS 1
#endif

#ifdef CONCORD_TARGET_RENAME_LOCK
/* The target takes its lock through bpf_queued_spin_lock/unlock, replaced here. */
#define CONCORD_BPF_SPINLOCK 1
#endif

#define CONCORD_MAX_POLICY 5	/* MAX_POLICY of kernel/locking/qspinlock.c */
#define CONCORD_SHADOW_ID(slot) (0x5c0d0000UL | (unsigned long)(slot))

/* The SynCord kernel's exported policy slots (kernel/locking/qspinlock.c). */
extern int num_policy;
extern void *bpf_prog_lock_to_acquire[CONCORD_MAX_POLICY];
extern void *bpf_prog_lock_acquired[CONCORD_MAX_POLICY];
extern void *bpf_prog_lock_to_release[CONCORD_MAX_POLICY];
extern void *bpf_prog_lock_released[CONCORD_MAX_POLICY];
extern void *bpf_prog_lock_to_enter_slowpath[CONCORD_MAX_POLICY];
extern void *bpf_prog_lock_enable_fastpath[CONCORD_MAX_POLICY];
extern void *bpf_prog_lock_bypass_acquire[CONCORD_MAX_POLICY];
extern void *bpf_prog_lock_bypass_release[CONCORD_MAX_POLICY];
#ifdef CONCORD_HAVE_REORDER_SLOTS
extern void *bpf_prog_should_reorder[CONCORD_MAX_POLICY];
#endif
#ifdef CONCORD_BRANCH_SHFLLOCK
extern void *bpf_prog_skip_reorder[CONCORD_MAX_POLICY];
#endif
#ifdef CONCORD_HAVE_RWSEM_SLOTS
/* stock-syncord's kernel/locking/rwsem.c slots, which count as taken slots too */
extern void *bpf_prog_lock_to_acquire_read[CONCORD_MAX_POLICY];
extern void *bpf_prog_lock_acquired_read[CONCORD_MAX_POLICY];
extern void *bpf_prog_lock_to_release_read[CONCORD_MAX_POLICY];
extern void *bpf_prog_lock_released_read[CONCORD_MAX_POLICY];
extern void *bpf_prog_lock_bypass_acquire_read[CONCORD_MAX_POLICY];
extern void *bpf_prog_lock_bypass_release_read[CONCORD_MAX_POLICY];
extern void *bpf_prog_lock_to_acquire_write[CONCORD_MAX_POLICY];
extern void *bpf_prog_lock_acquired_write[CONCORD_MAX_POLICY];
extern void *bpf_prog_lock_to_release_write[CONCORD_MAX_POLICY];
extern void *bpf_prog_lock_released_write[CONCORD_MAX_POLICY];
extern void *bpf_prog_lock_bypass_acquire_write[CONCORD_MAX_POLICY];
extern void *bpf_prog_lock_bypass_release_write[CONCORD_MAX_POLICY];
#endif

enum concord_hook {
	HOOK_TO_ACQUIRE,
	HOOK_ACQUIRED,
	HOOK_TO_RELEASE,
	HOOK_RELEASED,
	HOOK_TO_ENTER_SLOWPATH,
	HOOK_ENABLE_FASTPATH,
	HOOK_BYPASS_ACQUIRE,
	HOOK_BYPASS_RELEASE,
	HOOK_SHOULD_REORDER,
	NR_HOOKS,
};

static const char *const concord_hook_names[NR_HOOKS] = {
	"lock_to_acquire", "lock_acquired", "lock_to_release", "lock_released",
	"lock_to_enter_slowpath", "lock_enable_fastpath",
	"lock_bypass_acquire", "lock_bypass_release", "should_reorder",
};

#if defined(CONCORD_TARGET_RWSEM) && !defined(CONCORD_HAVE_RWSEM_SLOTS)
#error "target rwsem needs the rwsem policy slots of stock-syncord (bpf_prog_lock_*_read)"
#endif

#ifdef CONCORD_TARGET_RWSEM
/* The rwsem (read side) slot array of each hook; the rwsem has no fast path hooks. */
static void **const concord_slots[NR_HOOKS] = {
	bpf_prog_lock_to_acquire_read, bpf_prog_lock_acquired_read,
	bpf_prog_lock_to_release_read, bpf_prog_lock_released_read,
	NULL, NULL,
	bpf_prog_lock_bypass_acquire_read, bpf_prog_lock_bypass_release_read,
	NULL,
};
#else
/* The spinlock slot array of each hook. */
static void **const concord_slots[NR_HOOKS] = {
	bpf_prog_lock_to_acquire, bpf_prog_lock_acquired,
	bpf_prog_lock_to_release, bpf_prog_lock_released,
	bpf_prog_lock_to_enter_slowpath, bpf_prog_lock_enable_fastpath,
	bpf_prog_lock_bypass_acquire, bpf_prog_lock_bypass_release,
#ifdef CONCORD_HAVE_REORDER_SLOTS
	bpf_prog_should_reorder,
#else
	NULL,
#endif
};
#endif

/* Every array a slot is taken in, by us or by another policy module. */
static void **const concord_all_slots[] = {
	bpf_prog_lock_to_acquire, bpf_prog_lock_acquired,
	bpf_prog_lock_to_release, bpf_prog_lock_released,
	bpf_prog_lock_to_enter_slowpath, bpf_prog_lock_enable_fastpath,
	bpf_prog_lock_bypass_acquire, bpf_prog_lock_bypass_release,
#ifdef CONCORD_HAVE_REORDER_SLOTS
	bpf_prog_should_reorder,
#endif
#ifdef CONCORD_BRANCH_SHFLLOCK
	bpf_prog_skip_reorder,
#endif
#ifdef CONCORD_HAVE_RWSEM_SLOTS
	bpf_prog_lock_to_acquire_read, bpf_prog_lock_acquired_read,
	bpf_prog_lock_to_release_read, bpf_prog_lock_released_read,
	bpf_prog_lock_bypass_acquire_read, bpf_prog_lock_bypass_release_read,
	bpf_prog_lock_to_acquire_write, bpf_prog_lock_acquired_write,
	bpf_prog_lock_to_release_write, bpf_prog_lock_released_write,
	bpf_prog_lock_bypass_acquire_write, bpf_prog_lock_bypass_release_write,
#endif
};

/* The pin of each hook program, from concord_policy.h ("" for none). */
static const char *const concord_pins[NR_HOOKS] = {
	[HOOK_TO_ACQUIRE] = CONCORD_PIN_TO_ACQUIRE,
	[HOOK_ACQUIRED] = CONCORD_PIN_ACQUIRED,
	[HOOK_TO_RELEASE] = CONCORD_PIN_TO_RELEASE,
	[HOOK_RELEASED] = CONCORD_PIN_RELEASED,
	[HOOK_TO_ENTER_SLOWPATH] = CONCORD_PIN_TO_ENTER_SLOWPATH,
	[HOOK_ENABLE_FASTPATH] = CONCORD_PIN_ENABLE_FASTPATH,
	[HOOK_BYPASS_ACQUIRE] = CONCORD_PIN_BYPASS_ACQUIRE,
	[HOOK_BYPASS_RELEASE] = CONCORD_PIN_BYPASS_RELEASE,
	[HOOK_SHOULD_REORDER] = CONCORD_PIN_SHOULD_REORDER,
};

/* The slot this module holds while its patch is enabled (0: none). */
static int slot;
module_param(slot, int, 0444);
MODULE_PARM_DESC(slot, "policy slot this module holds (read-only; 0 while it holds none)");

static struct bpf_prog *concord_progs[NR_HOOKS];

/* Per-lock data behind every context field; one klp shadow per lock and slot. */
struct concord_lock_data {
	unsigned long arg[8];
	atomic_t readers;	/* rwsem: readers holding it through a bypass */
	struct __aligned_u64_field per_cpu[];
};

static __maybe_unused struct concord_lock_data *concord_data(void *lock, int policy_id)
{
	size_t size = sizeof(struct concord_lock_data) +
		nr_cpu_ids * sizeof(struct __aligned_u64_field);

	return klp_shadow_get_or_alloc(lock, CONCORD_SHADOW_ID(policy_id), size,
				       GFP_ATOMIC, NULL, NULL);
}

/*
 * concord_run runs the program of hook in slot policy_id on lock and returns
 * its result, or dflt when the slot has no program for the hook.
 */
/*
 * The program context as the verifier's rewrite of lock policy programs
 * reads it (net/core/filter.c lock_policy_ctx_access): offset 0 a pointer to
 * the lock word, 8 a value, 16..80 pointers the program reads and writes
 * through, 88 the verifier's scratch slot. The kernel's struct
 * lock_policy_args has this layout on every branch but names and types its
 * fields differently (shfllock and cna declare arg5..arg8 as values), so
 * we use our own and check the size and the scratch slot against it.
 */
struct concord_args {
	void *lock;
	unsigned long lock_ptr;
	void *per_cpu_data;
	unsigned long *arg[8];
	unsigned long tmp_reg;
};

static u32 __maybe_unused concord_run_prog(struct bpf_prog *prog, void *lock,
			    struct concord_lock_data *d, int cpu)
{
	struct concord_args args;
	u32 ret;
	int i;

	BUILD_BUG_ON(sizeof(struct concord_args) != sizeof(struct lock_policy_args));
	BUILD_BUG_ON(offsetof(struct concord_args, tmp_reg) != offsetof(struct lock_policy_args, tmp_reg));
	args.lock = lock;
	args.lock_ptr = (unsigned long)lock;
	args.per_cpu_data = &d->per_cpu[cpu];
	for (i = 0; i < 8; i++)
		args.arg[i] = &d->arg[i];
	args.tmp_reg = 0;
	rcu_read_lock();
	ret = BPF_PROG_RUN(prog, &args);
	rcu_read_unlock();
	return ret;
}

static struct bpf_prog *concord_prog(enum concord_hook hook, int policy_id)
{
	if (policy_id <= 0 || policy_id >= CONCORD_MAX_POLICY || !concord_slots[hook])
		return NULL;
	return READ_ONCE(concord_slots[hook][policy_id]);
}

static u32 __maybe_unused concord_run(enum concord_hook hook, void *lock, int policy_id, u32 dflt)
{
	struct concord_lock_data *d;
	struct bpf_prog *prog;
	u32 ret = dflt;

	prog = concord_prog(hook, policy_id);
	if (!prog)
		return dflt;
	preempt_disable();
	d = concord_data(lock, policy_id);
	if (d)
		ret = concord_run_prog(prog, lock, d, smp_processor_id());
	preempt_enable();
	return ret;
}

#ifdef CONCORD_HAVE_REORDER_SLOTS
/*
 * A should_reorder program's context (shfllock-syncord's and cna-syncord's
 * struct lock_policy_args): arg5..arg8 are values, the waiters' NUMA nodes
 * in the first two.
 */
struct concord_cmp_args {
	void *lock;
	unsigned long lock_ptr;
	void *per_cpu_data;
	unsigned long *arg[4];
	unsigned long numa_node;
	unsigned long next_numa_node;
	unsigned long arg7;
	unsigned long arg8;
	unsigned long tmp_reg;
};

/*
 * What per_cpu_data and arg1..arg4 of a should_reorder program point at:
 * one block for this module's slot, for every lock (a comparison runs
 * inside a spinlock's slow path: no allocation, no shadow lookup there).
 */
static struct {
	unsigned long arg[4];
	struct __aligned_u64_field per_cpu[NR_CPUS];
} concord_cmp_data __maybe_unused;

/*
 * concord_run_cmp runs the should_reorder program prog for two waiters of
 * lock, on NUMA nodes numa_node (the waiter deciding) and next_numa_node
 * (the one it considers), and returns its verdict. The caller is inside the
 * lock's slow path (preemption off, maybe an interrupt): this takes no lock
 * and allocates nothing. The program reads the lock word through a copy: a
 * spinlock is 4 bytes and the context's lock field is read 8 bytes wide.
 */
static __maybe_unused u32 concord_run_cmp(struct bpf_prog *prog, struct qspinlock *lock,
			   unsigned long numa_node, unsigned long next_numa_node)
{
	unsigned long word = (u32)atomic_read(&lock->val);
	struct concord_cmp_args args;
	u32 ret;
	int i;

	BUILD_BUG_ON(sizeof(struct concord_cmp_args) != sizeof(struct concord_args));
	BUILD_BUG_ON(offsetof(struct concord_cmp_args, numa_node) != 56);
	BUILD_BUG_ON(offsetof(struct concord_cmp_args, next_numa_node) != 64);
	BUILD_BUG_ON(offsetof(struct concord_cmp_args, tmp_reg) != offsetof(struct lock_policy_args, tmp_reg));
	args.lock = &word;
	args.lock_ptr = (unsigned long)lock;
	args.per_cpu_data = &concord_cmp_data.per_cpu[raw_smp_processor_id() % NR_CPUS];
	for (i = 0; i < 4; i++)
		args.arg[i] = &concord_cmp_data.arg[i];
	args.numa_node = numa_node;
	args.next_numa_node = next_numa_node;
	args.arg7 = 0;
	args.arg8 = 0;
	args.tmp_reg = 0;
	rcu_read_lock();
	ret = BPF_PROG_RUN(prog, &args);
	rcu_read_unlock();
	return ret;
}
#endif

#ifdef CONCORD_BPF_SPINLOCK
/* Replaces bpf_queued_spin_lock (kernel/locking/qspinlock.c). */
static void concord_queued_spin_lock(struct qspinlock *lock, int policy_id)
{
	u32 val = 0;

	concord_run(HOOK_TO_ACQUIRE, lock, policy_id, 0);
	if (unlikely(concord_run(HOOK_BYPASS_ACQUIRE, lock, policy_id, 0)))
		return;
	if (likely(concord_run(HOOK_ENABLE_FASTPATH, lock, policy_id, 1)) &&
	    likely(atomic_try_cmpxchg_acquire(&lock->val, &val, _Q_LOCKED_VAL))) {
		concord_run(HOOK_ACQUIRED, lock, policy_id, 0);
		return;
	}
	concord_run(HOOK_TO_ENTER_SLOWPATH, lock, policy_id, 0);
	queued_spin_lock_slowpath(lock, val, 1, policy_id);
	concord_run(HOOK_ACQUIRED, lock, policy_id, 0);
}

/* Replaces bpf_queued_spin_unlock. */
static void concord_queued_spin_unlock(struct qspinlock *lock, int policy_id)
{
	concord_run(HOOK_TO_RELEASE, lock, policy_id, 0);
	if (unlikely(concord_run(HOOK_BYPASS_RELEASE, lock, policy_id, 0)))
		return;
	smp_store_release(&lock->locked, 0);
	concord_run(HOOK_RELEASED, lock, policy_id, 0);
}
#endif

#ifdef CONCORD_TARGET_RENAME_LOCK
/*
 * concord_d_move runs this module's slot: a second rename_lock module's
 * d_move would hide this one's programs. One such module at a time.
 */
#define CONCORD_TARGET_EXCLUSIVE "concord_d_move"

/* __d_move is static in fs/dcache.c: found through kallsyms at init. */
static void (*concord___d_move)(struct dentry *dentry, struct dentry *target,
				bool exchange);

/*
 * Replaces d_move (fs/dcache.c): write_seqlock(&rename_lock) with the
 * spinlock taken through bpf_queued_spin_lock and this module's slot (what
 * stock-syncord's bpf_write_seqlock does; cna-syncord's seqlock.h has none),
 * preemption disabled as spin_lock would.
 */
static void concord_d_move(struct dentry *dentry, struct dentry *target)
{
	int id = READ_ONCE(slot);

	preempt_disable();
	bpf_queued_spin_lock(&rename_lock.lock.rlock.raw_lock, id);
	write_seqcount_begin(&rename_lock.seqcount);
	concord___d_move(dentry, target, false);
	write_seqcount_end(&rename_lock.seqcount);
	bpf_queued_spin_unlock(&rename_lock.lock.rlock.raw_lock, id);
	preempt_enable();
}
#endif


/* ftrace_location() is not exported: found through kallsyms at init. */
static unsigned long (*concord_ftrace_location)(unsigned long ip);

/*
 * The address of the function name when it starts with an ftrace call
 * site (so klp can redirect it), else 0.
 */
static unsigned long __maybe_unused concord_ftrace_site(const char *name)
{
	unsigned long ip = kallsyms_lookup_name(name);

	if (!ip || !concord_ftrace_location || concord_ftrace_location(ip) != ip)
		return 0;
	return ip;
}

/*
 * The address of the kernel function name, which this module replaces with
 * code written for one build of it, when klp can replace it and the build
 * is that one: it exists (else the kernel is not branch), starts with an
 * ftrace call site, and is size bytes long (sprint_symbol's
 * "name+0x0/size"). Otherwise the kernel log says why, *err is init's
 * error, and it returns 0.
 */
static unsigned long __maybe_unused concord_replaceable(const char *name, unsigned long size,
							 const char *branch, int *err)
{
	char buf[KSYM_SYMBOL_LEN], *sz;
	unsigned long ip = kallsyms_lookup_name(name), got;

	if (!ip) {
		pr_err("concord: policy %s: this kernel has no %s: not %s (target %s is attached there only)\n",
		       CONCORD_POLICY, name, branch, CONCORD_TARGET);
		*err = -ENOENT;
		return 0;
	}
	if (concord_ftrace_site(name) != ip) {
		pr_err("concord: policy %s: %s has no ftrace call site, klp cannot replace it (a kernel without DYNAMIC_FTRACE_WITH_REGS?)\n",
		       CONCORD_POLICY, name);
		*err = -EINVAL;
		return 0;
	}
	sprint_symbol(buf, ip);
	sz = strrchr(buf, '/');
	if (!sz || kstrtoul(sz + 1, 16, &got) || got != size) {
		pr_err("concord: policy %s: %s is %s, not of size %#lx: compiled differently than in the %s kernel this module's copy of it was written for; refusing\n",
		       CONCORD_POLICY, name, buf, size, branch);
		*err = -EINVAL;
		return 0;
	}
	return ip;
}

#ifdef CONCORD_TARGET_ALL_SPINLOCKS
#if defined(CONCORD_BRANCH_SHFLLOCK)
#include "shuffle.c"
#elif defined(CONCORD_BRANCH_CNA)
#include "cna.c"
#else
#error "target all_spinlocks: the concord livepatch attaches it on shfllock-syncord and cna-syncord only (concord_policy.h names neither CONCORD_BRANCH_SHFLLOCK nor CONCORD_BRANCH_CNA)"
#endif
#endif

#ifdef CONCORD_TARGET_S_VFS_RENAME
#include "scl.c"	/* lock_rename, unlock_rename and the rename syscalls */
#endif

#ifdef CONCORD_TARGET_RWSEM
/*
 * The kernel's own rwsem entry points, reached past their ftrace call site
 * (the call klp redirects to our replacements).
 */
static void (*orig_down_read)(struct rw_semaphore *sem);
static int (*orig_down_read_killable)(struct rw_semaphore *sem);
static int (*orig_down_read_trylock)(struct rw_semaphore *sem);
static void (*orig_up_read)(struct rw_semaphore *sem);
static void (*orig_down_write)(struct rw_semaphore *sem);
static int (*orig_down_write_killable)(struct rw_semaphore *sem);
static int (*orig_down_write_trylock)(struct rw_semaphore *sem);

/* Readers holding a rwsem through a bypass, over all rwsems. */
static atomic_t concord_bypassed = ATOMIC_INIT(0);
/* Set by the pre-unpatch callback: no new bypass. */
static bool concord_draining;

/* A reader's bypass record: the CPU cell it took. Shadow of the rwsem, id of the task. */
struct concord_reader {
	int cpu;
};

static unsigned long concord_reader_id(void)
{
	return (unsigned long)current | 1UL;
}

static struct concord_lock_data *concord_rwsem_data(struct rw_semaphore *sem, int id)
{
	return klp_shadow_get(sem, CONCORD_SHADOW_ID(id));
}

/* Reader fast path: true when the policy lets this reader bypass the rwsem. */
static bool concord_read_bypass(struct rw_semaphore *sem)
{
	int id = READ_ONCE(slot), cpu;
	struct bpf_prog *prog = concord_prog(HOOK_BYPASS_ACQUIRE, id);
	struct concord_lock_data *d;
	struct concord_reader *r;
	u32 ok;

	if (!prog || !(d = concord_rwsem_data(sem, id)))
		return false;
	if (klp_shadow_get(sem, concord_reader_id()))
		return false;	/* already holds it through a bypass */
	r = klp_shadow_alloc(sem, concord_reader_id(), sizeof(*r), GFP_NOWAIT, NULL, NULL);
	if (!r)
		return false;
	atomic_inc(&concord_bypassed);
	atomic_inc(&d->readers);
	smp_mb__after_atomic();	/* pairs with the writer's smp_mb in concord_revoke */
	ok = 0;
	preempt_disable();
	cpu = smp_processor_id();
	if (!READ_ONCE(concord_draining))
		ok = concord_run_prog(prog, sem, d, cpu);
	preempt_enable();
	if (ok) {
		r->cpu = cpu;
		return true;
	}
	atomic_dec(&d->readers);
	atomic_dec(&concord_bypassed);
	klp_shadow_free(sem, concord_reader_id(), NULL);
	return false;
}

/* Reader release: true when this reader held the rwsem through a bypass. */
static bool concord_read_bypass_release(struct rw_semaphore *sem)
{
	int id = READ_ONCE(slot);
	struct concord_lock_data *d;
	struct concord_reader *r;
	struct bpf_prog *prog;
	int cpu;

	r = klp_shadow_get(sem, concord_reader_id());
	if (!r)
		return false;
	cpu = r->cpu;
	klp_shadow_free(sem, concord_reader_id(), NULL);
	d = concord_rwsem_data(sem, id);
	prog = concord_prog(HOOK_BYPASS_RELEASE, id);
	if (d && prog && !concord_run_prog(prog, sem, d, cpu))
		pr_warn_once("concord: policy %s: bypass_release refused a reader that bypassed; released it anyway\n",
			     CONCORD_POLICY);
	if (d) {
		smp_mb__before_atomic();
		atomic_dec(&d->readers);
	}
	atomic_dec(&concord_bypassed);
	return true;
}

/* A reader that took the rwsem the kernel's way. */
static void concord_read_acquired(struct rw_semaphore *sem)
{
	concord_run(HOOK_ACQUIRED, sem, READ_ONCE(slot), 0);
}

/*
 * Writer holding the rwsem: revoke the reader bias (arg1) and wait for the
 * readers that bypassed. With wait false (trylock) it only says whether any
 * is left.
 */
static bool concord_revoke(struct rw_semaphore *sem, bool wait)
{
	struct concord_lock_data *d = concord_rwsem_data(sem, READ_ONCE(slot));
	u64 start;

	if (!d)
		return true;
	if (READ_ONCE(d->arg[0])) {
		start = ktime_get_ns();
		WRITE_ONCE(d->arg[0], 0);
		smp_mb();
		while (atomic_read(&d->readers)) {
			if (!wait)
				return false;
			cond_resched();
			cpu_relax();
		}
		WRITE_ONCE(d->arg[1], ktime_get_ns() + 9 * (ktime_get_ns() - start));
		return true;
	}
	smp_mb();
	while (atomic_read(&d->readers)) {
		if (!wait)
			return false;
		cond_resched();
		cpu_relax();
	}
	return true;
}

/*
 * concord_down_read (and up_read) run this module's slot: with two rwsem
 * modules, a reader bypassed through one's down_read would be released
 * through the other's up_read. One such module at a time.
 */
#define CONCORD_TARGET_EXCLUSIVE "concord_down_read"

static void concord_down_read(struct rw_semaphore *sem)
{
	if (concord_read_bypass(sem))
		return;
	orig_down_read(sem);
	concord_read_acquired(sem);
}

static int concord_down_read_killable(struct rw_semaphore *sem)
{
	int ret;

	if (concord_read_bypass(sem))
		return 0;
	ret = orig_down_read_killable(sem);
	if (!ret)
		concord_read_acquired(sem);
	return ret;
}

static int concord_down_read_trylock(struct rw_semaphore *sem)
{
	int ret;

	if (concord_read_bypass(sem))
		return 1;
	ret = orig_down_read_trylock(sem);
	if (ret == 1)
		concord_read_acquired(sem);
	return ret;
}

static void concord_up_read(struct rw_semaphore *sem)
{
	if (concord_read_bypass_release(sem))
		return;
	orig_up_read(sem);
}

static void concord_down_write(struct rw_semaphore *sem)
{
	orig_down_write(sem);
	concord_revoke(sem, true);
}

static int concord_down_write_killable(struct rw_semaphore *sem)
{
	int ret = orig_down_write_killable(sem);

	if (!ret)
		concord_revoke(sem, true);
	return ret;
}

static int concord_down_write_trylock(struct rw_semaphore *sem)
{
	if (orig_down_write_trylock(sem) != 1)
		return 0;
	if (concord_revoke(sem, false))
		return 1;
	up_write(sem);	/* readers still hold it through a bypass */
	return 0;
}

/* Stop new bypasses and wait for the held ones before the kernel's code returns. */
static void concord_pre_unpatch(struct klp_object *obj)
{
	WRITE_ONCE(concord_draining, true);
	smp_mb();
	while (atomic_read(&concord_bypassed))
		msleep(1);
}

/* The body of name past its ftrace call site, or NULL. */
static void *concord_orig(const char *name)
{
	unsigned long ip = concord_ftrace_site(name);

	if (!ip) {
		pr_err("concord: policy %s: %s is not an ftrace-able function here\n", CONCORD_POLICY, name);
		return NULL;
	}
	return (void *)(ip + MCOUNT_INSN_SIZE);
}

static int concord_resolve(void)
{
	if (!concord_ftrace_location)
		return -ENOENT;
	if (!(orig_down_read = concord_orig("down_read")) ||
	    !(orig_down_read_killable = concord_orig("down_read_killable")) ||
	    !(orig_down_read_trylock = concord_orig("down_read_trylock")) ||
	    !(orig_up_read = concord_orig("up_read")) ||
	    !(orig_down_write = concord_orig("down_write")) ||
	    !(orig_down_write_killable = concord_orig("down_write_killable")) ||
	    !(orig_down_write_trylock = concord_orig("down_write_trylock")))
		return -ENOENT;
	return 0;
}
#endif

#ifndef CONCORD_TARGET_EXCLUSIVE
#error "the target defines no CONCORD_TARGET_EXCLUSIVE (one module per target: see below)"
#endif

#ifdef CONCORD_TARGET_EXCLUSIVE
/*
 * Every target defines CONCORD_TARGET_EXCLUSIVE as the name of a
 * replacement function that runs its own module's slot (rename_lock:
 * concord_d_move; rwsem: concord_down_read; s_vfs_rename (scl.c):
 * concord_lock_rename; all_spinlocks: concord_shuffle_waiters in shuffle.c,
 * concord_cna_slowpath in cna.c): two such modules would stack, and the
 * last one's would hide the other's policy. So a second module that
 * defines the same function is refused while the first is loaded (syncord
 * policy install refuses it earlier, from its records; this is the
 * backstop for a module inserted by hand).
 */
struct concord_sym_owner {
	const char *name;
	char owner[MODULE_NAME_LEN];
};

static int concord_find_owner(void *data, const char *name, struct module *mod,
			      unsigned long addr)
{
	struct concord_sym_owner *o = data;

	if (!mod || mod == THIS_MODULE || strcmp(name, o->name))
		return 0;
	strscpy(o->owner, mod->name, sizeof(o->owner));
	return 1;
}

/* True (and says so) when another loaded module defines CONCORD_TARGET_EXCLUSIVE. */
static bool concord_exclusive_owner(void)
{
	struct concord_sym_owner o = { .name = CONCORD_TARGET_EXCLUSIVE };

	mutex_lock(&module_mutex);
	kallsyms_on_each_symbol(concord_find_owner, &o);
	mutex_unlock(&module_mutex);
	if (!o.owner[0])
		return false;
	pr_err("concord: policy %s: module %s already replaces the function %s replaces on target %s (one such policy at a time: uninstall it first)\n",
	       CONCORD_POLICY, o.owner, CONCORD_TARGET_EXCLUSIVE, CONCORD_TARGET);
	return true;
}
#endif

static bool concord_slot_free(int s)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(concord_all_slots); i++)
		if (READ_ONCE(concord_all_slots[i][s]))
			return false;
	return true;
}

/* num_policy keeps the artifact's meaning: the highest slot in use. */
static void concord_update_num_policy(void)
{
	int s, top = 0;

	for (s = 1; s < CONCORD_MAX_POLICY; s++)
		if (!concord_slot_free(s))
			top = s;
	WRITE_ONCE(num_policy, top);
}

static void concord_put_progs(void)
{
	int i;

	for (i = 0; i < NR_HOOKS; i++) {
		if (concord_progs[i])
			bpf_prog_put(concord_progs[i]);
		concord_progs[i] = NULL;
	}
}

/* Runs under klp_mutex, so two policy modules never race for a slot. */
static int concord_pre_patch(struct klp_object *obj)
{
	struct bpf_prog *prog;
	int s, i;

	for (s = 1; s < CONCORD_MAX_POLICY; s++)
		if (concord_slot_free(s))
			break;
	if (s == CONCORD_MAX_POLICY) {
		pr_err("concord: policy %s: no free policy slot (%d policies installed; uninstall one)\n",
		       CONCORD_POLICY, CONCORD_MAX_POLICY - 1);
		return -EBUSY;
	}
#ifdef CONCORD_TARGET_EXCLUSIVE
	if (concord_exclusive_owner())
		return -EBUSY;
#endif
	for (i = 0; i < NR_HOOKS; i++) {
		if (!concord_pins[i][0])
			continue;
		if (!concord_slots[i]) {
			pr_err("concord: policy %s: %s has no slot for target %s\n",
			       CONCORD_POLICY, concord_hook_names[i], CONCORD_TARGET);
			concord_put_progs();
			return -EINVAL;
		}
		prog = bpf_prog_get_type_path(concord_pins[i], BPF_PROG_TYPE_LOCK_POLICY);
		if (IS_ERR(prog)) {
			pr_err("concord: policy %s: %s program %s: error %ld (not pinned, or not a lock policy program)\n",
			       CONCORD_POLICY, concord_hook_names[i], concord_pins[i], PTR_ERR(prog));
			concord_put_progs();
			return PTR_ERR(prog);
		}
		concord_progs[i] = prog;
	}
	for (i = 0; i < NR_HOOKS; i++)
		if (concord_progs[i])
			WRITE_ONCE(concord_slots[i][s], concord_progs[i]);
	WRITE_ONCE(slot, s);
	concord_update_num_policy();
	pr_info("concord: policy %s on %s in slot %d\n", CONCORD_POLICY, CONCORD_TARGET, s);
	return 0;
}

/* After the unpatch transition no task runs a function that uses the slot. */
static void concord_post_unpatch(struct klp_object *obj)
{
	int s = slot, i;

	if (s <= 0)
		return;
	for (i = 0; i < NR_HOOKS; i++)
		if (concord_progs[i] && READ_ONCE(concord_slots[i][s]) == concord_progs[i])
			WRITE_ONCE(concord_slots[i][s], NULL);
	synchronize_rcu();
	concord_put_progs();
	klp_shadow_free_all(CONCORD_SHADOW_ID(s), NULL);
#ifdef CONCORD_TARGET_S_VFS_RENAME
	concord_scl_free(s);
#endif
	WRITE_ONCE(slot, 0);
	concord_update_num_policy();
	pr_info("concord: policy %s left slot %d\n", CONCORD_POLICY, s);
}

static struct klp_func concord_funcs[] = {
#ifdef CONCORD_TARGET_RWSEM
	{ .old_name = "down_read", .new_func = concord_down_read },
	{ .old_name = "down_read_killable", .new_func = concord_down_read_killable },
	{ .old_name = "down_read_trylock", .new_func = concord_down_read_trylock },
	{ .old_name = "up_read", .new_func = concord_up_read },
	{ .old_name = "down_write", .new_func = concord_down_write },
	{ .old_name = "down_write_killable", .new_func = concord_down_write_killable },
	{ .old_name = "down_write_trylock", .new_func = concord_down_write_trylock },
#endif
#ifdef CONCORD_BPF_SPINLOCK
	{ .old_name = "bpf_queued_spin_lock", .new_func = concord_queued_spin_lock },
	{ .old_name = "bpf_queued_spin_unlock", .new_func = concord_queued_spin_unlock },
#endif
#ifdef CONCORD_TARGET_FUNCS
	CONCORD_TARGET_FUNCS
#endif
#ifdef CONCORD_TARGET_RENAME_LOCK
	{ .old_name = "d_move", .new_func = concord_d_move },
#endif
	{ }
};

static struct klp_object concord_objs[] = {
	{
		.name = NULL,	/* vmlinux */
		.funcs = concord_funcs,
		.callbacks = {
			.pre_patch = concord_pre_patch,
#ifdef CONCORD_TARGET_RWSEM
			.pre_unpatch = concord_pre_unpatch,
#endif
			.post_unpatch = concord_post_unpatch,
		},
	},
	{ }
};

static struct klp_patch concord_patch = {
	.mod = THIS_MODULE,
	.objs = concord_objs,
};

static int __init concord_init(void)
{
	concord_ftrace_location = (void *)kallsyms_lookup_name("ftrace_location");
#ifdef CONCORD_TARGET_ALL_SPINLOCKS
	{
		int err = concord_target_init();

		if (err)
			return err;
	}
#endif
#ifdef CONCORD_TARGET_RWSEM
	if (concord_resolve()) {
		pr_err("concord: policy %s: the rwsem entry points cannot be reached (is this a SynCord 5.4 kernel with ftrace?)\n",
		       CONCORD_POLICY);
		return -ENOENT;
	}
#endif
#ifdef CONCORD_TARGET_S_VFS_RENAME
	if (concord_scl_resolve(concord_funcs))
		return -ENOENT;
#endif
#ifdef CONCORD_TARGET_RENAME_LOCK
	concord___d_move = (void *)kallsyms_lookup_name("__d_move");
	if (!concord___d_move) {
		pr_err("concord: policy %s: __d_move not found in kallsyms (is this a SynCord 5.4 kernel?)\n",
		       CONCORD_POLICY);
		return -ENOENT;
	}
#endif
	return klp_enable_patch(&concord_patch);
}

static void concord_exit(void)
{
}

module_init(concord_init);
module_exit(concord_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("syncord concord livepatch: runs lock policy " CONCORD_POLICY " on " CONCORD_TARGET);
