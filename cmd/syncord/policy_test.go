package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syncord/syncord/kernel"
)

func TestPolicyInstallRefusesLockPolicyOnStockKernel(t *testing.T) {
	info, err := kernel.NewDefaultFS().Probe()
	if err != nil {
		t.Skipf("skipping: cannot probe this kernel: %v", err)
	}
	if info.SynCord {
		t.Skipf("skipping: %s is a SynCord kernel", info.Release)
	}
	dir := t.TempDir()
	bpffs, state := filepath.Join(dir, "bpffs"), filepath.Join(dir, "state")
	_, stderr, code := runPolicy(t, policyCmd, "install", "amp", "--bpffs", bpffs, "--state-dir", state, "--param", "cores_per_socket=4")
	if code != 1 || !strings.Contains(stderr, "is not a SynCord kernel") || !strings.Contains(stderr, "boot a SynCord kernel") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if _, err := os.Stat(bpffs); !os.IsNotExist(err) {
		t.Errorf("bpffs directory made by a refused install (%v)", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(state, "policies")); len(ents) != 0 {
		t.Errorf("records made by a refused install: %v", ents)
	}
}

func TestPolicyUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no subcommand", nil, 2, "Usage: syncord policy"},
		{"unknown subcommand", []string{"frobnicate"}, 2, "unknown subcommand"},
		{"install without policy", []string{"install"}, 2, "Usage: syncord policy install NAME|DIR"},
		{"bad param", []string{"install", "amp", "--param", "cores_per_socket"}, 2, "want name=value"},
		{"bad param value", []string{"install", "amp", "--param", "x=-1"}, 2, "not an unsigned integer"},
		{"unknown policy", []string{"install", "no-such-policy", "--state-dir", "/nonexistent/x"}, 1, "no built-in policy"},
		{"status with argument", []string{"status", "x"}, 2, "Usage: syncord policy status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runPolicy(t, policyCmd, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s", code, tc.code, tc.want, stderr)
			}
		})
	}
}

func TestPolicyStatusEmpty(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr, code := runPolicy(t, policyCmd, "status", "--bpffs", filepath.Join(dir, "bpffs"), "--state-dir", filepath.Join(dir, "state"))
	if code != 0 || !strings.Contains(stdout, "no policy installed") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	stdout, _, code = runPolicy(t, policyCmd, "reconcile", "--json", "--state-dir", filepath.Join(dir, "state"))
	if code != 0 || strings.TrimSpace(stdout) != "[]" {
		t.Fatalf("reconcile --json = %d %q", code, stdout)
	}
}
