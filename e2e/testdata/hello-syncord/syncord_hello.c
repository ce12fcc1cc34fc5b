// SPDX-License-Identifier: GPL-2.0
/*
 * syncord_hello: the smallest out-of-tree module, built by the e2e harness
 * against a SynCord kernel's extracted headers (e2e.BuildModuleFor) to
 * prove the toolchain: it links against num_policy, one of the symbols
 * only a SynCord kernel exports, and says so when it loads and unloads.
 */
#include <linux/module.h>
#include <linux/kernel.h>

extern int num_policy;

static int __init syncord_hello_init(void)
{
	pr_info("syncord_hello: loaded (num_policy=%d)\n", num_policy);
	return 0;
}

static void __exit syncord_hello_exit(void)
{
	pr_info("syncord_hello: unloaded\n");
}

module_init(syncord_hello_init);
module_exit(syncord_hello_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("syncord e2e: out-of-tree module toolchain check for the SynCord kernels");
