package contention

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/syncord/syncord/internal/pseudofs"
)

// TestCheck builds proc and sys roots the way the kernels we meet lay
// them out: tracefs mounted or not, kallsyms with or without the
// tracepoint's BPF glue (a 6.1 stock kernel and a SynCord 5.4 one).
func TestCheck(t *testing.T) {
	const (
		sym61 = "ffffffff811234a0 t __bpf_trace_contention_begin\n"
		sym54 = "ffffffff81100000 T _stext\nffffffff81200000 t __bpf_trace_lock_acquire\n"
	)
	for _, tc := range []struct {
		name     string
		release  string
		tracefs  string // "" not mounted; else the mount dir under sys
		events   []string
		kallsyms string
		wantNo   bool
	}{
		{"6.1 tracefs has the event", "6.1.0-13-amd64", "kernel/tracing", []string{"lock/contention_begin", "lock/contention_end"}, sym61, false},
		{"5.4 SynCord tracefs lacks it", "5.4.0-shfllock-syncord+", "kernel/tracing", []string{"sched/sched_switch"}, sym54, true},
		{"old debugfs tracing mount lacks it", "5.4.0-stock-syncord", "kernel/debug/tracing", []string{"sched/sched_switch"}, "", true},
		{"no tracefs, kallsyms has it", "6.18.44", "", nil, sym61, false},
		{"no tracefs, kallsyms lacks it", "5.4.0-cna-syncord+", "", nil, sym54, true},
		{"no tracefs, no kallsyms: cannot tell", "5.4.0", "", nil, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proc, sys := t.TempDir(), t.TempDir()
			if err := os.MkdirAll(filepath.Join(proc, "sys/kernel"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(proc, "sys/kernel/osrelease"), []byte(tc.release+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.kallsyms != "" {
				if err := os.WriteFile(filepath.Join(proc, "kallsyms"), []byte(tc.kallsyms), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tc.tracefs != "" {
				for _, e := range append(tc.events, "") {
					if err := os.MkdirAll(filepath.Join(sys, tc.tracefs, "events", e), 0o755); err != nil {
						t.Fatal(err)
					}
				}
			}
			err := Check(pseudofs.Roots{Proc: pseudofs.FS(proc), Sys: pseudofs.FS(sys)})
			if got := errors.Is(err, ErrNoTracepoints); got != tc.wantNo {
				t.Fatalf("Check = %v; want no-tracepoints %v", err, tc.wantNo)
			}
			if !tc.wantNo {
				return
			}
			msg := err.Error()
			for _, want := range []string{tc.release, "5.19", "syncord policy install lockstat"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q lacks %q", msg, want)
				}
			}
			if !errors.Is(err, ebpf.ErrNotSupported) {
				t.Errorf("error does not wrap ebpf.ErrNotSupported: %v", err)
			}
		})
	}
}
