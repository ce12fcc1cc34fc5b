package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/syncord/syncord/workloads/fxmark"
)

// startSyncord starts this test binary as syncord with args in a process
// group of its own and returns the process; the group is killed at
// cleanup.
func startSyncord(t *testing.T, args ...string) (*exec.Cmd, *outputBuffer) {
	t.Helper()
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Env = append(os.Environ(), asSyncordEnv+"=1")
	stderr := &outputBuffer{changed: make(chan struct{})}
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() {
		syscall.Kill(-pgid, syscall.SIGKILL)
		cmd.Wait()
	})
	return cmd, stderr
}

// outputBuffer collects a child's output; it may be read while the child
// still writes, and waited on for a line.
type outputBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced at every write
}

func (o *outputBuffer) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	close(o.changed)
	o.changed = make(chan struct{})
	return o.b.Write(p)
}

func (o *outputBuffer) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// waitContains waits until the output contains s, or fails the test after
// 60 s or when exited is closed without it.
func (o *outputBuffer) waitContains(t *testing.T, s string, exited <-chan struct{}) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		o.mu.Lock()
		ok, changed := bytes.Contains(o.b.Bytes(), []byte(s)), o.changed
		o.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-exited:
			if !strings.Contains(o.String(), s) {
				t.Fatalf("the process ended without writing %q; it wrote:\n%s", s, o)
			}
			return
		case <-timeout:
			t.Fatalf("no %q after 60 s; the process wrote:\n%s", s, o)
		}
	}
}

// groupMembers lists the processes of process group pgid.
func groupMembers(pgid int) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := unix.Getpgid(pid); err == nil && g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitFor polls cond every 10 ms for up to 60 s (a witness, not a timing
// assumption: it returns as soon as cond holds).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mountedAt reports whether the mount table of pid ("self" for this
// process) has a mount point at dir.
func mountedAt(t *testing.T, pid, dir string) bool {
	f, err := os.Open(filepath.Join("/proc", pid, "mountinfo"))
	if err != nil {
		return false // the process is gone
	}
	defer f.Close()
	ms, err := mountinfo.GetMountsFromReader(f, mountinfo.SingleEntryFilter(dir))
	if err != nil {
		t.Fatalf("read the mount table of %s: %v", pid, err)
	}
	return len(ms) > 0
}

func requireRootForMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: mounting a tmpfs needs root (run the tests as root)")
	}
}

// TestFxMarkTmpfsDiesWithSIGKILL: fxmark --tmpfs killed with SIGKILL
// leaves no tmpfs mounted over its root (issue 11 item 13: it left a mode
// 777 tmpfs, and a rerun stacked another), and a rerun works.
func TestFxMarkTmpfsDiesWithSIGKILL(t *testing.T) {
	requireRootForMount(t)
	root := t.TempDir()
	t.Cleanup(func() {
		// On failure: take down whatever was left mounted here.
		for mountedAt(t, "self", root) {
			if err := unix.Unmount(root, unix.MNT_DETACH); err != nil {
				t.Errorf("unmount leftover tmpfs at %s: %v", root, err)
				return
			}
		}
	})
	cmd, _ := startSyncord(t, "bench", "fxmark", "--type", "MWRL", "--ncore", "1", "--duration", "60", "-n", "1", "--no-affinity", "--tmpfs", "--root", root)
	pgid := cmd.Process.Pid
	// The witness that the run mounted its tmpfs: some process of the
	// run sees a mount at root.
	waitFor(t, "the run's tmpfs", func() bool {
		for _, pid := range groupMembers(pgid) {
			if mountedAt(t, strconv.Itoa(pid), root) {
				return true
			}
		}
		return false
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	waitFor(t, "every process of the killed run to end", func() bool { return len(groupMembers(pgid)) == 0 })
	if mountedAt(t, "self", root) {
		t.Fatalf("a tmpfs is still mounted at %s after the run was killed", root)
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Fatalf("%s holds %v after the killed run", root, ents)
	}
	r := local("bench", "fxmark", "--type", "MWRL", "--ncore", "1", "--duration", "1", "-n", "1", "--no-affinity", "--tmpfs", "--root", root)
	if r.code != 0 || r.stdout == "" {
		t.Fatalf("rerun: %+v", r)
	}
	if mountedAt(t, "self", root) {
		t.Fatalf("a tmpfs is mounted at %s after a finished run", root)
	}
}

// TestFxMarkCleanAfterSIGKILL: a run without --tmpfs killed with SIGKILL
// leaves its worker directory and marker; a rerun refuses and names
// --clean, --clean removes exactly what the run made.
func TestFxMarkCleanAfterSIGKILL(t *testing.T) {
	root := t.TempDir()
	mine := filepath.Join(root, "thesis.tex")
	if err := os.WriteFile(mine, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, _ := startSyncord(t, "bench", "fxmark", "--type", "MWRL", "--ncore", "1", "--duration", "60", "-n", "1", "--no-affinity", "--root", root)
	waitFor(t, "the run's worker directory", func() bool {
		_, err := os.Stat(filepath.Join(root, "0"))
		return err == nil
	})
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	args := []string{"bench", "fxmark", "--type", "MWRL", "--ncore", "1", "--duration", "1", "-n", "1", "--no-affinity", "--root", root}
	if r := local(args...); r.code == 0 || !strings.Contains(r.stderr, "--clean") {
		t.Fatalf("rerun over the leftovers: %+v, want a refusal naming --clean", r)
	}
	if r := local(append(args, "--clean")...); r.code != 0 || !strings.Contains(r.stderr, "removed what an unfinished fxmark run left") {
		t.Fatalf("rerun with --clean: %+v", r)
	}
	ents, _ := os.ReadDir(root)
	if len(ents) != 1 || ents[0].Name() != "thesis.tex" {
		t.Fatalf("%s after --clean and a run: %v, want only thesis.tex", root, ents)
	}
	// Without a marker nothing is ours: --clean removes nothing.
	if err := os.Mkdir(filepath.Join(root, "0"), 0o755); err != nil {
		t.Fatal(err)
	}
	if r := local(append(args, "--clean")...); r.code == 0 || !strings.Contains(r.stderr, "not made by a syncord run") {
		t.Fatalf("--clean of a root without marker: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(root, "0")); err != nil {
		t.Fatalf("--clean removed a directory it did not make: %v", err)
	}
	if _, err := fxmark.CleanRoot(root); err != nil || errors.Is(err, os.ErrNotExist) {
		t.Fatalf("CleanFxRoot without marker: %v", err)
	}
}
