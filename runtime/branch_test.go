package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syncord/syncord/bpf"
	"github.com/syncord/syncord/internal/pseudofs"
)

// TestInstallWrongBranch: on a stock-syncord kernel (fixture: its real
// kallsyms excerpt) amp and numa-grouping-cna are refused before anything
// happens, naming the branch they need: no bpffs mount, no pin, no record.
// It needs no root: nothing reaches the kernel.
func TestInstallWrongBranch(t *testing.T) {
	proc, sys := fixtureRoots(t)
	ks, err := os.ReadFile("../kernel/testdata/kallsyms/stock-syncord.txt")
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(proc, "sys/kernel/osrelease"), "5.4.0-stock-syncord\n")
	write(t, filepath.Join(proc, "kallsyms"), string(ks))
	bpffs := filepath.Join(t.TempDir(), "bpffs") // not mounted: nothing may try to
	state := t.TempDir()
	rt := New(Config{BPFFS: bpffs, Roots: pseudofs.Roots{Proc: pseudofs.FS(proc), Sys: pseudofs.FS(sys)}, StateDir: state})
	for name, need := range map[string]string{"amp": "shfllock-syncord", "numa-grouping-cna": "cna-syncord", "scl": "shfllock-syncord"} {
		res, err := Resolve(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = rt.Install(context.Background(), InstallRequest{Policy: res.Policy, Source: name, Stats: true})
		if !errors.Is(err, bpf.ErrWrongBranch) || !strings.Contains(err.Error(), "needs a "+need) || !strings.Contains(err.Error(), "is stock-syncord") {
			t.Errorf("install %s on stock-syncord: %v, want ErrWrongBranch naming %s", name, err, need)
		}
	}
	if _, err := os.Stat(bpffs); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("bpffs dir %s was created or mounted by a refused install", bpffs)
	}
	if got := recordFiles(t, state); len(got) != 0 {
		t.Errorf("records after refused installs: %v", got)
	}
}
