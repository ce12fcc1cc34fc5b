// SPDX-License-Identifier: GPL-2.0
/*
 * scl.c: target s_vfs_rename of the concord livepatch (#included by
 * concord.c when concord_policy.h defines CONCORD_TARGET_S_VFS_RENAME).
 *
 * The lock is the per-superblock s_vfs_rename_mutex that lock_rename takes
 * for a rename across directories. It stays the real exclusion: every other
 * user of the mutex (d_splice_alias's mutex_trylock, ...) keeps working,
 * unlike the artifact's patch, which queued on the mutex's wait_lock
 * instead and left the mutex unowned. The slot's programs run around it:
 *
 *  - lock_rename (replaced; our copy of fs/namei.c's body, d_ancestor
 *    through kallsyms): to_acquire; when mutex_trylock fails,
 *    to_enter_slowpath (sleepable context, no lock held: a policy's
 *    back-off runs here), then mutex_lock; acquired.
 *  - unlock_rename (replaced; callers outside fs/namei.c: nfsd, overlayfs,
 *    cachefiles, ...): to_release before mutex_unlock, released after.
 *  - rename(2), renameat(2), renameat2(2) and SynCord's rename2 (syscall
 *    436, where the kernel has it), x86-64 and ia32 entries: fs/namei.c has unlock_rename inlined
 *    into do_renameat2 and do_renameat2_benchmark, so our unlock_rename
 *    never runs for them. Their entries are wrapped instead: the kernel's
 *    entry runs (reached past its ftrace call site), then to_release and
 *    released when our lock_rename took the mutex in that call. The hold
 *    time the policy sees then includes the syscall's short tail after the
 *    unlock (dput, path_put, mnt_drop_write).
 *
 * Pairing goes through a per-task klp shadow that says which superblock's
 * mutex our lock_rename took ("held"), so a task that took the mutex with
 * the kernel's lock_rename (before the patch) never runs to_release, and a
 * nested lock_rename (overlayfs renaming in the upper filesystem inside a
 * rename(2) of the overlay, or a retried rename) runs no hooks.
 *
 * Context (the scl policies' struct __lock_policy_args): offset 0 the
 * mutex's owner word (a copy), 8 the mutex's address, 16 this CPU's 64-byte
 * cell, 24 start_ts (per task), 32 lock_hold_capture (per call), 40
 * lock_hold (per task), 48 tot_lock_hold (per superblock), all pointers;
 * 56 numa_node, 64 next_numa_node (0), 72 num_threads (tasks that took this
 * superblock's mutex through our lock_rename), 80 arg8 (0) as values.
 * to_release runs under a per-superblock spinlock, so the policy's
 * tot_lock_hold += held never loses an update (in the syscall wrappers it
 * runs after the mutex was released).
 *
 * Back-off bound: programs run with preemption off (BPF_PROG_RUN), so a
 * back-off in to_enter_slowpath spins with preemption off. The program sees
 * lock_hold there through a copy clamped so that lock_hold * num_threads -
 * tot_lock_hold <= max_backoff_ns: SCL's excess (what it backs off by) is
 * bounded by the module whatever the policy's own cap says.
 *
 * Task shadows of exited tasks stay until the unpatch frees every shadow; a
 * task_struct reused by a new task is recognised by its start_time.
 *
 * should_reorder (numa-scl): a kernel mutex's wait list cannot be
 * reordered from outside, so when the slot has a should_reorder program the
 * contended path goes through an admission queue per superblock in front of
 * the mutex (concord_scl_queue_lock: on-stack MCS nodes, preemption on),
 * whose head groups the waiters behind it with the program before it takes
 * the mutex. A should_reorder that always returns false (scl's) is not
 * pinned into the module at all (concord.go checks its object): the mutex's
 * own order is FIFO already.
 */
#include <linux/fs.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/syscalls.h>
#include <linux/topology.h>

#define CONCORD_SCL_TASK_ID(slot) (0x5c0d1000UL | (unsigned long)(slot))
#define CONCORD_SCL_SB_ID(slot) (0x5c0d2000UL | (unsigned long)(slot))

static unsigned long max_backoff_ns = 10 * NSEC_PER_MSEC;
module_param(max_backoff_ns, ulong, 0644);
MODULE_PARM_DESC(max_backoff_ns, "bound of one back-off in to_enter_slowpath (ns; the module clamps the lock_hold it shows the program)");

/*
 * A waiter of the admission queue (numa-scl): on its task's stack, so a
 * waiter may be preempted and migrate (no per-CPU node as in a spinlock).
 */
struct concord_scl_node {
	struct concord_scl_node *next;
	int locked;		/* set by the previous head: this one is head */
	int nid;		/* NUMA node when it queued */
};

/* Per superblock (and slot): SCL's per-lock accounting. */
struct concord_scl_sb {
	unsigned long tot_lock_hold;
	atomic_long_t num_threads;
	spinlock_t acct;	/* serialises to_release */
	struct concord_scl_node *tail;	/* admission queue (numa-scl) */
};

/* Per task (and slot). */
struct concord_scl_task {
	unsigned long start_ts;
	unsigned long lock_hold;
	u64 task_start;		/* current->start_time when made */
	struct concord_scl_sb *held;	/* mutex taken by our lock_rename */
	unsigned long held_mutex;	/* its address (never dereferenced) */
};

/* The scl policies' context; see the top of this file. */
struct concord_scl_args {
	unsigned long *lock;
	unsigned long lock_ptr;
	void *per_cpu_data;
	unsigned long *start_ts;
	unsigned long *lock_hold_capture;
	unsigned long *lock_hold;
	unsigned long *tot_lock_hold;
	unsigned long numa_node;
	unsigned long next_numa_node;
	unsigned long num_threads;
	unsigned long arg8;
	unsigned long tmp_reg;
};

struct concord_scl_cell {
	unsigned long w[8];
} ____cacheline_aligned;
static DEFINE_PER_CPU(struct concord_scl_cell, concord_scl_cells);

static struct dentry *(*concord_d_ancestor)(struct dentry *p1, struct dentry *p2);

static int concord_scl_sb_ctor(void *obj, void *shadow_data, void *ctor_data)
{
	struct concord_scl_sb *l = shadow_data;

	spin_lock_init(&l->acct);
	return 0;
}

static struct concord_scl_sb *concord_scl_sb(struct super_block *sb, int id)
{
	return klp_shadow_get_or_alloc(sb, CONCORD_SCL_SB_ID(id), sizeof(struct concord_scl_sb),
				       GFP_KERNEL, concord_scl_sb_ctor, NULL);
}

/* This task's record; counted as a thread of l when new. */
static struct concord_scl_task *concord_scl_task(struct concord_scl_sb *l, int id)
{
	struct concord_scl_task *t = klp_shadow_get(current, CONCORD_SCL_TASK_ID(id));

	if (t && t->task_start == current->start_time)
		return t;
	if (!t)
		t = klp_shadow_get_or_alloc(current, CONCORD_SCL_TASK_ID(id), sizeof(*t),
					    GFP_KERNEL, NULL, NULL);
	if (!t)
		return NULL;
	memset(t, 0, sizeof(*t));	/* new, or a dead task's task_struct reused */
	t->task_start = current->start_time;
	atomic_long_inc(&l->num_threads);
	return t;
}

/*
 * Runs hook of slot id for t on the mutex at address m whose owner word is
 * owner (a copy: m is not dereferenced, a wrapper runs after the rename's
 * references to the superblock are gone); preemption is off (or acct held).
 */
static u32 concord_scl_run_nodes(enum concord_hook hook, int id, unsigned long m, unsigned long owner,
				 struct concord_scl_task *t, struct concord_scl_sb *l,
				 unsigned long numa_node, unsigned long next_numa_node)
{
	struct bpf_prog *prog = concord_prog(hook, id);
	struct concord_scl_cell *cell;
	struct concord_scl_args a;
	unsigned long capture = 0, hold, n, cap;
	u32 ret;

	if (!prog)
		return 0;
	BUILD_BUG_ON(sizeof(struct concord_scl_args) != sizeof(struct lock_policy_args));
	BUILD_BUG_ON(offsetof(struct concord_scl_args, tmp_reg) != offsetof(struct lock_policy_args, tmp_reg));
	BUILD_BUG_ON(offsetof(struct concord_scl_args, num_threads) != 72);
	cell = this_cpu_ptr(&concord_scl_cells);
	n = atomic_long_read(&l->num_threads);
	hold = t->lock_hold;
	a.lock = &owner;
	a.lock_ptr = m;
	a.per_cpu_data = cell;
	a.start_ts = &t->start_ts;
	a.lock_hold_capture = &capture;
	a.lock_hold = &t->lock_hold;
	if (hook == HOOK_TO_ENTER_SLOWPATH) {
		cap = READ_ONCE(max_backoff_ns);
		if (n && hold > (READ_ONCE(l->tot_lock_hold) + cap) / n)
			hold = (READ_ONCE(l->tot_lock_hold) + cap) / n;
		a.lock_hold = &hold;	/* a clamped copy: see the top of this file */
	}
	a.tot_lock_hold = &l->tot_lock_hold;
	a.numa_node = numa_node;
	a.next_numa_node = next_numa_node;
	a.num_threads = n;
	a.arg8 = 0;
	a.tmp_reg = 0;
	rcu_read_lock();
	ret = BPF_PROG_RUN(prog, &a);
	rcu_read_unlock();
	return ret;
}

static void concord_scl_run(enum concord_hook hook, int id, unsigned long m, unsigned long owner,
			    struct concord_scl_task *t, struct concord_scl_sb *l)
{
	concord_scl_run_nodes(hook, id, m, owner, t, l, numa_node_id(), 0);
}

static void concord_scl_run_preempt_off(enum concord_hook hook, int id, struct mutex *m,
					struct concord_scl_task *t, struct concord_scl_sb *l)
{
	preempt_disable();
	concord_scl_run(hook, id, (unsigned long)m, atomic_long_read(&m->owner), t, l);
	preempt_enable();
}

/* Waiters one shuffle looks at (each comparison runs the program once). */
#define CONCORD_SCL_SHUFFLE_MAX 16

/*
 * The head of the admission queue groups the waiters behind it: each one
 * the slot's should_reorder program accepts (numa_node: the head's node,
 * next_numa_node: the waiter's) moves up to right behind the head's group,
 * in queue order, as ShflLock's shuffle does. Only the head relinks, and
 * never the tail or its link (an enqueuer writes only the old tail's next),
 * so the waiters, spinning on their own node, need no lock.
 */
static void concord_scl_shuffle(int id, struct mutex *m, struct concord_scl_task *t,
				struct concord_scl_sb *l, struct concord_scl_node *head)
{
	struct concord_scl_node *last = head, *prev = head, *cur, *next;
	int n = 0;
	u32 group;

	cur = READ_ONCE(head->next);
	while (cur && (next = READ_ONCE(cur->next)) && n++ < CONCORD_SCL_SHUFFLE_MAX) {
		preempt_disable();
		group = concord_scl_run_nodes(HOOK_SHOULD_REORDER, id, (unsigned long)m,
					      atomic_long_read(&m->owner), t, l, head->nid, cur->nid);
		preempt_enable();
		if (group) {
			if (prev != last) {	/* move cur behind last */
				WRITE_ONCE(prev->next, next);
				WRITE_ONCE(cur->next, last->next);
				WRITE_ONCE(last->next, cur);
				last = cur;
				cur = next;
				continue;
			}
			last = cur;
		}
		prev = cur;
		cur = next;
	}
}

/*
 * Takes the mutex through the admission queue: an MCS queue of on-stack
 * nodes in front of the mutex, for a policy with a should_reorder program
 * (a kernel mutex's wait list cannot be reordered from outside). Waiters
 * spin with preemption on (cond_resched); the head groups the waiters
 * behind it, takes the mutex (sleeping in mutex_lock) and then hands the
 * queue on.
 */
static void concord_scl_queue_lock(int id, struct mutex *m, struct concord_scl_task *t,
				   struct concord_scl_sb *l)
{
	struct concord_scl_node node = { .next = NULL, .locked = 0, .nid = numa_node_id() };
	struct concord_scl_node *prev, *next;

	prev = xchg(&l->tail, &node);
	if (prev) {
		WRITE_ONCE(prev->next, &node);
		while (!smp_load_acquire(&node.locked)) {
			cond_resched();
			cpu_relax();
		}
	}
	concord_scl_shuffle(id, m, t, l, &node);
	mutex_lock(m);
	next = READ_ONCE(node.next);
	if (!next) {
		if (cmpxchg(&l->tail, &node, NULL) == &node)
			return;
		while (!(next = READ_ONCE(node.next)))
			cpu_relax();
	}
	smp_store_release(&next->locked, 1);
}

/* s_vfs_rename_mutex of sb through the slot's hooks. */
static void concord_scl_mutex_lock(struct super_block *sb)
{
	int id = READ_ONCE(slot);
	struct concord_scl_task *t = NULL;
	struct concord_scl_sb *l;

	l = id > 0 ? concord_scl_sb(sb, id) : NULL;
	if (l)
		t = concord_scl_task(l, id);
	if (!t || t->held) {
		/* no memory, or nested / retried inside one rename: no hooks */
		mutex_lock(&sb->s_vfs_rename_mutex);
		return;
	}
	concord_scl_run_preempt_off(HOOK_TO_ACQUIRE, id, &sb->s_vfs_rename_mutex, t, l);
	/* no barging past an admission queue */
	if (READ_ONCE(l->tail) || !mutex_trylock(&sb->s_vfs_rename_mutex)) {
		concord_scl_run_preempt_off(HOOK_TO_ENTER_SLOWPATH, id, &sb->s_vfs_rename_mutex, t, l);
		if (concord_prog(HOOK_SHOULD_REORDER, id))
			concord_scl_queue_lock(id, &sb->s_vfs_rename_mutex, t, l);
		else
			mutex_lock(&sb->s_vfs_rename_mutex);
	}
	concord_scl_run_preempt_off(HOOK_ACQUIRED, id, &sb->s_vfs_rename_mutex, t, l);
	t->held = l;
	t->held_mutex = (unsigned long)&sb->s_vfs_rename_mutex;
}

/*
 * to_release for the mutex this task's lock_rename took: sb's (still held),
 * or with sb NULL (a syscall wrapper, mutex released) whichever it was.
 */
static struct concord_scl_task *concord_scl_to_release(struct super_block *sb)
{
	unsigned long owner = 0;
	int id = READ_ONCE(slot);
	struct concord_scl_task *t;
	struct concord_scl_sb *l;

	if (id <= 0)
		return NULL;
	t = klp_shadow_get(current, CONCORD_SCL_TASK_ID(id));
	if (!t || !t->held || t->task_start != current->start_time)
		return NULL;
	if (sb && t->held != klp_shadow_get(sb, CONCORD_SCL_SB_ID(id)))
		return NULL;	/* a nested lock_rename on another superblock */
	l = t->held;
	if (sb)
		owner = atomic_long_read(&sb->s_vfs_rename_mutex.owner);
	spin_lock(&l->acct);
	concord_scl_run(HOOK_TO_RELEASE, id, t->held_mutex, owner, t, l);
	spin_unlock(&l->acct);
	return t;
}

/* released, after the mutex went: its owner word is then 0 or the next owner's. */
static void concord_scl_released(struct concord_scl_task *t)
{
	struct concord_scl_sb *l = t->held;

	t->held = NULL;
	preempt_disable();
	concord_scl_run(HOOK_RELEASED, READ_ONCE(slot), t->held_mutex, 0, t, l);
	preempt_enable();
}

/* Replaces lock_rename (fs/namei.c). */
static struct dentry *concord_lock_rename(struct dentry *p1, struct dentry *p2)
{
	struct dentry *p;

	if (p1 == p2) {
		inode_lock_nested(p1->d_inode, I_MUTEX_PARENT);
		return NULL;
	}
	concord_scl_mutex_lock(p1->d_sb);
	p = concord_d_ancestor(p2, p1);
	if (p) {
		inode_lock_nested(p2->d_inode, I_MUTEX_PARENT);
		inode_lock_nested(p1->d_inode, I_MUTEX_CHILD);
		return p;
	}
	p = concord_d_ancestor(p1, p2);
	if (p) {
		inode_lock_nested(p1->d_inode, I_MUTEX_PARENT);
		inode_lock_nested(p2->d_inode, I_MUTEX_CHILD);
		return p;
	}
	inode_lock_nested(p1->d_inode, I_MUTEX_PARENT);
	inode_lock_nested(p2->d_inode, I_MUTEX_PARENT2);
	return NULL;
}

/* Replaces unlock_rename (fs/namei.c). */
static void concord_unlock_rename(struct dentry *p1, struct dentry *p2)
{
	struct super_block *sb = p1->d_sb;
	struct concord_scl_task *t;

	inode_unlock(p1->d_inode);
	if (p1 == p2)
		return;
	inode_unlock(p2->d_inode);
	t = concord_scl_to_release(sb);
	mutex_unlock(&sb->s_vfs_rename_mutex);
	if (t)
		concord_scl_released(t);
}

/*
 * The rename syscall entries: the kernel's, then to_release / released
 * for the mutex our lock_rename took in it.
 */
typedef long (*concord_syscall_t)(const struct pt_regs *regs);

static long concord_scl_syscall(concord_syscall_t orig, const struct pt_regs *regs)
{
	struct concord_scl_task *t;
	long ret = orig(regs);

	t = concord_scl_to_release(NULL);
	if (t)
		concord_scl_released(t);
	return ret;
}

/* X(name, optional): an optional entry is left out where the kernel lacks it. */
#define CONCORD_SCL_SYSCALLS(X) \
	X(__x64_sys_rename, false) X(__x64_sys_renameat, false) X(__x64_sys_renameat2, false) \
	X(__x64_sys_rename2, true) X(__ia32_sys_rename, true) X(__ia32_sys_renameat, true) \
	X(__ia32_sys_renameat2, true) X(__ia32_sys_rename2, true)

#define CONCORD_SCL_WRAP(name, optional) \
	static concord_syscall_t orig_##name; \
	static long concord_##name(const struct pt_regs *regs) \
	{ \
		return concord_scl_syscall(orig_##name, regs); \
	}
CONCORD_SCL_SYSCALLS(CONCORD_SCL_WRAP)

/* concord_lock_rename runs this module's slot: one s_vfs_rename module at a time. */
#define CONCORD_TARGET_EXCLUSIVE "concord_lock_rename"

#define CONCORD_SCL_FUNC(name, optional) { .old_name = #name, .new_func = concord_##name },
#define CONCORD_TARGET_FUNCS \
	{ .old_name = "lock_rename", .new_func = concord_lock_rename }, \
	{ .old_name = "unlock_rename", .new_func = concord_unlock_rename }, \
	CONCORD_SCL_SYSCALLS(CONCORD_SCL_FUNC)

static const struct {
	const char *name;
	concord_syscall_t *orig;
	bool optional;
} concord_scl_syscalls[] = {
#define CONCORD_SCL_ENTRY(name, opt) { #name, &orig_##name, opt },
	CONCORD_SCL_SYSCALLS(CONCORD_SCL_ENTRY)
#undef CONCORD_SCL_ENTRY
};

/* The body of name past its ftrace call site (klp redirects that call), or NULL. */
static void *concord_scl_orig(const char *name)
{
	unsigned long ip = concord_ftrace_site(name);

	return ip ? (void *)(ip + MCOUNT_INSN_SIZE) : NULL;
}

static bool concord_scl_absent(const char *name)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(concord_scl_syscalls); i++)
		if (!strcmp(concord_scl_syscalls[i].name, name))
			return !*concord_scl_syscalls[i].orig;
	return false;
}

/*
 * Finds d_ancestor and the kernel's syscall entries, and drops from funcs
 * (the patch's, {}-terminated) the optional entries this kernel lacks
 * (rename2 on cna-syncord; ia32 without IA32_EMULATION).
 */
static int concord_scl_resolve(struct klp_func *funcs)
{
	int i, j;

	concord_d_ancestor = (void *)kallsyms_lookup_name("d_ancestor");
	if (!concord_ftrace_location || !concord_d_ancestor) {
		pr_err("concord: policy %s: ftrace_location or d_ancestor not in kallsyms (is this a SynCord 5.4 kernel?)\n",
		       CONCORD_POLICY);
		return -ENOENT;
	}
	for (i = 0; i < ARRAY_SIZE(concord_scl_syscalls); i++) {
		*concord_scl_syscalls[i].orig = concord_scl_orig(concord_scl_syscalls[i].name);
		if (!*concord_scl_syscalls[i].orig && !concord_scl_syscalls[i].optional) {
			pr_err("concord: policy %s: %s is not an ftrace-able function here (is this a SynCord 5.4 kernel with ftrace?)\n",
			       CONCORD_POLICY, concord_scl_syscalls[i].name);
			return -ENOENT;
		}
	}
	for (i = j = 0; funcs[i].old_name; i++)
		if (!concord_scl_absent(funcs[i].old_name))
			funcs[j++] = funcs[i];
	memset(&funcs[j], 0, (i - j) * sizeof(*funcs));
	return 0;
}

/* post-unpatch: no task runs our functions any more. */
static void concord_scl_free(int id)
{
	klp_shadow_free_all(CONCORD_SCL_TASK_ID(id), NULL);
	klp_shadow_free_all(CONCORD_SCL_SB_ID(id), NULL);
}
