package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/syncord/syncord/bpf"
)

func runPolicy(t *testing.T, fn func(context.Context, *Env, []string) error, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb}
	code := status(env, fn(context.Background(), env, args))
	return out.String(), errb.String(), code
}

func TestPolicyBuild(t *testing.T) {
	if _, err := exec.LookPath("clang"); err != nil {
		t.Skip("skipping: clang not installed (apt-get install clang llvm)")
	}
	out := t.TempDir()
	// Flags after the directory are accepted too.
	stdout, stderr, code := runPolicy(t, policyBuildCmd, "../../bpf/policies/amp", "--out", out, "--ncpu", "8")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	dir := filepath.Join(out, "amp", "eBPFGen")
	for _, f := range []string{"amp_kern.o", "amp_kern.c", "manifest.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	for _, s := range []string{"amp_cont_lock", "lock_qspinlock_contended", "lock_to_enter_slowpath", "param cores_per_socket=28", "policy install " + filepath.Join(out, "amp")} {
		if !strings.Contains(stdout, s) {
			t.Errorf("output lacks %q:\n%s", s, stdout)
		}
	}
	// The build output opens as a policy with the committed built-in's pins.
	p, err := bpf.OpenPolicy(filepath.Join(out, "amp"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := bpf.LookupBuiltin("amp")
	if !reflect.DeepEqual(p.Programs, b.Manifest.Programs) {
		t.Fatalf("programs %+v, built-in %+v", p.Programs, b.Manifest.Programs)
	}
	built, _ := os.ReadFile(p.ObjectPath)
	if d, _ := bpf.ObjectParams(built); !reflect.DeepEqual(d, map[string]uint64{"cores_per_socket": 28, "patience": 22000000}) {
		t.Errorf("params %v", d)
	}

	stdout, _, code = runPolicy(t, policyBuildCmd, "--json", "--out", out, "../../bpf/testdata/artpol")
	var res struct {
		Object string        `json:"object"`
		Policy *bpf.Manifest `json:"policy"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil || res.Policy.Map == nil || len(res.Policy.Programs) != 3 {
		t.Fatalf("--json: %d %s", code, stdout)
	}
	c, _ := os.ReadFile(filepath.Join(out, "artpol", "eBPFGen", "artpol_kern.c"))
	if !strings.Contains(string(c), "per_cpu_data[") || strings.Contains(string(c), "${NCPU}") {
		t.Error("${NCPU} not substituted")
	}
}

func TestPolicyBuildErrors(t *testing.T) {
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "x.pfile"), []byte("SEC(\"kprobe/x\")\nint f(void *c) { return 0; }\n"), 0o644)
	// A tree that looks prepared but is not a SynCord kernel's, and one
	// that is (the exports the module needs), with no compiler to be had.
	plain := fakeTree(t, "5.4.0", "0x0\tprintk\tvmlinux\tEXPORT_SYMBOL\n")
	syncord := fakeTree(t, "5.4.0-stock-syncord", "0x0\tnum_policy\tvmlinux\tEXPORT_SYMBOL\n0x0\tbpf_queued_spin_lock\tvmlinux\tEXPORT_SYMBOL\n")
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no dir", nil, 2, "exactly one policy name or directory"},
		{"two dirs", []string{"a", "b"}, 2, "exactly one policy name or directory"},
		{"livepatch alone", []string{"--livepatch", bad}, 2, "go together"},
		{"kdir alone", []string{"--kdir", plain, bad}, 2, "go together"},
		{"cc without livepatch", []string{"--cc", "gcc", "lockstat"}, 2, "--cc is for --livepatch"},
		{"target of a built-in", []string{"--target", "rwsem", "lockstat"}, 2, "--target is for a source directory"},
		{"not lock section", []string{"--out", t.TempDir(), bad}, 1, "does not start with lock_"},
		{"missing clang", []string{"--out", t.TempDir(), "--clang", "/nonexistent/clang", "../../bpf/policies/amp"}, 1, "apt-get install clang"},
		{"missing dir", []string{"/nonexistent/policy"}, 1, "read policy directory"},
		{"missing kdir", []string{"--out", t.TempDir(), "--livepatch", "--kdir", "/nonexistent/kdir", "lockstat"}, 1, "kernel build tree"},
		{"not a kernel tree", []string{"--out", t.TempDir(), "--livepatch", "--kdir", t.TempDir(), "lockstat"}, 1, "not a prepared build tree"},
		{"not syncord", []string{"--out", t.TempDir(), "--livepatch", "--kdir", plain, "lockstat"}, 1, "not a SynCord kernel tree"},
		{"missing compiler", []string{"--out", t.TempDir(), "--livepatch", "--kdir", syncord, "--cc", "/nonexistent/gcc-11", "lockstat"}, 1, "compiler /nonexistent/gcc-11: exec: \"/nonexistent/gcc-11\": stat /nonexistent/gcc-11: no such file or directory (install it, or give another with --cc)"},
		{"target not on this branch", []string{"--out", t.TempDir(), "--livepatch", "--kdir", syncord, "numa-grouping"}, 1, "targets all_spinlocks, which the concord livepatch attaches on shfllock-syncord or cna-syncord only: kernel 5.4.0-stock-syncord"},
		// scl's and numa-scl's objects reach the should_reorder check (else "no object given"), so the tree is next.
		{"scl checks the tree", []string{"--out", t.TempDir(), "--livepatch", "--kdir", "/nonexistent/kdir", "scl"}, 1, "kernel build tree"},
		{"numa-scl checks the tree", []string{"--out", t.TempDir(), "--livepatch", "--kdir", "/nonexistent/kdir", "numa-scl"}, 1, "kernel build tree"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := runPolicy(t, policyBuildCmd, c.args...)
			if code != c.code || !strings.Contains(stderr, c.msg) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr, c.code, c.msg)
			}
		})
	}
}

func TestPolicyList(t *testing.T) {
	stdout, _, code := runPolicy(t, policyListCmd)
	if code != 0 {
		t.Fatal(code)
	}
	for _, s := range []string{
		"lockstat:", "  target rename_lock\n", "  target rwsem\n", "  target all_spinlocks\n", "hook lock_to_enter_slowpath", "pin lockstat_to_enter_slow_path", "pin hash_map",
		"numa-grouping:", "numa-grouping-cna:", "scl:", "numa-scl:", "bravo:", "pin bravo_bypass_release_lock",
		"amp:", "param cores_per_socket=28  (from cores_per_socket;", "param patience=22000000",
	} {
		if !strings.Contains(stdout, s) {
			t.Errorf("list lacks %q", s)
		}
	}
	stdout, _, code = runPolicy(t, policyListCmd, "--json")
	var ms []bpf.Manifest
	if code != 0 || json.Unmarshal([]byte(stdout), &ms) != nil || len(ms) != 7 {
		t.Fatalf("--json: %d %s", code, stdout)
	}
	if _, _, code := runPolicy(t, policyListCmd, "extra"); code != 2 {
		t.Errorf("extra argument: exit %d", code)
	}
}

// fakeTree makes a kernel build tree with the files CheckTree reads.
func fakeTree(t *testing.T, release, symvers string) string {
	t.Helper()
	d := t.TempDir()
	os.MkdirAll(filepath.Join(d, "include/config"), 0o755)
	os.WriteFile(filepath.Join(d, "Makefile"), nil, 0o644)
	os.WriteFile(filepath.Join(d, "include/config/kernel.release"), []byte(release+"\n"), 0o644)
	os.WriteFile(filepath.Join(d, "Module.symvers"), []byte(symvers), 0o644)
	return d
}

// TestPolicyBuildBuiltin writes a built-in policy in the artifact's layout
// without clang, and policy install resolves it.
func TestPolicyBuildBuiltin(t *testing.T) {
	out := t.TempDir()
	stdout, stderr, code := runPolicy(t, policyBuildCmd, "lockstat", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "(built-in)") || !strings.Contains(stdout, "install: syncord policy install "+filepath.Join(out, "lockstat")) {
		t.Fatalf("output:\n%s", stdout)
	}
	m, err := bpf.ReadManifest(filepath.Join(out, "lockstat", "eBPFGen"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := bpf.LookupBuiltin("lockstat")
	if m.Target != "rename_lock" || !reflect.DeepEqual(m, b.Manifest) {
		t.Fatalf("manifest %+v, built-in %+v", m, b.Manifest)
	}
}
