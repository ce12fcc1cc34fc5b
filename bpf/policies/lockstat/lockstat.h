/* lockstat's view of the program context: arg1 holds the hold start time. */
struct __lock_policy_args {
	unsigned long lock;
	unsigned long lock_ptr;
	unsigned long per_cpu_data;	/* wait start (ns) while contended, else 0 */
	unsigned long hold_start;	/* arg1: when the lock was acquired (ns) */
	unsigned long arg2;
	unsigned long arg3;
	unsigned long arg4;
	unsigned long arg5;
	unsigned long arg6;
	unsigned long arg7;
	unsigned long arg8;
};
