/* bravo's view of the context for rwsems. */
struct __lock_policy_args {
	unsigned long lock;
	unsigned long lock_ptr;
	unsigned long per_cpu_data;	/* this CPU's reader slot: pid of a bypassing reader, or 0 */
	unsigned long RBias;		/* arg1: 1 while readers may bypass the rwsem */
	unsigned long InhibitUntil;	/* arg2: no re-biasing before this time (ns) */
	unsigned long arg3;
	unsigned long arg4;
	unsigned long arg5;
	unsigned long arg6;
	unsigned long arg7;
	unsigned long arg8;
};
