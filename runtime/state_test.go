package runtime

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/syncord/syncord/internal/pseudofs"
)

func TestStoreRoundTrip(t *testing.T) {
	s := &store{dir: t.TempDir()}
	rec := &Record{Name: "amp", Source: "amp", Phase: PhaseInstalled, Params: map[string]uint64{"cores_per_socket": 28},
		BPFFS: "/sys/fs/bpf", Pins: []string{"/sys/fs/bpf/amp_cont_lock"}, Module: "livepatch_concord", Patch: "livepatch_concord",
		Kernel: "5.4.0-shfllock-syncord+", Started: time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)}
	if err := s.save(rec); err != nil {
		t.Fatal(err)
	}
	// A temporary file of an interrupted save and foreign files are not records.
	os.WriteFile(filepath.Join(s.policiesDir(), ".amp.123.tmp"), []byte("{"), 0o600)
	os.WriteFile(filepath.Join(s.policiesDir(), "README"), []byte("x"), 0o600)
	got, err := s.list()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !reflect.DeepEqual(got[0], rec) {
		t.Fatalf("list = %+v, want %+v", got, rec)
	}
	if got[0].PID != os.Getpid() || got[0].Updated.IsZero() {
		t.Errorf("save did not stamp pid and time: %+v", got[0])
	}
	if err := s.remove("amp"); err != nil {
		t.Fatal(err)
	}
	if err := s.remove("amp"); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	if got, _ := s.list(); len(got) != 0 {
		t.Fatalf("after remove: %+v", got)
	}
	if got, err := (&store{dir: filepath.Join(t.TempDir(), "absent")}).list(); err != nil || got != nil {
		t.Fatalf("list of a missing state dir = %v, %v", got, err)
	}
}

func TestStoreRejectsBadNames(t *testing.T) {
	s := &store{dir: t.TempDir()}
	for _, n := range []string{"", ".", "..", "a/b", ".hidden", "x\x00y"} {
		if err := s.save(&Record{Name: n}); err == nil {
			t.Errorf("save(%q) succeeded", n)
		}
	}
}

func TestStoreDamagedRecord(t *testing.T) {
	s := &store{dir: t.TempDir()}
	os.MkdirAll(s.policiesDir(), 0o700)
	os.WriteFile(s.path("amp"), []byte("{not json"), 0o600)
	if _, err := s.list(); err == nil || !strings.Contains(err.Error(), "remove the file if it is damaged") {
		t.Fatalf("list of a damaged record = %v", err)
	}
}

func TestStoreLockExcludes(t *testing.T) {
	s := &store{dir: t.TempDir()}
	unlock, err := s.lock()
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to the open file description: a second open in
	// the same process conflicts like another process would.
	if _, err := s.lock(); err == nil || !strings.Contains(err.Error(), "another syncord install or uninstall is running") {
		t.Fatalf("second lock = %v", err)
	}
	unlock()
	unlock2, err := s.lock()
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

// Status and Reconcile on fixture trees: pins are plain files here (Status
// only looks at their presence), the module and livepatch are fixture
// files under proc and sys.
func TestStatusAndReconcile(t *testing.T) {
	type sys struct {
		pins    []string // present under bpffs
		module  bool     // livepatch_concord in /proc/modules
		enabled string   // livepatch enabled file; "" for no patch dir
		trans   string
	}
	tests := []struct {
		name       string
		phase      Phase
		withModule bool
		// wantsModule: a livepatch was asked for but not inserted yet.
		wantsModule bool
		sys         sys
		health      Health
		// after reconcile: record kept?, its phase and pins
		kept      bool
		keptPhase Phase
		keptPins  int
		action    string
	}{
		{name: "installed and whole", phase: PhaseInstalled, withModule: true,
			sys:    sys{pins: []string{"a", "hash_map"}, module: true, enabled: "1", trans: "0"},
			health: Installed, kept: true, keptPhase: PhaseInstalled, keptPins: 2},
		{name: "installed, module in transition", phase: PhaseInstalled, withModule: true,
			sys:    sys{pins: []string{"a", "hash_map"}, module: true, enabled: "1", trans: "1"},
			health: Degraded, kept: true, keptPhase: PhaseInstalled, keptPins: 2, action: "left on the system"},
		{name: "installed but a pin was removed", phase: PhaseInstalled, withModule: true,
			sys:    sys{pins: []string{"a"}, module: true, enabled: "1", trans: "0"},
			health: Degraded, kept: true, keptPhase: PhaseInstalled, keptPins: 1, action: "left on the system"},
		{name: "installed but everything gone (reboot)", phase: PhaseInstalled, withModule: true,
			sys:    sys{},
			health: Gone, action: "record dropped"},
		{name: "killed after pin of an install with a livepatch", phase: PhasePinned, wantsModule: true,
			sys:    sys{pins: []string{"a", "hash_map"}},
			health: Interrupted, kept: true, keptPhase: PhaseFailed, keptPins: 2, action: "left on the system"},
		{name: "killed after pin of a pins-only install", phase: PhasePinned,
			sys:    sys{pins: []string{"a", "hash_map"}},
			health: Interrupted, kept: true, keptPhase: PhaseInstalled, keptPins: 2, action: "recorded as installed"},
		{name: "killed while pinning, nothing made", phase: PhasePinning,
			sys:    sys{},
			health: Interrupted, action: "record dropped"},
		{name: "killed after insmod, module in, transition done", phase: PhaseInserting, withModule: true,
			sys:    sys{pins: []string{"a", "hash_map"}, module: true, enabled: "1", trans: "0"},
			health: Interrupted, kept: true, keptPhase: PhaseInstalled, keptPins: 2, action: "recorded as installed"},
		{name: "killed while inserting, module init failed", phase: PhaseInserting, withModule: true,
			sys:    sys{pins: []string{"a", "hash_map"}},
			health: Interrupted, kept: true, keptPhase: PhaseFailed, keptPins: 2, action: "left on the system"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proc, sysRoot := fixtureRoots(t)
			bpffs := t.TempDir()
			state := t.TempDir()
			for _, p := range tt.sys.pins {
				write(t, filepath.Join(bpffs, p), "")
			}
			write(t, filepath.Join(bpffs, "foreign"), "")
			if tt.sys.module {
				write(t, filepath.Join(proc, "modules"), "livepatch_concord 16384 1 - Live 0xffffffffc0355000 (OEK)\n")
			}
			if tt.sys.enabled != "" {
				d := filepath.Join(sysRoot, "kernel/livepatch/livepatch_concord")
				write(t, filepath.Join(d, "enabled"), tt.sys.enabled+"\n")
				write(t, filepath.Join(d, "transition"), tt.sys.trans+"\n")
			}
			rt := New(Config{BPFFS: bpffs, Roots: pseudofs.Roots{Proc: pseudofs.FS(proc), Sys: pseudofs.FS(sysRoot)}, StateDir: state})
			rec := &Record{Name: "lockstat", Phase: tt.phase, BPFFS: bpffs,
				Pins: []string{filepath.Join(bpffs, "a"), filepath.Join(bpffs, "hash_map")}}
			if tt.withModule {
				rec.Module, rec.Patch = "livepatch_concord", "livepatch_concord"
			}
			if tt.withModule || tt.wantsModule {
				rec.ModulePath = "/root/livepatch-concord.ko"
			}
			if err := rt.store.save(rec); err != nil {
				t.Fatal(err)
			}
			st, err := rt.Status()
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Policies) != 1 || st.Policies[0].Health != tt.health {
				t.Fatalf("status health = %+v, want %s", st.Policies, tt.health)
			}
			if !reflect.DeepEqual(st.OtherPins, []string{filepath.Join(bpffs, "foreign")}) {
				t.Errorf("other pins = %v", st.OtherPins)
			}
			if st.Kernel.Release != testRelease || st.Kernel.Kind != "stock" || !st.Kernel.Livepatch {
				t.Errorf("kernel = %+v", st.Kernel)
			}
			fs, err := rt.Reconcile()
			if err != nil {
				t.Fatal(err)
			}
			if tt.action == "" {
				if len(fs) != 0 {
					t.Errorf("reconcile of a whole install reported %+v", fs)
				}
			} else if len(fs) != 1 || !strings.Contains(fs[0].Action, tt.action) {
				t.Errorf("reconcile = %+v, want action containing %q", fs, tt.action)
			}
			got, err := rt.store.load("lockstat")
			if !tt.kept {
				if err == nil {
					t.Fatalf("record kept: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Phase != tt.keptPhase || len(got.Pins) != tt.keptPins {
				t.Errorf("record after reconcile: phase %s pins %v; want %s and %d pins", got.Phase, got.Pins, tt.keptPhase, tt.keptPins)
			}
			if again, err := rt.Reconcile(); err != nil || len(again) != 0 {
				t.Errorf("second reconcile = %+v, %v; want no change", again, err)
			}
			// Reconcile changes records only: every fixture file is still there.
			for _, p := range tt.sys.pins {
				if _, err := os.Stat(filepath.Join(bpffs, p)); err != nil {
					t.Errorf("reconcile removed pin %s", p)
				}
			}
		})
	}
}

func TestStatusInProgress(t *testing.T) {
	proc, sysRoot := fixtureRoots(t)
	state := t.TempDir()
	rt := New(Config{BPFFS: t.TempDir(), Roots: pseudofs.Roots{Proc: pseudofs.FS(proc), Sys: pseudofs.FS(sysRoot)}, StateDir: state})
	if err := rt.store.save(&Record{Name: "scl", Phase: PhasePinning}); err != nil {
		t.Fatal(err)
	}
	unlock, err := rt.store.lock() // an install holding the lock
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	st, err := rt.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Policies[0].Health != InProgress {
		t.Fatalf("health = %s, want in-progress", st.Policies[0].Health)
	}
	if _, err := rt.Reconcile(); err == nil {
		t.Fatal("reconcile ran while an install holds the lock")
	}
}

// TestReconcileWaitsForTransition: an install killed after insmod leaves
// the kernel to finish the livepatch's transition; reconcile right after
// (agent start) waits for it, as the install would have, and then finds
// every step done, instead of calling a policy that is about to be whole
// "left on the system". The fixture's transition ends only after Wait has
// signalled it (Wait is provably running then), so no timing is assumed.
func TestReconcileWaitsForTransition(t *testing.T) {
	proc, sysRoot := fixtureRoots(t)
	bpffs, state := t.TempDir(), t.TempDir()
	for _, p := range []string{"a", "hash_map"} {
		write(t, filepath.Join(bpffs, p), "")
	}
	write(t, filepath.Join(proc, "modules"), "livepatch_concord 16384 1 - Live 0xffffffffc0355000 (OEK)\n")
	d := filepath.Join(sysRoot, "kernel/livepatch/livepatch_concord")
	write(t, filepath.Join(d, "enabled"), "1\n")
	write(t, filepath.Join(d, "transition"), "1\n")
	write(t, filepath.Join(d, "signal"), "")
	rt := New(Config{BPFFS: bpffs, Roots: pseudofs.Roots{Proc: pseudofs.FS(proc), Sys: pseudofs.FS(sysRoot)}, StateDir: state, TransitionTimeout: time.Minute})
	rec := &Record{Name: "lockstat", Phase: PhaseInserting, BPFFS: bpffs, Module: "livepatch_concord", Patch: "livepatch_concord",
		ModulePath: "/root/livepatch-concord.ko", Pins: []string{filepath.Join(bpffs, "a"), filepath.Join(bpffs, "hash_map")}}
	if err := rt.store.save(rec); err != nil {
		t.Fatal(err)
	}
	// The kernel: the transition completes once the waiter has nudged it.
	done, returned := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-returned:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if b, _ := os.ReadFile(filepath.Join(d, "signal")); strings.TrimSpace(string(b)) == "1" {
				tmp := filepath.Join(d, ".transition")
				write(t, tmp, "0\n")
				if err := os.Rename(tmp, filepath.Join(d, "transition")); err != nil {
					t.Error(err)
				}
				return
			}
		}
	}()
	fs, err := rt.Reconcile()
	close(returned)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || !strings.Contains(fs[0].Action, "every step had finished; recorded as installed") {
		t.Fatalf("reconcile = %+v, want the install recorded as installed once its transition finished", fs)
	}
	if got, err := rt.store.load("lockstat"); err != nil || got.Phase != PhaseInstalled {
		t.Fatalf("record after reconcile: %+v, %v; want installed", got, err)
	}
}
