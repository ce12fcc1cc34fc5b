/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A policy for the run-counter e2e test (e2e/stats_test.go): one socket
 * filter that calls no helper, so it loads on Debian's kernel and on the
 * SynCord 5.4 kernels alike (SynCord renumbers helper 1, so the install
 * test policy's bpf_map_lookup_elem is not that helper there). progrun runs
 * it with BPF_PROG_TEST_RUN and the test reads its run_cnt.
 * Rebuild: clang -O2 -g0 -target bpf -c stats_test.c -o stats_test_kern.o
 */
typedef unsigned int __u32;

#define SEC(name) __attribute__((section(name), used))

struct __sk_buff {
	__u32 len;
};

SEC("socket")
int syncord_stats_filter(struct __sk_buff *skb)
{
	return skb->len;
}

char _license[] SEC("license") = "GPL";
