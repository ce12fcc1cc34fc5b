package bpf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/syncord/syncord/internal/testutil"
)

// TestOpenLockstatMapSaysWhatItIs: a path that is not a pinned map is
// named for what it is, not "permission denied (is the lockstat policy
// installed?)" (issue 11 item 15).
func TestOpenLockstatMapSaysWhatItIs(t *testing.T) {
	dir := testutil.PrivateBPFFS(t)
	plain := filepath.Join(t.TempDir(), "notamap")
	if err := os.WriteFile(plain, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.SocketFilter,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	progPin := filepath.Join(dir, "prog")
	if err := prog.Pin(progPin); err != nil {
		t.Fatal(err)
	}
	defer Unpin([]string{progPin})
	for _, tc := range []struct{ path, want string }{
		{plain, "is a regular file on a file system of type"},
		{filepath.Dir(plain), "is a directory, not a pinned map"},
		{filepath.Join(dir, "missing"), "no such file (is the lockstat policy installed?"},
		{progPin, "is a pinned BPF program (SocketFilter), not a map"},
	} {
		_, err := OpenLockstatMap(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("OpenLockstatMap(%s): %v, want an error containing %q", tc.path, err, tc.want)
		}
		if err != nil && tc.path != filepath.Join(dir, "missing") && strings.Contains(err.Error(), "permission denied") {
			t.Errorf("OpenLockstatMap(%s): %v still says permission denied", tc.path, err)
		}
	}
}
