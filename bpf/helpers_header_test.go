package bpf

import (
	"regexp"
	"strconv"
	"testing"
)

// lockPolicyHelpers are the helper ids a BPF_PROG_TYPE_LOCK_POLICY program
// may call on the SynCord kernels (lock_policy_func_proto and
// bpf_base_func_proto in their net/core/filter.c, ids shifted by
// bpf_back_off = 1): SYNCORD-ABI.md section 6.
var lockPolicyHelpers = map[int]string{
	1: "back_off", 2: "map_lookup_elem", 3: "map_update_elem", 4: "map_delete_elem",
	5: "probe_read", 6: "ktime_get_ns", 7: "trace_printk (root)", 8: "get_prandom_u32",
	9: "get_smp_processor_id", 13: "tail_call", 15: "get_current_pid_tgid",
	17: "get_current_comm", 26: "perf_event_output", 28: "get_stackid",
	37: "probe_write_user", 43: "get_numa_node_id", 88: "map_push_elem",
	89: "map_pop_elem", 90: "map_peek_elem", 94: "spin_lock (root)", 95: "spin_unlock (root)",
}

// TestHelperHeaderAllowed: syncord_helpers.h offers only helpers a lock
// policy may call (get_current_uid_gid, 16, is not one).
func TestHelperHeaderAllowed(t *testing.T) {
	b, err := includeFS.ReadFile("policies/include/syncord_helpers.h")
	if err != nil {
		t.Fatal(err)
	}
	defs := regexp.MustCompile(`(?m)^#define SYNCORD_FN_(\w+) (\d+)`).FindAllSubmatch(b, -1)
	if len(defs) < 10 {
		t.Fatalf("found only %d helper ids in syncord_helpers.h", len(defs))
	}
	for _, d := range defs {
		id, _ := strconv.Atoi(string(d[2]))
		if _, ok := lockPolicyHelpers[id]; !ok {
			t.Errorf("syncord_helpers.h defines %s = %d, which a lock policy may not call", d[1], id)
		}
	}
	if regexp.MustCompile(`bpf_get_current_uid_gid`).Match(b) {
		t.Error("syncord_helpers.h still declares bpf_get_current_uid_gid")
	}
}
