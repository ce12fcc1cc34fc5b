/* numa-grouping-cna's view of the context: the NUMA nodes of the two waiters compared. */
struct __lock_policy_args {
	unsigned long lock;
	unsigned long lock_ptr;
	unsigned long per_cpu_data;
	unsigned long arg1;
	unsigned long arg2;
	unsigned long arg3;
	unsigned long arg4;
	unsigned long numa_node;	/* arg5: node of the lock holder */
	unsigned long next_numa_node;	/* arg6: node of the next waiter; 0xffff (CNA_PRIORITY_NODE) for a priority waiter (irq, irqs off, RT) */
	unsigned long arg7;
	unsigned long arg8;
};
