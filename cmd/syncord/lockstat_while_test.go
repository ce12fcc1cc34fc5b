package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/syncord/syncord/bpf/contention"
	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/internal/testutil"
)

// TestLockstatWhile profiles exactly while FxMark MWRL runs through the same
// Run path: the workload's report goes to stderr, the profile (JSON) to
// stdout, and the work the workload did is visible as rename contention or
// at least as a final report after it ended.
func TestLockstatWhile(t *testing.T) {
	testutil.RequireBPF(t)
	if err := contention.Check(pseudofs.DefaultRoots()); err != nil {
		t.Skipf("skipping: %v", err)
	}
	root := t.TempDir()
	var out, errb bytes.Buffer
	code := Run(context.Background(), &Env{Stdout: &out, Stderr: &errb},
		[]string{"lockstat", "--contention", "--json", "--while",
			"bench fxmark --type MWRL --ncore 2 --duration 1 --root " + root + " --no-affinity"})
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "profiling while: syncord bench fxmark") ||
		!strings.Contains(errb.String(), "# ncpu secs works works/sec") {
		t.Fatalf("workload report not on stderr:\n%s", errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatalf("stdout is not the JSON profile: %v\n%s", err, out.String())
	}
	if last["final"] != true {
		t.Fatalf("last report is not final: %v", last)
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Fatalf("workload left %d entries in its root", len(ents))
	}
}

func TestLockstatWhileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, while, want string
	}{
		{"itself", "lockstat --contention", "cannot profile lockstat itself"},
		{"agent", "agent --listen unix:///x", "cannot profile agent itself"},
		{"unknown", "frobnicate", `"frobnicate" is not a syncord command`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Run(context.Background(), &Env{Stdout: &out, Stderr: &errb},
				[]string{"lockstat", "--contention", "--while", tc.while})
			if code != 2 || !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("exit %d stderr %q; want 2 and %q", code, errb.String(), tc.want)
			}
		})
	}
	var errb bytes.Buffer
	if code := Run(context.Background(), &Env{Stdout: &bytes.Buffer{}, Stderr: &errb},
		[]string{"lockstat", "--contention", "--duration", "1", "--while", "bench fxmark"}); code != 2 {
		t.Fatalf("--duration with --while: exit %d, %s", code, errb.String())
	}
}

func TestMutatingRequestWhile(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"lockstat", "--contention", "--duration", "3"}, false},
		{[]string{"lockstat", "--contention", "--while", "bench fxmark --type MWRL"}, true},
		{[]string{"lockstat", "--contention", "--while=bench will-it-scale lock1"}, true},
		{[]string{"lockstat", "--contention", "--while", "topology"}, false},
		// the one-dash forms the flag package accepts too
		{[]string{"lockstat", "--contention", "-while=bench fxmark --type MWRL"}, true},
		{[]string{"lockstat", "-contention", "-while", "bench xdir prepare --dir d"}, true},
		// the last --while counts: a read-only first one does not hide it
		{[]string{"lockstat", "--contention", "--while", "topology", "--while", "bench fxmark --type MWRL"}, true},
	} {
		if got := mutatingRequest(tc.args); got != tc.want {
			t.Errorf("mutatingRequest(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}
