package kernel

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/syncord/syncord/internal/pseudofs"
)

// BPFStatsSysctl is the sysctl that makes the kernel count every BPF
// program's runs and run time (bpf_prog_info run_cnt, run_time_ns).
const BPFStatsSysctl = "kernel.bpf_stats_enabled"

// ErrNoBPFStats is returned (wrapped) when the kernel has no
// kernel.bpf_stats_enabled (before Linux 5.1).
var ErrNoBPFStats = errors.New("kernel.bpf_stats_enabled not available (needs Linux 5.1 or later)")

func (fs FS) bpfStatsPath() string { return fs.proc.Path("sys/kernel/bpf_stats_enabled") }

// BPFStats reads /proc/sys/kernel/bpf_stats_enabled: "0" or "1" as the
// kernel prints it (trimmed).
func (fs FS) BPFStats() (string, error) {
	b, err := pseudofs.Read(fs.bpfStatsPath(), 64)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", fs.bpfStatsPath(), ErrNoBPFStats)
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// BPFStatsEnabled reports whether kernel.bpf_stats_enabled is on; false
// with ErrNoBPFStats when the kernel has no such sysctl.
func (fs FS) BPFStatsEnabled() (bool, error) {
	v, err := fs.BPFStats()
	if err != nil {
		return false, err
	}
	return v != "" && v != "0", nil
}

// SetBPFStats writes v ("0" or "1") to /proc/sys/kernel/bpf_stats_enabled.
// It changes a system setting: only ever call it on the procfs root the
// caller was given.
func (fs FS) SetBPFStats(v string) error {
	if v != "0" && v != "1" {
		return fmt.Errorf("set %s: bad value %q (want 0 or 1)", BPFStatsSysctl, v)
	}
	f, err := os.OpenFile(fs.bpfStatsPath(), os.O_WRONLY|os.O_TRUNC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("set %s: %w", BPFStatsSysctl, ErrNoBPFStats)
	}
	if err != nil {
		return fmt.Errorf("set %s=%s: %w (needs root)", BPFStatsSysctl, v, err)
	}
	if _, err := f.WriteString(v + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("set %s=%s: write %s: %w", BPFStatsSysctl, v, fs.bpfStatsPath(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("set %s=%s: %w", BPFStatsSysctl, v, err)
	}
	return nil
}
