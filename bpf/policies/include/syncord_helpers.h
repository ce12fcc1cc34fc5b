/* SPDX-License-Identifier: GPL-2.0 */
/*
 * syncord_helpers.h: what a SynCord lock policy program sees, written for
 * syncord (no kernel headers needed).
 *
 * Helper ids are those of the SynCord kernels (SYNCORD-ABI.md section 1):
 * bpf_back_off is inserted as helper 1 and every upstream helper after
 * BPF_FUNC_unspec is shifted up by one. An object compiled with this header
 * calls the wrong helpers on an upstream kernel; it is meant only for
 * BPF_PROG_TYPE_LOCK_POLICY (26) on a *-syncord kernel.
 */
#ifndef SYNCORD_HELPERS_H
#define SYNCORD_HELPERS_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed int __s32;
typedef signed long long __s64;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
typedef __s64 s64;
typedef _Bool bool;
#define true 1
#define false 0
#ifndef NULL
#define NULL ((void *)0)
#endif

#define SEC(name) __attribute__((section(name), used))
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* Map types and update flags of the 5.4 uapi that policies use. */
#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_PERCPU_HASH 5
#define BPF_MAP_TYPE_PERCPU_ARRAY 6
#define BPF_MAP_TYPE_LRU_HASH 9
#define BPF_ANY 0
#define BPF_NOEXIST 1
#define BPF_EXIST 2

/*
 * Legacy map definition in SEC("maps"): seven u32, the last two zero. The
 * SynCord kernels have no BTF, so BTF-defined maps are not used.
 */
struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
	unsigned int inner_map_idx;
	unsigned int numa_node;
};

/*
 * SynCord helper ids: bpf_back_off is 1, upstream id + 1 for the rest.
 * Only helpers a lock policy may call are here: lock_policy_func_proto in
 * the SynCord kernels' net/core/filter.c allows pid_tgid, get_stackid,
 * comm, perf_event_output, probe_read, probe_write_user and the base set
 * (back_off, map ops, push/pop/peek, prandom, smp_processor_id,
 * numa_node_id, tail_call, ktime; trace_printk only for root).
 */
#define SYNCORD_FN_back_off 1
#define SYNCORD_FN_map_lookup_elem 2
#define SYNCORD_FN_map_update_elem 3
#define SYNCORD_FN_map_delete_elem 4
#define SYNCORD_FN_probe_read 5
#define SYNCORD_FN_ktime_get_ns 6
#define SYNCORD_FN_trace_printk 7
#define SYNCORD_FN_get_prandom_u32 8
#define SYNCORD_FN_get_smp_processor_id 9
#define SYNCORD_FN_tail_call 13
#define SYNCORD_FN_get_current_pid_tgid 15
/* 16, get_current_uid_gid, is not one a lock policy may call (the SynCord
 * kernels' lock_policy_func_proto refuses it): deliberately absent. */
#define SYNCORD_FN_get_current_comm 17
#define SYNCORD_FN_get_numa_node_id 43

/* bpf_back_off(lock, timeout): wait up to timeout ns before queueing on lock (0: no stealing). */
static long (*bpf_back_off)(__u64 lock, __u64 timeout) = (void *)SYNCORD_FN_back_off;
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)SYNCORD_FN_map_lookup_elem;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)SYNCORD_FN_map_update_elem;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)SYNCORD_FN_map_delete_elem;
static long (*bpf_probe_read)(void *dst, __u32 size, const void *unsafe_ptr) = (void *)SYNCORD_FN_probe_read;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)SYNCORD_FN_ktime_get_ns;
static long (*bpf_trace_printk)(const char *fmt, __u32 fmt_size, ...) = (void *)SYNCORD_FN_trace_printk;
static __u32 (*bpf_get_prandom_u32)(void) = (void *)SYNCORD_FN_get_prandom_u32;
static __u32 (*bpf_get_smp_processor_id)(void) = (void *)SYNCORD_FN_get_smp_processor_id;
static long (*bpf_tail_call)(void *ctx, void *prog_array_map, __u32 index) = (void *)SYNCORD_FN_tail_call;
static __u64 (*bpf_get_current_pid_tgid)(void) = (void *)SYNCORD_FN_get_current_pid_tgid;
static long (*bpf_get_current_comm)(void *buf, __u32 size_of_buf) = (void *)SYNCORD_FN_get_current_comm;
static long (*bpf_get_numa_node_id)(void) = (void *)SYNCORD_FN_get_numa_node_id;

#define bpf_printk(fmt, ...)                                            \
	({                                                              \
		char ____fmt[] = fmt;                                   \
		bpf_trace_printk(____fmt, sizeof(____fmt), ##__VA_ARGS__); \
	})

/*
 * A load-time parameter: a read-only global that syncord rewrites before
 * loading (syncord policy install --param name=value). A trailing comment
 * "// [from=fact] help" documents it; fact is cores_per_socket or nr_cpus.
 */
#define SYNCORD_PARAM(name, value) volatile const __u64 name = (value)

#endif /* SYNCORD_HELPERS_H */
