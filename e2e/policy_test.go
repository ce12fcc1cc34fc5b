package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/kmod"
	"github.com/syncord/syncord/runtime"
)

const (
	// testPolicyDir is a stock-loadable policy: a socket filter pinned as
	// syncord_test_filter and hash_map, the paths the test livepatch
	// module looks up.
	testPolicyDir = "../runtime/testdata/test-policy"
	// livepatchSrc is the test livepatch module's source.
	livepatchSrc = "testdata/livepatch-test"
	patchedLine  = "syncord-livepatch-test: patched"
)

// buildModules builds the out-of-tree modules in testdata/<src> (a Kbuild
// and C files) against Debian's headers for the e2e kernel and returns the
// build directory.
func buildModules(t *testing.T, src string) string {
	t.Helper()
	k := Kernel(t)
	if k.HeadersDir == "" {
		t.Skipf("skipping: no headers for %s (apt-get install linux-headers-%s)", k.Version, k.Version)
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("skipping: make not installed (apt-get install make gcc)")
	}
	dir := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("make", "-C", k.HeadersDir, "M="+dir, "modules").CombinedOutput()
	if err != nil {
		t.Fatalf("build %s against %s: %v\n%s", src, k.HeadersDir, err, out)
	}
	return dir
}

// buildLivepatch builds the test livepatch module and returns the .ko.
func buildLivepatch(t *testing.T) string {
	t.Helper()
	return filepath.Join(buildModules(t, livepatchSrc), "livepatch-test.ko")
}

// wrongPolicy is the test policy with its program pinned under another
// name, so the path the module looks up is missing.
func wrongPolicy(t *testing.T) (manifest string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testPolicyDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), `"pin": "syncord_test_filter"`, `"pin": "other_filter"`, 1)
	if s == string(b) {
		t.Fatal("test policy manifest has no syncord_test_filter pin")
	}
	p := filepath.Join(t.TempDir(), "manifest.json")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// guestStatus runs syncord policy status --json in the guest.
func guestStatus(t *testing.T, vm *VM) *runtime.Status {
	t.Helper()
	out := vm.MustRun(t, "syncord policy status --json 2>/dev/null")
	var st runtime.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("policy status --json: %v\n%s", err, out)
	}
	return &st
}

// assertClean checks that nothing of the test policy is left: no pin, no
// module, no livepatch, no record, /proc/cmdline not patched.
func assertClean(t *testing.T, vm *VM, when string) {
	t.Helper()
	if out := vm.MustRun(t, "ls -A /sys/fs/bpf"); strings.TrimSpace(out) != "" {
		t.Errorf("%s: bpffs holds %q", when, out)
	}
	if out, _ := vm.Run(t, "grep livepatch_test /proc/modules"); strings.TrimSpace(out) != "" {
		t.Errorf("%s: module left: %s", when, out)
	}
	if out, _ := vm.Run(t, "ls -A /sys/kernel/livepatch"); strings.TrimSpace(out) != "" {
		t.Errorf("%s: livepatch left: %s", when, out)
	}
	if out := vm.MustRun(t, "cat /proc/cmdline"); strings.Contains(out, patchedLine) {
		t.Errorf("%s: /proc/cmdline still patched", when)
	}
	st := guestStatus(t, vm)
	if len(st.Policies) != 0 || len(st.OtherPins) != 0 || len(st.Livepatches) != 0 {
		t.Errorf("%s: status not empty: %+v", when, st)
	}
}

// checkProcModules reads the guest's /proc/modules with package kmod: the
// livepatch is Live and tainted K (livepatch) and E (unsigned). With
// SYNCORD_UPDATE_FIXTURES=1 the capture becomes kmod/testdata/proc-modules-vm.
func checkProcModules(t *testing.T, vm *VM) {
	t.Helper()
	data := vm.CopyOut(t, "/proc/modules")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "modules"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	m, ok, err := kmod.NewProc(pseudofs.FS(dir)).Module("livepatch-test")
	if err != nil {
		t.Fatalf("parse the guest's /proc/modules: %v\n%s", err, data)
	}
	if !ok || m.State != kmod.Live || !strings.Contains(m.Taints, "K") || !strings.Contains(m.Taints, "E") {
		t.Errorf("livepatch_test in /proc/modules: %+v (found %v), want Live with taints K and E\n%s", m, ok, data)
	}
	if updateFixtures() {
		if err := os.WriteFile("../kmod/testdata/proc-modules-vm", data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPolicyInstallLivepatch drives syncord policy install/uninstall/status
// in a Debian guest with a real livepatch module that, like
// livepatch_concord, checks the bpffs pins in its pre-patch callback and
// patches cmdline_proc_show.
func TestPolicyInstallLivepatch(t *testing.T) {
	skipUnlessEnabled(t)
	ko := buildLivepatch(t)
	busy := buildModules(t, "testdata/livepatch-busy")
	koGz := ko + ".gz"
	if out, err := exec.Command("sh", "-c", "gzip -9 -c "+ko+" > "+koGz).CombinedOutput(); err != nil {
		t.Fatalf("gzip %s: %v\n%s", ko, err, out)
	}
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	vm := Boot(t, Config{Sockets: 1, Cores: 2, MemPerNodeMB: 512, Files: map[string]string{
		"/root/lpt.ko":                           ko,
		"/root/lpt.ko.gz":                        koGz,
		"/root/busy.ko":                          filepath.Join(busy, "syncord-busy.ko"),
		"/root/lpbusy.ko":                        filepath.Join(busy, "livepatch-busy.ko"),
		"/root/policy/manifest.json":             abs(filepath.Join(testPolicyDir, "manifest.json")),
		"/root/policy/syncord_test_kern.o":       abs(filepath.Join(testPolicyDir, "syncord_test_kern.o")),
		"/root/policy-wrong/manifest.json":       wrongPolicy(t),
		"/root/policy-wrong/syncord_test_kern.o": abs(filepath.Join(testPolicyDir, "syncord_test_kern.o")),
	}})
	const install = "syncord policy install /root/policy --livepatch /root/lpt.ko"
	orig := vm.MustRun(t, "cat /proc/cmdline")
	if strings.Contains(orig, patchedLine) {
		t.Fatalf("/proc/cmdline patched before any install: %q", orig)
	}

	t.Run("install and uninstall", func(t *testing.T) {
		out := vm.MustRun(t, install)
		t.Logf("%s:\n%s", install, out)
		for _, want := range []string{"looks up /sys/fs/bpf/syncord_test_filter, /sys/fs/bpf/hash_map", "inserted livepatch_test", "installed syncord-test with livepatch livepatch_test"} {
			if !strings.Contains(out, want) {
				t.Errorf("install output lacks %q:\n%s", want, out)
			}
		}
		if got := strings.Fields(vm.MustRun(t, "ls /sys/fs/bpf")); strings.Join(got, " ") != "hash_map syncord_test_filter" {
			t.Errorf("bpffs = %v", got)
		}
		checkProcModules(t, vm)
		if got := vm.MustRun(t, "cat /sys/kernel/livepatch/livepatch_test/enabled /sys/kernel/livepatch/livepatch_test/transition"); strings.Fields(got)[0] != "1" || strings.Fields(got)[1] != "0" {
			t.Errorf("livepatch enabled/transition = %q, want 1 0", got)
		}
		if got := vm.MustRun(t, "cat /proc/cmdline"); strings.TrimSpace(got) != patchedLine {
			t.Errorf("/proc/cmdline = %q, want the patched line", got)
		}
		st := guestStatus(t, vm)
		if len(st.Policies) != 1 || st.Policies[0].Health != runtime.Installed || st.Kernel.Kind != "stock" || !st.Kernel.Livepatch {
			t.Fatalf("status after install: %+v", st)
		}
		if ps := st.Policies[0]; ps.Module == nil || !ps.Module.Loaded || ps.Patch == nil || !ps.Patch.Enabled || ps.Patch.Transition {
			t.Errorf("status module/patch: %+v %+v", ps.Module, ps.Patch)
		}
		human := vm.MustRun(t, "syncord policy status")
		if !strings.Contains(human, "policy syncord-test: installed, 2/2 pins, module livepatch_test Live, livepatch enabled=true transition=false") {
			t.Errorf("status:\n%s", human)
		}

		out = vm.MustRun(t, "syncord policy uninstall")
		t.Logf("syncord policy uninstall:\n%s", out)
		if !strings.Contains(out, "disabled livepatch livepatch_test") || !strings.Contains(out, "removed module livepatch_test") {
			t.Errorf("uninstall output:\n%s", out)
		}
		if got := vm.MustRun(t, "cat /proc/cmdline"); got != orig {
			t.Errorf("/proc/cmdline after uninstall = %q, want %q", got, orig)
		}
		assertClean(t, vm, "after uninstall")
	})

	t.Run("missing pin is refused before insmod", func(t *testing.T) {
		out, code := vm.Run(t, "syncord policy install /root/policy-wrong --livepatch /root/lpt.ko")
		if code == 0 || !strings.Contains(out, "looks up /sys/fs/bpf/syncord_test_filter, not pinned") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		if strings.Contains(out, "inserted") {
			t.Errorf("module inserted despite the missing pin:\n%s", out)
		}
		assertClean(t, vm, "after refused install")
	})

	t.Run("missing pin fails the module's own init", func(t *testing.T) {
		vm.MustRun(t, "dmesg -c >/dev/null")
		out, code := vm.Run(t, "syncord policy install /root/policy-wrong --livepatch /root/lpt.ko --skip-pin-check")
		if code == 0 || !strings.Contains(out, "finit_module lpt.ko: no such file or directory") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		if dmesg := vm.MustRun(t, "dmesg"); !strings.Contains(dmesg, "pinned program /sys/fs/bpf/syncord_test_filter: error -2") {
			t.Errorf("the module's own check did not run; dmesg:\n%s", dmesg)
		}
		assertClean(t, vm, "after failed module init")
	})

	// Without bpffs mounted, with a gzip-compressed module (decompressed in
	// memory, inserted with init_module): a refused install unmounts the
	// bpffs it mounted; a good one mounts it and keeps it.
	t.Run("bpffs not mounted, compressed module", func(t *testing.T) {
		mounted := func() bool {
			out, _ := vm.Run(t, "grep -c ' /sys/fs/bpf bpf ' /proc/mounts")
			return strings.TrimSpace(out) != "0"
		}
		vm.MustRun(t, "umount /sys/fs/bpf")
		out, code := vm.Run(t, "syncord policy install /root/policy-wrong --livepatch /root/lpt.ko.gz")
		if code == 0 || !strings.Contains(out, "mounted bpffs at /sys/fs/bpf (it was not mounted)") || !strings.Contains(out, "not pinned") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		if mounted() {
			t.Errorf("rollback left the bpffs it mounted:\n%s", out)
		}
		out = vm.MustRun(t, "syncord policy install /root/policy --livepatch /root/lpt.ko.gz")
		t.Logf("install with lpt.ko.gz:\n%s", out)
		if !strings.Contains(out, "mounted bpffs at /sys/fs/bpf") || !mounted() {
			t.Errorf("install did not mount bpffs:\n%s", out)
		}
		if got := vm.MustRun(t, "cat /proc/cmdline"); strings.TrimSpace(got) != patchedLine {
			t.Errorf("/proc/cmdline = %q, want the patched line", got)
		}
		vm.MustRun(t, "syncord policy uninstall")
		assertClean(t, vm, "after uninstall of the compressed module")
		if !mounted() {
			t.Errorf("uninstall unmounted bpffs")
		}
	})

	// A kernel thread sleeping in the patched function blocks the
	// transition: the install names it when the timeout comes and rolls
	// everything back; once the thread leaves the
	// function the transition finishes and the install succeeds.
	t.Run("blocked transition", func(t *testing.T) {
		vm.MustRun(t, "insmod /root/busy.ko")
		defer vm.Run(t, "echo 0 > /sys/module/syncord_busy/parameters/block; rmmod syncord_busy")
		out, code := vm.Run(t, "syncord policy install /root/policy --livepatch /root/lpbusy.ko --timeout 4s")
		t.Logf("install blocked by syncord_busy:\n%s", out)
		if code == 0 {
			t.Fatal("install succeeded although its transition is blocked")
		}
		// No "signalled" line: 6.1 has no livepatch signal file (the
		// kernel sends the fake signal to blocking tasks by itself).
		for _, want := range []string{
			"livepatch livepatch_busy: patching transition still running after 4",
			"(syncord_busy) patch_state=0",
			"rollback: remove livepatch module livepatch_busy",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q", want)
			}
		}
		if got, _ := vm.Run(t, "grep livepatch_busy /proc/modules"); strings.TrimSpace(got) != "" {
			t.Errorf("livepatch module left: %s", got)
		}
		assertClean(t, vm, "after the blocked install")

		out = vm.MustRun(t, "(sleep 3; echo 0 > /sys/module/syncord_busy/parameters/block) & syncord policy install /root/policy --livepatch /root/lpbusy.ko --timeout 60s; wait")
		t.Logf("install unblocked after 3s:\n%s", out)
		if !strings.Contains(out, "installed syncord-test with livepatch livepatch_busy") {
			t.Errorf("install did not finish once unblocked:\n%s", out)
		}
		vm.MustRun(t, "syncord policy uninstall")
		if got, _ := vm.Run(t, "grep livepatch_busy /proc/modules"); strings.TrimSpace(got) != "" {
			t.Errorf("livepatch module left after uninstall: %s", got)
		}
		assertClean(t, vm, "after uninstall of the unblocked install")
	})

	for _, step := range []string{"pin", "insmod"} {
		t.Run("installer killed after "+step, func(t *testing.T) {
			out, code := vm.Run(t, runtime.CrashEnv+"="+step+" "+install)
			if code != 137 {
				t.Fatalf("installer exit %d, want 137 (SIGKILL):\n%s", code, out)
			}
			st := guestStatus(t, vm)
			if len(st.Policies) != 1 {
				t.Fatalf("status after the kill: %+v", st)
			}
			ps := st.Policies[0]
			if ps.Health != runtime.Interrupted || len(ps.Pins) != 2 || !ps.Pins[0].Present || !ps.Pins[1].Present {
				t.Errorf("status after kill: health %s pins %+v problems %q", ps.Health, ps.Pins, ps.Problems)
			}
			switch step {
			case "pin":
				if ps.Record.Phase != runtime.PhasePinned || ps.Module != nil {
					t.Errorf("after pin: phase %s module %+v, want pinned and no module", ps.Record.Phase, ps.Module)
				}
			case "insmod":
				if ps.Record.Phase != runtime.PhaseInserting || ps.Module == nil || !ps.Module.Loaded || ps.Patch == nil {
					t.Errorf("after insmod: phase %s module %+v patch %+v, want inserting with the module loaded", ps.Record.Phase, ps.Module, ps.Patch)
				}
			}
			human := vm.MustRun(t, "syncord policy status")
			t.Logf("syncord policy status after the kill:\n%s", human)
			if !strings.Contains(human, "interrupted") || !strings.Contains(human, "syncord policy uninstall syncord-test") {
				t.Errorf("status does not say what happened:\n%s", human)
			}
			// Reconcile (as on agent start) corrects the record: after pin
			// the install cannot finish by itself; after insmod the
			// transition finished on its own, so it is installed.
			rec := vm.MustRun(t, "syncord policy reconcile")
			t.Logf("syncord policy reconcile:\n%s", rec)
			want, health := "left on the system: /sys/fs/bpf/syncord_test_filter, /sys/fs/bpf/hash_map", runtime.Failed
			if step == "insmod" {
				want, health = "every step had finished; recorded as installed", runtime.Installed
			}
			if !strings.Contains(rec, want) {
				t.Errorf("reconcile lacks %q", want)
			}
			if st := guestStatus(t, vm); len(st.Policies) != 1 || st.Policies[0].Health != health {
				t.Errorf("status after reconcile: %+v, want health %s", st.Policies, health)
			}
			if again := vm.MustRun(t, "syncord policy reconcile 2>&1"); strings.TrimSpace(again) != "" {
				t.Errorf("second reconcile changed something: %s", again)
			}
			vm.MustRun(t, "syncord policy uninstall syncord-test")
			assertClean(t, vm, "after uninstall of the interrupted install")
		})
	}
}
