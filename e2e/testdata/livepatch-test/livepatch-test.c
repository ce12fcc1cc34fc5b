// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * livepatch-test: a stand-in for the SynCord artifact's livepatch_concord,
 * used only by syncord's end-to-end tests inside a throwaway VM.
 *
 * Like livepatch_concord, its pre-patch callback looks up the BPF objects a
 * policy install must have pinned in bpffs, at fixed paths, and fails the
 * patch (and so the module's init) when one is missing. It then replaces
 * cmdline_proc_show, as the kernel's samples/livepatch/livepatch-sample.c
 * does, so the patched behaviour is visible in /proc/cmdline.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/seq_file.h>
#include <linux/bpf.h>
#include <linux/namei.h>
#include <linux/path.h>
#include <linux/err.h>

/* The program must be a pinned socket filter; the map only has to exist. */
#define PROG_PATH "/sys/fs/bpf/syncord_test_filter"
#define MAP_PATH "/sys/fs/bpf/hash_map"

#define PATCHED_CMDLINE "syncord-livepatch-test: patched\n"

static int livepatch_cmdline_proc_show(struct seq_file *m, void *v)
{
	seq_printf(m, "%s", PATCHED_CMDLINE);
	return 0;
}

static int check_pins(struct klp_object *obj)
{
	struct bpf_prog *prog;
	struct path path;
	int err;

	prog = bpf_prog_get_type_path(PROG_PATH, BPF_PROG_TYPE_SOCKET_FILTER);
	if (IS_ERR(prog)) {
		pr_err("pinned program %s: error %ld\n", PROG_PATH, PTR_ERR(prog));
		return PTR_ERR(prog);
	}
	bpf_prog_put(prog);

	err = kern_path(MAP_PATH, LOOKUP_FOLLOW, &path);
	if (err) {
		pr_err("pinned map %s: error %d\n", MAP_PATH, err);
		return err;
	}
	path_put(&path);
	pr_info("found %s and %s\n", PROG_PATH, MAP_PATH);
	return 0;
}

static struct klp_func funcs[] = {
	{
		.old_name = "cmdline_proc_show",
		.new_func = livepatch_cmdline_proc_show,
	}, { }
};

static struct klp_object objs[] = {
	{
		/* name being NULL means vmlinux */
		.funcs = funcs,
		.callbacks = {
			.pre_patch = check_pins,
		},
	}, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int livepatch_test_init(void)
{
	return klp_enable_patch(&patch);
}

static void livepatch_test_exit(void)
{
}

module_init(livepatch_test_init);
module_exit(livepatch_test_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("syncord e2e test livepatch: checks bpffs pins, patches /proc/cmdline");
MODULE_INFO(livepatch, "Y");
