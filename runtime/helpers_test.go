package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/syncord/syncord/kmod"
)

const (
	testPolicyDir = "testdata/test-policy"
	testModule    = "../kmod/testdata/livepatch-test.ko" // module livepatch_test, for 6.1.0-56-amd64
	testRelease   = "6.1.0-56-amd64"
)

func bpffsEntries(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if !kernelPreload[e.Name()] {
			out = append(out, e.Name())
		}
	}
	return out
}

// fixtureRoots makes a /proc and /sys of a Debian 6.1 guest without
// modules: osrelease, a kallsyms without SynCord symbols, an empty
// /proc/modules and /sys/kernel/livepatch.
func fixtureRoots(t testing.TB) (proc, sys string) {
	t.Helper()
	root := t.TempDir()
	proc, sys = filepath.Join(root, "proc"), filepath.Join(root, "sys")
	write(t, filepath.Join(proc, "sys/kernel/osrelease"), testRelease+"\n")
	write(t, filepath.Join(proc, "kallsyms"), "ffffffff81000000 T _text\nffffffff82a0b040 D rename_lock\n")
	write(t, filepath.Join(proc, "modules"), "")
	if err := os.MkdirAll(filepath.Join(sys, "kernel/livepatch"), 0o755); err != nil {
		t.Fatal(err)
	}
	return proc, sys
}

func write(t testing.TB, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeAtomic(path, data); err != nil {
		t.Fatal(err)
	}
}

// writeAtomic replaces path by a rename, as sysfs attributes change for a
// reader: never empty between a truncate and a write.
func writeAtomic(path, data string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// fakeKernel stands in for the module system calls on a host where no
// module may be inserted. It behaves like the kernel with the e2e test
// livepatch: init fails with ENOENT when a /sys/fs/bpf path the module
// names is missing under bpffs; a loaded livepatch shows up in
// <proc>/modules and <sys>/kernel/livepatch/<name> with a transition that
// ends shortly; delete_module of an enabled livepatch fails with EBUSY; a
// disabled one goes.
type fakeKernel struct {
	t               *testing.T
	proc, sys       string
	bpffs           string
	transitionDelay time.Duration

	mu     sync.Mutex
	loads  int
	loaded map[string]bool
}

func newFakeKernel(t *testing.T, proc, sys, bpffs string) *fakeKernel {
	return &fakeKernel{t: t, proc: proc, sys: sys, bpffs: bpffs, transitionDelay: 20 * time.Millisecond, loaded: map[string]bool{}}
}

func (k *fakeKernel) Load(path, params string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.loads++
	image, err := kmod.ReadImage(path)
	if err != nil {
		return err
	}
	info, err := kmod.ParseInfo(image)
	if err != nil {
		return &kmod.Error{Op: "finit_module", Object: path, Err: unix.ENOEXEC}
	}
	if k.loaded[info.Name] {
		return &kmod.Error{Op: "finit_module", Object: filepath.Base(path), Err: unix.EEXIST}
	}
	for _, s := range kmod.Strings(image, ModuleBPFPrefix) {
		if _, err := os.Lstat(filepath.Join(k.bpffs, strings.TrimPrefix(s, ModuleBPFPrefix))); err != nil {
			return &kmod.Error{Op: "finit_module", Object: filepath.Base(path), Err: unix.ENOENT}
		}
	}
	k.loaded[info.Name] = true
	k.writeModules()
	dir := filepath.Join(k.sys, "kernel/livepatch", info.Name)
	write(k.t, filepath.Join(dir, "enabled"), "1\n")
	write(k.t, filepath.Join(dir, "transition"), "1\n")
	write(k.t, filepath.Join(dir, "signal"), "")
	write(k.t, filepath.Join(dir, "force"), "")
	time.AfterFunc(k.transitionDelay, func() {
		writeAtomic(filepath.Join(dir, "transition"), "0\n")
	})
	return nil
}

func (k *fakeKernel) Unload(name string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.loaded[name] {
		return nil
	}
	dir := filepath.Join(k.sys, "kernel/livepatch", name)
	if b, err := os.ReadFile(filepath.Join(dir, "enabled")); err == nil && strings.TrimSpace(string(b)) == "1" {
		return &kmod.Error{Op: "delete_module", Object: name, Err: unix.EBUSY}
	}
	os.RemoveAll(dir)
	delete(k.loaded, name)
	k.writeModules()
	return nil
}

func (k *fakeKernel) writeModules() {
	var b bytes.Buffer
	for n := range k.loaded {
		fmt.Fprintf(&b, "%s 16384 1 - Live 0xffffffffc0355000 (OEK)\n", n)
	}
	writeAtomic(filepath.Join(k.proc, "modules"), b.String())
}

func (k *fakeKernel) isLoaded(name string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.loaded[name]
}

// lines collects progress lines.
type lines struct {
	mu sync.Mutex
	l  []string
}

func (l *lines) add(s string) { l.mu.Lock(); l.l = append(l.l, s); l.mu.Unlock() }
func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.l, "\n")
}

func recordFiles(t *testing.T, stateDir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(stateDir, "policies"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
