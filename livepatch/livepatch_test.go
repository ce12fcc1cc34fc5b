package livepatch

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncord/syncord/internal/pseudofs"
)

// copyTree copies the fixture testdata/name into a temporary directory so a
// test may write to it.
func copyTree(t *testing.T, name string) string {
	t.Helper()
	dst := t.TempDir()
	src := filepath.Join("testdata", name)
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPatches(t *testing.T) {
	l := New(pseudofs.Roots{Sys: pseudofs.FS("testdata/two/sys")})
	got, err := l.Patches()
	if err != nil {
		t.Fatal(err)
	}
	want := []Patch{
		{Name: "livepatch_amp", Enabled: true, Transition: true, Signal: false, Force: true},
		{Name: "livepatch_concord", Enabled: true, Transition: false, Signal: true, Force: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Patches = %+v\nwant %+v", got, want)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		sys  string
		call func(l *FS) error
		want error
	}{
		{"no livepatch support", t.TempDir(), func(l *FS) error { _, err := l.Patches(); return err }, ErrNoLivepatch},
		{"enabled without support", t.TempDir(), func(l *FS) error { _, err := l.Enabled("x"); return err }, ErrNoLivepatch},
		{"enabled of absent patch", "testdata/two/sys", func(l *FS) error { _, err := l.Enabled("livepatch_x"); return err }, ErrNoPatch},
		{"transition of absent patch", "testdata/two/sys", func(l *FS) error { _, err := l.Transition("livepatch_x"); return err }, ErrNoPatch},
		{"signal of absent patch", "testdata/two/sys", func(l *FS) error { return l.Signal("livepatch_x") }, ErrNoPatch},
		{"signal unsupported", "testdata/two/sys", func(l *FS) error { return l.Signal("livepatch_amp") }, fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(New(pseudofs.Roots{Sys: pseudofs.FS(tt.sys)}))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("garbage value", func(t *testing.T) {
		root := copyTree(t, "two")
		p := filepath.Join(root, "sys/kernel/livepatch/livepatch_concord/enabled")
		if err := os.WriteFile(p, []byte("2\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := New(pseudofs.Roots{Sys: pseudofs.FS(filepath.Join(root, "sys"))}).Enabled("livepatch_concord"); err == nil || !strings.Contains(err.Error(), "is not 0 or 1") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestDisable(t *testing.T) {
	root := copyTree(t, "two")
	l := New(pseudofs.Roots{Sys: pseudofs.FS(filepath.Join(root, "sys"))})
	en := filepath.Join(root, "sys/kernel/livepatch/livepatch_concord/enabled")
	if err := l.Disable("livepatch_concord"); err != nil {
		t.Fatal(err)
	}
	if got := read(t, en); strings.TrimSpace(got) != "0" {
		t.Fatalf("enabled = %q after Disable, want 0", got)
	}
	// Already disabled: sysfs would answer EINVAL to a second 0; we do not write.
	if err := os.WriteFile(en, []byte("0 \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.Disable("livepatch_concord"); err != nil {
		t.Fatal(err)
	}
	if got := read(t, en); got != "0 \n" {
		t.Fatalf("enabled rewritten to %q for an already disabled patch", got)
	}
	if err := l.Disable("livepatch_gone"); err != nil {
		t.Fatalf("Disable of an absent patch = %v, want nil", err)
	}
}

func TestBlockingTasks(t *testing.T) {
	l := New(pseudofs.Roots{Sys: pseudofs.FS("testdata/stuck/sys"), Proc: pseudofs.FS("testdata/stuck/proc")})
	got, err := l.BlockingTasks(0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Task{
		{PID: 412, TID: 412, Comm: "fxmark", PatchState: 1},
		{PID: 412, TID: 415, Comm: "fxmark-worker", PatchState: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("BlockingTasks(0) = %+v\nwant %+v", got, want)
	}
	got, err = l.BlockingTasks(1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].PID != 1 || got[1].PID != 2 {
		t.Fatalf("BlockingTasks(1) = %+v, want pids 1 and 2", got)
	}
}

// setAttr changes a fixture attribute while Wait polls it. It writes a
// temp file and renames it over the attribute, so a concurrent reader sees
// the old or the new value, never the empty file that truncate-then-write
// would show for a moment (a real sysfs attribute is read atomically).
func setAttr(path, value string) {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(value), 0o644); err == nil {
		os.Rename(tmp, path)
	}
}

func TestWait(t *testing.T) {
	fast := WaitOptions{Poll: time.Millisecond, NudgeAfter: -1}
	t.Run("transition ends", func(t *testing.T) {
		root := copyTree(t, "stuck")
		l := New(pseudofs.Roots{Sys: pseudofs.FS(filepath.Join(root, "sys")), Proc: pseudofs.FS(filepath.Join(root, "proc"))})
		tr := filepath.Join(root, "sys/kernel/livepatch/livepatch_concord/transition")
		go func() {
			time.Sleep(20 * time.Millisecond)
			setAttr(tr, "0\n")
		}()
		if err := l.Wait(context.Background(), "livepatch_concord", time.Minute, fast); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("patch directory disappears", func(t *testing.T) {
		root := copyTree(t, "stuck")
		l := New(pseudofs.Roots{Sys: pseudofs.FS(filepath.Join(root, "sys")), Proc: pseudofs.FS(filepath.Join(root, "proc"))})
		dir := filepath.Join(root, "sys/kernel/livepatch/livepatch_concord")
		// The first nudge comes after Wait has read transition 1: only
		// then is the patch freed, concurrently with Wait's polls. kernfs
		// removes a kobject's directory and its attributes in one step
		// for lookups (__kernfs_remove deactivates the whole subtree
		// first); os.RemoveAll unlinks file by file, and a poll between
		// the unlinks of transition and enabled saw a half-removed
		// directory no kernel shows. Renaming the directory away is the
		// atomic equivalent.
		seen := make(chan struct{})
		var once sync.Once
		opts := WaitOptions{Poll: time.Millisecond, NudgeAfter: time.Millisecond, Progress: func(msg string) {
			if strings.Contains(msg, "signalled") {
				once.Do(func() { close(seen) })
			}
		}}
		removed := make(chan error, 1)
		go func() {
			<-seen
			err := os.Rename(dir, filepath.Join(root, "freed"))
			if err == nil {
				err = os.RemoveAll(filepath.Join(root, "freed"))
			}
			removed <- err
		}()
		if err := l.Wait(context.Background(), "livepatch_concord", time.Minute, opts); err != nil {
			t.Fatal(err)
		}
		if err := <-removed; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("timeout names blocking tasks", func(t *testing.T) {
		root := copyTree(t, "stuck")
		l := New(pseudofs.Roots{Sys: pseudofs.FS(filepath.Join(root, "sys")), Proc: pseudofs.FS(filepath.Join(root, "proc"))})
		err := l.Wait(context.Background(), "livepatch_concord", 30*time.Millisecond, fast)
		var te *TransitionError
		if !errors.As(err, &te) {
			t.Fatalf("err = %v, want *TransitionError", err)
		}
		if !errors.Is(err, context.DeadlineExceeded) || te.Target != 0 || len(te.Blocking) != 2 {
			t.Fatalf("TransitionError = %+v", te)
		}
		for _, s := range []string{"unpatching transition still running", "412/415 (fxmark-worker) patch_state=1", "forcing is unsafe"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q lacks %q", err, s)
			}
		}
		if got := read(t, filepath.Join(root, "sys/kernel/livepatch/livepatch_concord/force")); got != "\n" {
			t.Errorf("force written (%q) without the Force option", got)
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		root := copyTree(t, "stuck")
		l := New(pseudofs.Roots{Sys: pseudofs.FS(filepath.Join(root, "sys")), Proc: pseudofs.FS(filepath.Join(root, "proc"))})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := l.Wait(ctx, "livepatch_concord", time.Minute, fast)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("nudges through signal", func(t *testing.T) {
		root := copyTree(t, "stuck")
		l := New(pseudofs.Roots{Sys: pseudofs.FS(filepath.Join(root, "sys")), Proc: pseudofs.FS(filepath.Join(root, "proc"))})
		dir := filepath.Join(root, "sys/kernel/livepatch/livepatch_concord")
		var nudges atomic.Int32
		opts := WaitOptions{Poll: time.Millisecond, NudgeAfter: 5 * time.Millisecond, Progress: func(msg string) {
			if strings.Contains(msg, "signalled") && nudges.Add(1) == 2 {
				setAttr(filepath.Join(dir, "transition"), "0\n")
			}
		}}
		if err := l.Wait(context.Background(), "livepatch_concord", time.Minute, opts); err != nil {
			t.Fatal(err)
		}
		if got := read(t, filepath.Join(dir, "signal")); got != "1" {
			t.Fatalf("signal = %q, want 1", got)
		}
	})
	t.Run("no signal file is not an error", func(t *testing.T) {
		root := copyTree(t, "two")
		l := New(pseudofs.Roots{Sys: pseudofs.FS(filepath.Join(root, "sys")), Proc: pseudofs.FS(t.TempDir())})
		opts := WaitOptions{Poll: time.Millisecond, NudgeAfter: time.Millisecond}
		err := l.Wait(context.Background(), "livepatch_amp", 20*time.Millisecond, opts)
		var te *TransitionError
		if !errors.As(err, &te) || te.Target != 1 {
			t.Fatalf("err = %v, want patching TransitionError", err)
		}
	})
	t.Run("force only when asked", func(t *testing.T) {
		root := copyTree(t, "stuck")
		l := New(pseudofs.Roots{Sys: pseudofs.FS(filepath.Join(root, "sys")), Proc: pseudofs.FS(filepath.Join(root, "proc"))})
		dir := filepath.Join(root, "sys/kernel/livepatch/livepatch_concord")
		opts := WaitOptions{Poll: time.Millisecond, NudgeAfter: -1, Force: true, Progress: func(msg string) {
			if strings.Contains(msg, "forcing") {
				// The kernel completes a forced transition at once.
				setAttr(filepath.Join(dir, "transition"), "0\n")
			}
		}}
		if err := l.Wait(context.Background(), "livepatch_concord", 10*time.Millisecond, opts); err != nil {
			t.Fatal(err)
		}
		if got := read(t, filepath.Join(dir, "force")); got != "1" {
			t.Fatalf("force = %q, want 1", got)
		}
	})
}
