package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/syncord/syncord/bpf"
	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/internal/testutil"
	"github.com/syncord/syncord/kernel"
)

func testPolicy(t testing.TB) *Resolved {
	t.Helper()
	res, err := Resolve(testPolicyDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// The real kernel of this machine refuses a lock policy: the install must
// say it needs a SynCord kernel and leave bpffs and the state empty.
func TestInstallLockPolicyNeedsSynCordKernel(t *testing.T) {
	bpffs := testutil.PrivateBPFFS(t)
	info, err := kernel.NewDefaultFS().Probe()
	if err != nil {
		t.Fatal(err)
	}
	if info.SynCord {
		t.Skipf("skipping: kernel %s is a SynCord kernel; this test needs a stock one", info.Release)
	}
	state := t.TempDir()
	rt := New(Config{BPFFS: bpffs, StateDir: state})
	res, err := Resolve("lockstat", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rt.Install(context.Background(), InstallRequest{Policy: res.Policy, Source: "lockstat"})
	if !errors.Is(err, bpf.ErrNotSynCordKernel) {
		t.Fatalf("Install lockstat = %v, want ErrNotSynCordKernel", err)
	}
	for _, want := range []string{"not a SynCord kernel", "boot a SynCord kernel", info.Release} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if got := bpffsEntries(t, bpffs); len(got) != 0 {
		t.Errorf("bpffs holds %v after a refused install", got)
	}
	if got := recordFiles(t, state); len(got) != 0 {
		t.Errorf("state holds %v after a refused install", got)
	}
}

// Pins only (no livepatch): pins made and recorded, status installed,
// uninstall removes exactly them and leaves a foreign entry alone.
func TestInstallPinsAndUninstall(t *testing.T) {
	bpffs := testutil.PrivateBPFFS(t)
	proc, sys := fixtureRoots(t)
	if err := os.Mkdir(filepath.Join(bpffs, "someone-else"), 0o700); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	var log lines
	rt := New(Config{BPFFS: bpffs, Roots: pseudofs.Roots{Proc: pseudofs.FS(proc), Sys: pseudofs.FS(sys)}, StateDir: state, Progress: log.add})
	res := testPolicy(t)
	rec, err := rt.Install(context.Background(), InstallRequest{Policy: res.Policy, Source: testPolicyDir})
	if err != nil {
		t.Fatal(err)
	}
	wantPins := []string{filepath.Join(bpffs, "syncord_test_filter"), filepath.Join(bpffs, "hash_map")}
	if rec.Phase != PhaseInstalled || !reflect.DeepEqual(rec.Pins, wantPins) {
		t.Fatalf("record %+v, want installed with pins %v", rec, wantPins)
	}
	if got := bpffsEntries(t, bpffs); !reflect.DeepEqual(got, []string{"hash_map", "someone-else", "syncord_test_filter"}) {
		t.Fatalf("bpffs = %v", got)
	}
	st, err := rt.Status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Policies) != 1 || st.Policies[0].Health != Installed || !reflect.DeepEqual(st.OtherPins, []string{filepath.Join(bpffs, "someone-else")}) {
		t.Fatalf("status = %+v", st)
	}
	if _, err := rt.Install(context.Background(), InstallRequest{Policy: res.Policy}); err == nil || !strings.Contains(err.Error(), "already recorded") {
		t.Fatalf("second install = %v, want already recorded", err)
	}
	if _, err := rt.Uninstall(context.Background(), "", UninstallOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := bpffsEntries(t, bpffs); !reflect.DeepEqual(got, []string{"someone-else"}) {
		t.Fatalf("bpffs after uninstall = %v, want only the foreign entry", got)
	}
	if got := recordFiles(t, state); len(got) != 0 {
		t.Fatalf("records after uninstall: %v", got)
	}
	if _, err := rt.Uninstall(context.Background(), "", UninstallOptions{}); err == nil || !strings.Contains(err.Error(), "no policy is installed") {
		t.Fatalf("uninstall with nothing installed = %v", err)
	}
	if !strings.Contains(log.String(), "loaded and pinned syncord-test") {
		t.Errorf("progress lacks the pin line:\n%s", log.String())
	}
}

// With the livepatch module (on a fake module loader: no module may be
// inserted on this host), the whole install and uninstall.
func TestInstallWithLivepatch(t *testing.T) {
	bpffs := testutil.PrivateBPFFS(t)
	proc, sys := fixtureRoots(t)
	state := t.TempDir()
	k := newFakeKernel(t, proc, sys, bpffs)
	var log lines
	rt := New(Config{BPFFS: bpffs, Roots: pseudofs.Roots{Proc: pseudofs.FS(proc), Sys: pseudofs.FS(sys)}, StateDir: state, Modules: k, Progress: log.add})
	res := testPolicy(t)
	rec, err := rt.Install(context.Background(), InstallRequest{Policy: res.Policy, Source: testPolicyDir, Livepatch: testModule})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if rec.Phase != PhaseInstalled || rec.Module != "livepatch_test" || rec.Patch != "livepatch_test" {
		t.Fatalf("record %+v", rec)
	}
	st, err := rt.Status()
	if err != nil {
		t.Fatal(err)
	}
	ps := st.Policies[0]
	if ps.Health != Installed || !ps.Module.Loaded || ps.Patch == nil || !ps.Patch.Enabled || ps.Patch.Transition {
		t.Fatalf("status %+v", ps)
	}
	if _, err := rt.Uninstall(context.Background(), "syncord-test", UninstallOptions{}); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if k.isLoaded("livepatch_test") || len(bpffsEntries(t, bpffs)) != 0 || len(recordFiles(t, state)) != 0 {
		t.Fatalf("left behind: module %v, bpffs %v, records %v", k.isLoaded("livepatch_test"), bpffsEntries(t, bpffs), recordFiles(t, state))
	}
	if !strings.Contains(log.String(), "disabled livepatch livepatch_test") {
		t.Errorf("uninstall did not disable the livepatch first:\n%s", log.String())
	}
}

// Every failure after a step undoes all the steps before it.
func TestInstallRollback(t *testing.T) {
	tests := []struct {
		name string
		// edit changes the request; fault fails a step.
		edit      func(req *InstallRequest)
		fault     string
		wantErr   string
		wantLoads int
	}{
		{name: "fault after load", fault: "load", wantErr: "injected"},
		{name: "fault after pin", fault: "pin", wantErr: "injected"},
		{name: "fault after insmod", fault: "insmod", wantErr: "injected", wantLoads: 1},
		{name: "fault after transition", fault: "transition", wantErr: "injected", wantLoads: 1},
		{
			name: "module looks up a path that is not pinned",
			edit: func(req *InstallRequest) {
				req.Policy.Programs[0].Pin = "another_filter"
			},
			wantErr: "looks up /sys/fs/bpf/syncord_test_filter, not pinned",
		},
		{
			name: "pin check skipped: the module's init fails",
			edit: func(req *InstallRequest) {
				req.Policy.Programs[0].Pin = "another_filter"
				req.SkipPinCheck = true
			},
			wantErr:   "finit_module livepatch-test.ko: no such file or directory",
			wantLoads: 1,
		},
		{
			name:    "cancelled before insmod",
			fault:   "cancel",
			wantErr: "context canceled",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bpffs := testutil.PrivateBPFFS(t)
			proc, sys := fixtureRoots(t)
			state := t.TempDir()
			k := newFakeKernel(t, proc, sys, bpffs)
			var log lines
			rt := New(Config{BPFFS: bpffs, Roots: pseudofs.Roots{Proc: pseudofs.FS(proc), Sys: pseudofs.FS(sys)}, StateDir: state, Modules: k, Progress: log.add})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rt.fault = func(step string) error {
				if tt.fault == "cancel" && step == "pin" {
					cancel()
				}
				if step == tt.fault {
					return fmt.Errorf("injected fault after %s", step)
				}
				return nil
			}
			res := testPolicy(t)
			req := InstallRequest{Policy: res.Policy, Source: testPolicyDir, Livepatch: testModule}
			if tt.edit != nil {
				tt.edit(&req)
			}
			rec, err := rt.Install(ctx, req)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Install = %v, want error containing %q\n%s", err, tt.wantErr, log.String())
			}
			if rec != nil {
				t.Errorf("a rolled back install returned record %+v", rec)
			}
			if got := bpffsEntries(t, bpffs); len(got) != 0 {
				t.Errorf("pins left after rollback: %v\n%s", got, log.String())
			}
			if k.isLoaded("livepatch_test") {
				t.Errorf("module left loaded after rollback\n%s", log.String())
			}
			if k.loads != tt.wantLoads {
				t.Errorf("module loaded %d times, want %d", k.loads, tt.wantLoads)
			}
			if got := recordFiles(t, state); len(got) != 0 {
				t.Errorf("records left after rollback: %v", got)
			}
		})
	}
}

// crashChild is the installing process of TestInstallCrash: run by the
// test binary itself, it installs and is killed by the CrashEnv hook.
func TestInstallCrashChild(t *testing.T) {
	dir := os.Getenv("SYNCORD_TEST_CHILD")
	if dir == "" {
		t.Skip("helper process of TestInstallCrash")
	}
	proc, sys, bpffs := filepath.Join(dir, "proc"), filepath.Join(dir, "sys"), filepath.Join(dir, "bpffs")
	k := newFakeKernel(t, proc, sys, bpffs)
	rt := New(Config{BPFFS: bpffs, Roots: pseudofs.Roots{Proc: pseudofs.FS(proc), Sys: pseudofs.FS(sys)}, StateDir: filepath.Join(dir, "state"), Modules: k})
	res := testPolicy(t)
	_, err := rt.Install(context.Background(), InstallRequest{Policy: res.Policy, Source: testPolicyDir, Livepatch: testModule})
	t.Fatalf("install returned (%v) instead of being killed", err)
}

// An installer killed after pinning, before inserting its livepatch, leaves
// pins and a record; status tells
// the truth (interrupted, pins present), reconcile marks the record failed
// with what is left, and uninstall removes it.
func TestInstallCrash(t *testing.T) {
	root := t.TempDir()
	bpffs := testutil.PrivateBPFFS(t)
	proc, sys := fixtureRoots(t)
	for name, target := range map[string]string{"bpffs": bpffs, "proc": proc, "sys": sys} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestInstallCrashChild$", "-test.v")
	cmd.Env = append(os.Environ(), "SYNCORD_TEST_CHILD="+root, CrashEnv+"=pin")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child: %v, want killed by SIGKILL\n%s", err, out)
	}
	rt := New(Config{BPFFS: bpffs, Roots: pseudofs.Roots{Proc: pseudofs.FS(proc), Sys: pseudofs.FS(sys)}, StateDir: filepath.Join(root, "state")})
	st, err := rt.Status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Policies) != 1 {
		t.Fatalf("status has %d policies, want 1", len(st.Policies))
	}
	ps := st.Policies[0]
	if ps.Health != Interrupted || ps.Record.Phase != PhasePinned || len(ps.Pins) != 2 || !ps.Pins[0].Present || !ps.Pins[1].Present {
		t.Fatalf("status after crash = %+v", ps)
	}
	fs, err := rt.Reconcile()
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].Health != Interrupted || !strings.Contains(fs[0].Action, "syncord_test_filter") {
		t.Fatalf("reconcile = %+v", fs)
	}
	if _, err := rt.Uninstall(context.Background(), "syncord-test", UninstallOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := bpffsEntries(t, bpffs); len(got) != 0 {
		t.Fatalf("bpffs after uninstall: %v", got)
	}
}

// BenchmarkInstallUninstall is one pins-only install and uninstall of the
// test policy on a private bpffs: probe, load, pin, record, then unpin and
// drop the record. The state goes to a tmpfs, like /run on a live system;
// on a disk the fsyncs of the five record saves dominate.
func BenchmarkInstallUninstall(b *testing.B) {
	bpffs := testutil.PrivateBPFFS(b)
	proc, sys := fixtureRoots(b)
	state, err := os.MkdirTemp("/dev/shm", "syncord-bench-")
	if err != nil {
		b.Skipf("skipping: no /dev/shm tmpfs: %v", err)
	}
	b.Cleanup(func() { os.RemoveAll(state) })
	rt := New(Config{BPFFS: bpffs, Roots: pseudofs.Roots{Proc: pseudofs.FS(proc), Sys: pseudofs.FS(sys)}, StateDir: state})
	res := testPolicy(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := rt.Install(ctx, InstallRequest{Policy: res.Policy}); err != nil {
			b.Fatal(err)
		}
		if _, err := rt.Uninstall(ctx, "", UninstallOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStepFailEnv: the FailEnv hook the e2e tests use fails exactly the
// step it names.
func TestStepFailEnv(t *testing.T) {
	rt := New(Config{StateDir: t.TempDir()})
	t.Setenv(FailEnv, "pin")
	if err := rt.step("load"); err != nil {
		t.Fatalf("step load: %v", err)
	}
	if err := rt.step("pin"); err == nil || !strings.Contains(err.Error(), "failing after step pin") {
		t.Fatalf("step pin: %v", err)
	}
}

// TestJitOff: the install's interpreter note reads bpf_jit_enable.
func TestJitOff(t *testing.T) {
	proc, _ := fixtureRoots(t)
	if jitOff(pseudofs.FS(proc)) {
		t.Fatal("no bpf_jit_enable file: want no note")
	}
	write(t, filepath.Join(proc, "sys/net/core/bpf_jit_enable"), "0\n")
	if !jitOff(pseudofs.FS(proc)) {
		t.Fatal("bpf_jit_enable 0: want the note")
	}
	write(t, filepath.Join(proc, "sys/net/core/bpf_jit_enable"), "1\n")
	if jitOff(pseudofs.FS(proc)) {
		t.Fatal("bpf_jit_enable 1: want no note")
	}
}

// One livepatched policy per lock target: a livepatch for a target an
// installed policy's livepatch holds is refused before anything is pinned
// or inserted, naming that policy; another target, or a holder without a
// livepatch, does not block; the target is recorded.
func TestInstallOneLivepatchPerTarget(t *testing.T) {
	testutil.RequireBPF(t)
	bpffs := testutil.PrivateBPFFS(t)
	proc, sys := fixtureRoots(t)
	state := t.TempDir()
	k := newFakeKernel(t, proc, sys, bpffs)
	var log lines
	rt := New(Config{BPFFS: bpffs, Roots: pseudofs.Roots{Proc: pseudofs.FS(proc), Sys: pseudofs.FS(sys)}, StateDir: state, Modules: k, Progress: log.add})
	// lockstat, installed earlier with its livepatch on rename_lock; and
	// a pins-only policy of the same target (no livepatch: holds no lock).
	holder := &Record{Name: "lockstat", Source: "/root/out/lockstat", Phase: PhaseInstalled, Module: "livepatch_concord_lockstat", ModulePath: "/root/out/lockstat/LivePatchGen/livepatch-concord.ko", Patch: "livepatch_concord_lockstat", Target: "rename_lock"}
	pinsOnly := &Record{Name: "amp", Source: "amp", Phase: PhaseInstalled}
	for _, r := range []*Record{holder, pinsOnly} {
		if err := rt.store.save(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, target := range []string{"rename_lock", "all_spinlocks"} {
		res := testPolicy(t)
		res.Policy.Target = target
		rec, err := rt.Install(context.Background(), InstallRequest{Policy: res.Policy, Source: testPolicyDir, Livepatch: testModule})
		if target == "rename_lock" {
			const want = "install policy syncord-test: policy lockstat already holds target rename_lock through livepatch_concord_lockstat: one policy per lock target at a time (the newer livepatch would hide the older one's programs); uninstall lockstat first"
			if err == nil || err.Error() != want {
				t.Fatalf("Install on lockstat's target = %v, want %q", err, want)
			}
			if got := bpffsEntries(t, bpffs); len(got) != 0 || k.loads != 0 || !reflect.DeepEqual(recordFiles(t, state), []string{"amp.json", "lockstat.json"}) {
				t.Fatalf("refused install left pins %v, %d module loads, records %v", got, k.loads, recordFiles(t, state))
			}
			continue
		}
		if err != nil {
			t.Fatalf("Install on target %s beside lockstat on rename_lock: %v\n%s", target, err, log.String())
		}
		if rec.Target != target {
			t.Fatalf("record target %q, want %q", rec.Target, target)
		}
		saved, err := rt.store.load("syncord-test")
		if err != nil || saved.Target != target {
			t.Fatalf("saved record %+v (%v), want target %s", saved, err, target)
		}
		if _, err := rt.Uninstall(context.Background(), "syncord-test", UninstallOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Pins only: no target recorded, nothing blocked.
	res := testPolicy(t)
	res.Policy.Target = "rename_lock"
	rec, err := rt.Install(context.Background(), InstallRequest{Policy: res.Policy, Source: testPolicyDir})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Target != "" {
		t.Fatalf("pins-only install recorded target %q", rec.Target)
	}
	if _, err := rt.Uninstall(context.Background(), "syncord-test", UninstallOptions{}); err != nil {
		t.Fatal(err)
	}
}

// A record written before targets were recorded takes its target from its
// concord module's description, else has none (does not block).
func TestRecordTargetFallback(t *testing.T) {
	if got := recordTarget(&Record{Target: "rwsem", ModulePath: testModule}); got != "rwsem" {
		t.Errorf("recorded target: %q", got)
	}
	if got := recordTarget(&Record{ModulePath: testModule}); got != "" {
		t.Errorf("a module that is not concord's gave target %q", got)
	}
	if got := recordTarget(&Record{ModulePath: filepath.Join(t.TempDir(), "gone.ko")}); got != "" {
		t.Errorf("a missing module gave target %q", got)
	}
}
