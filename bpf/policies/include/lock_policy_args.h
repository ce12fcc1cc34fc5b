/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lock_policy_args.h: the default view of the program context, used when a
 * policy directory has no .h of its own. 11 consecutive u64, 88 bytes.
 */
#ifndef SYNCORD_LOCK_POLICY_ARGS_H
#define SYNCORD_LOCK_POLICY_ARGS_H

struct __lock_policy_args {
	unsigned long lock;
	unsigned long lock_ptr;
	unsigned long per_cpu_data;
	unsigned long arg1;
	unsigned long arg2;
	unsigned long arg3;
	unsigned long arg4;
	unsigned long arg5;
	unsigned long arg6;
	unsigned long arg7;
	unsigned long arg8;
};

#endif /* SYNCORD_LOCK_POLICY_ARGS_H */
