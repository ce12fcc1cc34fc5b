package concord

import (
	"errors"
	"strings"
	"testing"

	"github.com/syncord/syncord/bpf"
)

func TestConfigForLockstat(t *testing.T) {
	b, err := bpf.LookupBuiltin("lockstat")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ConfigFor(b.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	h := string(Header(c, true))
	for _, want := range []string{
		`#define CONCORD_POLICY "lockstat"`,
		`#define CONCORD_TARGET "rename_lock"`,
		"#define CONCORD_TARGET_RENAME_LOCK 1",
		`#define CONCORD_PIN_ACQUIRED "/sys/fs/bpf/lockstat_lock_acquired"`,
		`#define CONCORD_PIN_TO_RELEASE "/sys/fs/bpf/lockstat_lock_to_release"`,
		`#define CONCORD_PIN_TO_ENTER_SLOWPATH "/sys/fs/bpf/lockstat_to_enter_slow_path"`,
		`#define CONCORD_PIN_BYPASS_ACQUIRE ""`,
	} {
		if !strings.Contains(h, want+"\n") {
			t.Errorf("header lacks %q:\n%s", want, h)
		}
	}
	b, _ = bpf.LookupBuiltin("bravo")
	c, err = ConfigFor(b.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if h := string(Header(c, true)); !strings.Contains(h, "#define CONCORD_TARGET_RWSEM 1\n") || !strings.Contains(h, `#define CONCORD_PIN_BYPASS_ACQUIRE "/sys/fs/bpf/bravo_bypass_acq_lock"`) {
		t.Errorf("bravo header:\n%s", h)
	}
	if n := ModuleName("numa-grouping-cna"); n != "livepatch_concord_numa_grouping_cna" {
		t.Errorf("ModuleName = %q", n)
	}
}

// TestConfigForRefuses: targets and hooks concord.c does not replace are
// refused at build time, with the reason, instead of a module that would
// never run the policy.
func TestConfigForRefuses(t *testing.T) {
	for name, want := range map[string]string{
		"numa-grouping":     "targets all_spinlocks",
		"numa-grouping-cna": "targets all_spinlocks",
		"scl":               "targets s_vfs_rename",
	} {
		b, err := bpf.LookupBuiltin(name)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ConfigFor(b.Manifest)
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q and ErrUnsupported", name, err, want)
		}
	}
	m := &bpf.Manifest{Name: "x", Target: "rwsem", Programs: []bpf.Program{{Section: "lock_rwsem_x", Function: "f", Pin: "f", Hook: "lock_to_enter_slowpath"}}}
	if _, err := ConfigFor(m); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "hook lock_to_enter_slowpath of program f on rwsem") {
		t.Errorf("to_enter_slowpath on rwsem: %v", err)
	}
	m = &bpf.Manifest{Name: "x", Target: "rename_lock", Programs: []bpf.Program{{Section: "lock_qspinlock_cmp", Function: "f", Pin: "f", Hook: "should_reorder"}}}
	if _, err := ConfigFor(m); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "hook should_reorder") {
		t.Errorf("should_reorder on rename_lock: %v", err)
	}
	m = &bpf.Manifest{Name: "x", Target: "rename_lock", Programs: []bpf.Program{
		{Section: "lock_qspinlock_acquired", Function: "f", Pin: "f", Hook: "lock_acquired"},
		{Section: "lock_qspinlock_acquired", Function: "g", Pin: "g", Hook: "lock_acquired"},
	}}
	if _, err := ConfigFor(m); err == nil || !strings.Contains(err.Error(), "two programs") {
		t.Errorf("two programs on one hook: %v", err)
	}
}

// TestSourceMatchesHooks keeps concord.c's macros and the Go table in step.
func TestSourceMatchesHooks(t *testing.T) {
	for _, h := range hookMacros {
		if !strings.Contains(string(source), h.macro) || !strings.Contains(string(source), `"`+h.hook+`"`) {
			t.Errorf("concord.c lacks %s or %q", h.macro, h.hook)
		}
	}
	for _, tg := range supportedTargets {
		if !strings.Contains(string(source), "#ifdef "+tg.macro) {
			t.Errorf("concord.c has no #ifdef %s", tg.macro)
		}
	}
}
