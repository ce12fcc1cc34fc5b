/* stockpol keeps its "lock context" in a global (.bss) instead of the
 * SynCord program context, so that it loads as a socket filter. */
struct __lock_policy_args {
	unsigned long lock, lock_ptr, per_cpu_data, hold_start, arg2, arg3, arg4, arg5, arg6, arg7, arg8;
};
struct __lock_policy_args stock_args;
