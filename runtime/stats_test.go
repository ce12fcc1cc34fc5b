package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/internal/testutil"
)

func readSysctl(t *testing.T, proc string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(proc, "sys/kernel/bpf_stats_enabled"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestInstallStats: --stats turns kernel.bpf_stats_enabled on (in a
// fixture procfs, never the host's), records the value before, and the
// uninstall of the last policy that asked for stats restores it, in either
// uninstall order; status shows every hook program's run counters.
func TestInstallStats(t *testing.T) {
	for _, order := range [][2]int{{0, 1}, {1, 0}} {
		t.Run(fmt.Sprintf("uninstall-%d-then-%d", order[0], order[1]), func(t *testing.T) {
			proc, sys := fixtureRoots(t)
			write(t, filepath.Join(proc, "sys/kernel/bpf_stats_enabled"), "0\n")
			state := t.TempDir()
			var rts [2]*Runtime
			names := [2]string{"first", "second"}
			for i := range rts {
				rts[i] = New(Config{BPFFS: testutil.PrivateBPFFS(t), Roots: pseudofs.Roots{Proc: pseudofs.FS(proc), Sys: pseudofs.FS(sys)}, StateDir: state})
				res := testPolicy(t)
				res.Policy.Name = names[i]
				rec, err := rts[i].Install(context.Background(), InstallRequest{Policy: res.Policy, Source: testPolicyDir, Stats: true})
				if err != nil {
					t.Fatal(err)
				}
				if got := readSysctl(t, proc); got != "1" {
					t.Fatalf("after install %s --stats: bpf_stats_enabled=%s, want 1", names[i], got)
				}
				wantRestore := i == 0
				if rec.Stats == nil || rec.Stats.Previous != map[bool]string{true: "0", false: "1"}[wantRestore] || rec.Stats.Restore != wantRestore {
					t.Fatalf("record of %s: stats %+v, want previous recorded and restore=%v", names[i], rec.Stats, wantRestore)
				}
			}
			st, err := rts[0].Status()
			if err != nil {
				t.Fatal(err)
			}
			if !st.Kernel.BPFStats {
				t.Errorf("status: bpf_stats_enabled false with the sysctl at 1")
			}
			for _, ps := range st.Policies {
				if len(ps.Programs) != 1 || ps.Programs[0].Error != "" || !strings.HasSuffix(ps.Programs[0].Pin, "/syncord_test_filter") {
					t.Errorf("status of %s: programs %+v, want the one socket filter with its counters", ps.Record.Name, ps.Programs)
				}
			}
			first, second := names[order[0]], names[order[1]]
			if _, err := rts[order[0]].Uninstall(context.Background(), first, UninstallOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := readSysctl(t, proc); got != "1" {
				t.Fatalf("after uninstalling %s while %s still asks for stats: %s, want 1", first, second, got)
			}
			if _, err := rts[order[1]].Uninstall(context.Background(), second, UninstallOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := readSysctl(t, proc); got != "0" {
				t.Fatalf("after uninstalling the last --stats policy: %s, want 0 (the value before)", got)
			}
		})
	}
}

// TestInstallStatsRollback: a failed --stats install puts the sysctl back.
func TestInstallStatsRollback(t *testing.T) {
	proc, sys := fixtureRoots(t)
	write(t, filepath.Join(proc, "sys/kernel/bpf_stats_enabled"), "0\n")
	bpffs, state := testutil.PrivateBPFFS(t), t.TempDir()
	rt := New(Config{BPFFS: bpffs, Roots: pseudofs.Roots{Proc: pseudofs.FS(proc), Sys: pseudofs.FS(sys)}, StateDir: state})
	rt.fault = func(step string) error {
		if step == "pin" {
			return fmt.Errorf("injected fault after %s", step)
		}
		return nil
	}
	res := testPolicy(t)
	if _, err := rt.Install(context.Background(), InstallRequest{Policy: res.Policy, Source: testPolicyDir, Stats: true}); err == nil {
		t.Fatal("install with an injected fault succeeded")
	}
	if got := readSysctl(t, proc); got != "0" {
		t.Fatalf("bpf_stats_enabled=%s after a rolled back install, want 0", got)
	}
	if got := bpffsEntries(t, bpffs); len(got) != 0 {
		t.Errorf("pins left: %v", got)
	}
}

// TestInstallStatsNoSysctl: a kernel without the sysctl refuses --stats
// before anything is pinned.
func TestInstallStatsNoSysctl(t *testing.T) {
	proc, sys := fixtureRoots(t)
	bpffs, state := testutil.PrivateBPFFS(t), t.TempDir()
	rt := New(Config{BPFFS: bpffs, Roots: pseudofs.Roots{Proc: pseudofs.FS(proc), Sys: pseudofs.FS(sys)}, StateDir: state})
	res := testPolicy(t)
	_, err := rt.Install(context.Background(), InstallRequest{Policy: res.Policy, Source: testPolicyDir, Stats: true})
	if err == nil || !strings.Contains(err.Error(), "Linux 5.1") {
		t.Fatalf("install --stats without the sysctl: %v, want an error naming Linux 5.1", err)
	}
	if got := bpffsEntries(t, bpffs); len(got) != 0 {
		t.Errorf("pins left: %v", got)
	}
	if got := recordFiles(t, state); len(got) != 0 {
		t.Errorf("records left: %v", got)
	}
}

// TestReconcileGoneStats: a --stats policy whose pins vanished (bpffs
// remounted, say) is dropped by Reconcile, which restores the sysctl as
// its uninstall would have.
func TestReconcileGoneStats(t *testing.T) {
	proc, sys := fixtureRoots(t)
	write(t, filepath.Join(proc, "sys/kernel/bpf_stats_enabled"), "0\n")
	bpffs, state := testutil.PrivateBPFFS(t), t.TempDir()
	rt := New(Config{BPFFS: bpffs, Roots: pseudofs.Roots{Proc: pseudofs.FS(proc), Sys: pseudofs.FS(sys)}, StateDir: state})
	res := testPolicy(t)
	rec, err := rt.Install(context.Background(), InstallRequest{Policy: res.Policy, Source: testPolicyDir, Stats: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rec.Pins {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	found, err := rt.Reconcile()
	if err != nil || len(found) != 1 || found[0].Health != Gone {
		t.Fatalf("Reconcile = %v, %v; want the policy dropped as gone", found, err)
	}
	if got := readSysctl(t, proc); got != "0" {
		t.Fatalf("bpf_stats_enabled=%s after the gone --stats policy was dropped, want 0 restored", got)
	}
}
