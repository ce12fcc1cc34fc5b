/* scl's view of the context (per-thread lock usage kept by the kernel). */
struct __lock_policy_args {
	unsigned long lock;
	unsigned long lock_ptr;
	unsigned long per_cpu_data;
	unsigned long start_ts;		/* arg1: when this thread acquired the lock (ns) */
	unsigned long lock_hold_capture;/* arg2: lock_hold when this thread queued */
	unsigned long lock_hold;	/* arg3: this thread's total hold time (ns) */
	unsigned long tot_lock_hold;	/* arg4: all threads' total hold time (ns) */
	unsigned long numa_node;	/* arg5 */
	unsigned long next_numa_node;	/* arg6 */
	unsigned long num_threads;	/* arg7: threads using the lock */
	unsigned long arg8;
};
