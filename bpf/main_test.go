package bpf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bpfFDs lists this process's file descriptors that are BPF objects
// (/proc/self/fd links to anon_inode:bpf-map, bpf-prog, ...).
func bpfFDs() []string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var out []string
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(l, "anon_inode:bpf") {
			out = append(out, e.Name()+"->"+l)
		}
	}
	return out
}

// TestMain fails the run when BPF objects stay open after the tests: every
// Loaded, map and program must be closed.
func TestMain(m *testing.M) {
	before := len(bpfFDs())
	code := m.Run()
	if after := bpfFDs(); code == 0 && len(after) > before {
		fmt.Fprintf(os.Stderr, "leaked BPF file descriptors: %s\n", strings.Join(after, " "))
		code = 1
	}
	os.Exit(code)
}
