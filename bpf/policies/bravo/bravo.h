/*
 * bravo's view of the context for rwsems. The livepatch sets only
 * per_cpu_data and RBias (as the artifact's bravo livepatch does); the
 * other fields hold nothing: offsets 32 and up are dereferenced as
 * pointers by the SynCord verifier's rewrite, so a program must not read
 * them (the inhibition window lives in the policy, see
 * bravo_acqed_lock.pfile).
 */
struct __lock_policy_args {
	unsigned long lock;
	unsigned long lock_ptr;
	unsigned long per_cpu_data;	/* this CPU's reader slot: pid of a bypassing reader, or 0 */
	unsigned long RBias;		/* arg1: 1 while readers may bypass the rwsem */
	unsigned long arg2;		/* not set by the livepatch: do not read */
	unsigned long arg3;
	unsigned long arg4;
	unsigned long arg5;
	unsigned long arg6;
	unsigned long arg7;
	unsigned long arg8;
};
