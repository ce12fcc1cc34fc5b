/* Test-only replacement of syncord_helpers.h with UPSTREAM helper ids, so
 * that test policies in socket sections load on stock kernels. */
#ifndef SYNCORD_HELPERS_H
#define SYNCORD_HELPERS_H
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef __u32 u32;
typedef __u64 u64;
typedef _Bool bool;
#define true 1
#define false 0
#define NULL ((void *)0)
#define SEC(name) __attribute__((section(name), used))
#define __always_inline inline __attribute__((always_inline))
#define BPF_MAP_TYPE_HASH 1
#define BPF_ANY 0
#define BPF_NOEXIST 1
struct bpf_map_def {
	unsigned int type, key_size, value_size, max_entries, map_flags, inner_map_idx, numa_node;
};
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static __u32 (*bpf_get_smp_processor_id)(void) = (void *)8;
#define SYNCORD_PARAM(name, value) volatile const __u64 name = (value)
#endif
