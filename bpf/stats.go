package bpf

import (
	"fmt"
	"time"

	"github.com/cilium/ebpf"
)

// RunStats are the counters the kernel keeps for a loaded program in its
// bpf_prog_info (run_cnt, run_time_ns; Linux 5.1+). They grow only while
// kernel.bpf_stats_enabled is 1, and keep their values while it is 0.
type RunStats struct {
	RunCount uint64
	RunTime  time.Duration
}

// PinnedRunStats opens the program pinned at path read-only and reads its
// run statistics with BPF_OBJ_GET_INFO_BY_FD (no BTF needed). A path that
// holds a map, not a program, is an error.
func PinnedRunStats(path string) (RunStats, error) {
	prog, err := ebpf.LoadPinnedProgram(path, &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		return RunStats{}, fmt.Errorf("open pinned program %s: %w", path, err)
	}
	defer prog.Close()
	st, err := prog.Stats()
	if err != nil {
		return RunStats{}, fmt.Errorf("run statistics of %s: %w", path, err)
	}
	return RunStats{RunCount: st.RunCount, RunTime: st.Runtime}, nil
}
