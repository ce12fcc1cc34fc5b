// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * syncord-busy: a kernel thread that sleeps inside syncord_busy_wait()
 * while the module parameter "block" is true. Only for syncord's e2e tests
 * in a throwaway VM: livepatch-busy patches syncord_busy_wait, so its
 * transition cannot finish while the thread sleeps there, the way a task
 * stuck in a patched lock function blocks livepatch_concord.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/kthread.h>
#include <linux/delay.h>

static bool block = true;
module_param(block, bool, 0644);
MODULE_PARM_DESC(block, "keep the thread inside syncord_busy_wait");

static struct task_struct *thread;

/* noipa: no inlining and no clone, so the thread's stack names it. */
noinline __attribute__((noipa)) void syncord_busy_wait(void)
{
	while (READ_ONCE(block) && !kthread_should_stop())
		msleep_interruptible(20);
}

static int syncord_busy_fn(void *data)
{
	syncord_busy_wait();
	while (!kthread_should_stop())
		msleep_interruptible(20);
	return 0;
}

static int __init syncord_busy_init(void)
{
	thread = kthread_run(syncord_busy_fn, NULL, "syncord_busy");
	return PTR_ERR_OR_ZERO(thread);
}

static void __exit syncord_busy_exit(void)
{
	kthread_stop(thread);
}

module_init(syncord_busy_init);
module_exit(syncord_busy_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("syncord e2e test: a thread that blocks a livepatch transition");
