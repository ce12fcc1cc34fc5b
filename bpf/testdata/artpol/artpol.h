/* Artifact-style policy header: the context with renamed fields and the
 * per-lock data sized by ${NCPU} (substituted at build time). */
struct __lock_policy_args {
	unsigned long lock;
	unsigned long lock_ptr;
	unsigned long per_cpu_data;
	unsigned long hold_start;
	unsigned long arg2, arg3, arg4, arg5, arg6, arg7, arg8;
};
struct per_lock_data {
	unsigned long per_cpu_data[${NCPU}];
	unsigned long hold_start;
};
