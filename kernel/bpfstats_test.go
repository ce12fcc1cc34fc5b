package kernel

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestBPFStats(t *testing.T) {
	root := writeTree(t, map[string]string{"sys/kernel/bpf_stats_enabled": "0\n"})
	fs := testFS(root, filepath.Join(root, "nosys"))
	if on, err := fs.BPFStatsEnabled(); err != nil || on {
		t.Fatalf("BPFStatsEnabled = %v, %v; want false", on, err)
	}
	if err := fs.SetBPFStats("1"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "sys/kernel/bpf_stats_enabled")); string(b) != "1\n" {
		t.Fatalf("file holds %q after SetBPFStats(1)", b)
	}
	if on, err := fs.BPFStatsEnabled(); err != nil || !on {
		t.Fatalf("BPFStatsEnabled = %v, %v; want true", on, err)
	}
	if err := fs.SetBPFStats("2"); err == nil {
		t.Fatal("SetBPFStats(2) succeeded")
	}
	none := testFS(t.TempDir(), t.TempDir())
	if _, err := none.BPFStatsEnabled(); !errors.Is(err, ErrNoBPFStats) {
		t.Fatalf("no sysctl: %v, want ErrNoBPFStats", err)
	}
	if err := none.SetBPFStats("1"); !errors.Is(err, ErrNoBPFStats) {
		t.Fatalf("set with no sysctl: %v, want ErrNoBPFStats", err)
	}
}
