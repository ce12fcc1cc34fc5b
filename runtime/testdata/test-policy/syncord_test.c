/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A policy that loads on stock kernels, for syncord's install tests: one
 * socket filter program and a legacy SEC("maps") hash map, pinned as
 * /sys/fs/bpf/syncord_test_filter and /sys/fs/bpf/hash_map, the paths the
 * e2e livepatch module (e2e/testdata/livepatch-test) looks up.
 * Rebuild: clang -O2 -g0 -target bpf -c syncord_test.c -o syncord_test_kern.o
 */
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define SEC(name) __attribute__((section(name), used))

struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
	unsigned int inner_map_idx;
	unsigned int numa_node;
};

struct __sk_buff {
	__u32 len;
};

/* Upstream helper id (this policy is for stock kernels). */
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;

struct bpf_map_def SEC("maps") hash_map = {
	.type = 1, /* BPF_MAP_TYPE_HASH */
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 16,
};

SEC("socket")
int syncord_test_filter(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *seen = bpf_map_lookup_elem(&hash_map, &key);

	if (seen)
		__sync_fetch_and_add(seen, 1);
	return skb->len;
}

char _license[] SEC("license") = "GPL";
