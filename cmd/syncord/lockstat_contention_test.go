package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncord/syncord/bpf/contention"
)

func TestContentionLockAddr(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   uint64
		isAddr bool
	}{
		{"0xffffffff8300b704", 0xffffffff8300b704, true},
		{"ffffffff8300b704", 0xffffffff8300b704, true},
		{"0x10", 0x10, true},
		{"rename_lock", 0, false},
		{"dead", 0, false}, // short hex-looking word: a symbol name
		{"", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := contentionLockAddr(tc.in)
			if got != tc.want || ok != tc.isAddr {
				t.Errorf("contentionLockAddr(%q) = %#x, %v; want %#x, %v", tc.in, got, ok, tc.want, tc.isAddr)
			}
		})
	}
}

func TestSecondsFlag(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"3", 3 * time.Second, false},
		{"0.5", 500 * time.Millisecond, false},
		{"1m30s", 90 * time.Second, false},
		{"250ms", 250 * time.Millisecond, false},
		{"-1", 0, true},
		{"soon", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var f secondsFlag
			err := f.Set(tc.in)
			if (err != nil) != tc.wantErr || (err == nil && time.Duration(f) != tc.want) {
				t.Errorf("Set(%q) = %v, %v; want %v, error %v", tc.in, time.Duration(f), err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestLockstatContentionUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"unknown type", []string{"--type", "futex"}},
		{"stray argument", []string{"now"}},
		{"negative top", []string{"--top", "-1"}},
		{"bad duration", []string{"--duration", "soon"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := lockstatContention(context.Background(), &Env{Stdout: &out, Stderr: &errb}, tc.args)
			if !errors.Is(err, errUsage) {
				t.Errorf("err = %v, want a usage error", err)
			}
		})
	}
}

// `syncord lockstat --contention ...` reaches lockstatContention: its own
// flag (--type) is parsed and rejected there.
func TestLockstatRoutesContention(t *testing.T) {
	var out, errb bytes.Buffer
	code := Run(context.Background(), &Env{Stdout: &out, Stderr: &errb}, []string{"lockstat", "--contention", "--type", "futex"})
	if code != 2 || !strings.Contains(errb.String(), `unknown lock type "futex"`) {
		t.Errorf("exit %d, stderr %q; want 2 and the contention profiler's type error", code, errb.String())
	}
}

// TestLockstatContentionJSON runs the command (as `syncord lockstat
// --contention --duration 2s --symbols --callers 2 --json` would) during a
// rename storm and reads its JSON: rename_lock's spinlock is contended.
func TestLockstatContentionJSON(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to load BPF (run: sudo go test ./cmd/syncord/)")
	}
	if err := contention.Check("/proc", "/sys"); err != nil {
		t.Skipf("skipping: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var renames atomic.Uint64
	for w := 0; w < 2; w++ {
		dir := filepath.Join(t.TempDir(), "d")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		if err := os.WriteFile(a, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if os.Rename(a, b) != nil || os.Rename(b, a) != nil {
					return
				}
				renames.Add(2)
			}
		}()
	}
	var out, errb bytes.Buffer
	err := lockstatContention(ctx, &Env{Stdout: &out, Stderr: &errb},
		[]string{"--contention", "--duration", "2", "--symbols", "--callers", "2", "--json"})
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatalf("lockstat --contention: %v\n%s", err, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one JSON line without --interval, got %d:\n%s", len(lines), out.String())
	}
	var r contention.Report
	if err := json.Unmarshal([]byte(lines[0]), &r); err != nil {
		t.Fatal(err)
	}
	if !r.Final || r.DurationNS < uint64(2*time.Second) || r.Kernel == "" {
		t.Errorf("report header: final %v duration %d kernel %q", r.Final, r.DurationNS, r.Kernel)
	}
	found := false
	for i, l := range r.Locks {
		if i > 0 && l.WaitTotalNS > r.Locks[i-1].WaitTotalNS {
			t.Errorf("locks not sorted by wait total at %d", i)
		}
		isRename := l.Symbol == "rename_lock"
		for _, c := range l.Callers {
			isRename = isRename || strings.HasPrefix(c.Symbol, "d_move+")
		}
		if isRename && l.Contentions > 0 && l.WaitMaxNS >= l.WaitMinNS {
			found = true
		}
	}
	if !found {
		t.Errorf("rename_lock not contended after %d renames:\n%s", renames.Load(), out.String())
	}
}
