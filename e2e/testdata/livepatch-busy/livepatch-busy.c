// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * livepatch-busy: replaces syncord_busy_wait in module syncord_busy. Its
 * transition stays open while the syncord_busy thread sleeps in the old
 * function. Only for syncord's e2e tests in a throwaway VM.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>

static void livepatch_syncord_busy_wait(void)
{
}

static struct klp_func funcs[] = {
	{
		.old_name = "syncord_busy_wait",
		.new_func = livepatch_syncord_busy_wait,
	}, { }
};

static struct klp_object objs[] = {
	{
		.name = "syncord_busy",
		.funcs = funcs,
	}, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int livepatch_busy_init(void)
{
	return klp_enable_patch(&patch);
}

static void livepatch_busy_exit(void)
{
}

module_init(livepatch_busy_init);
module_exit(livepatch_busy_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("syncord e2e test: a livepatch whose transition a thread blocks");
MODULE_INFO(livepatch, "Y");
