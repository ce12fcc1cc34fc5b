package kmod

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/syncord/syncord/internal/pseudofs"
)

func TestParseModules(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Module
		wantErr string
	}{
		{
			name: "livepatch with taints",
			in:   "livepatch_test 16384 1 - Live 0xffffffffc0355000 (OEK)\n",
			want: []Module{{Name: "livepatch_test", Size: 16384, Refcount: 1, State: Live, Taints: "OEK"}},
		},
		{
			name: "users list is comma terminated",
			in:   "vsock 53248 2 vsock_loopback,vmw_vsock_virtio_transport_common, Live 0xffffffffc0320000\n",
			want: []Module{{Name: "vsock", Size: 53248, Refcount: 2, Users: []string{"vsock_loopback", "vmw_vsock_virtio_transport_common"}, State: Live}},
		},
		{
			name: "loading without address",
			in:   "crc32c_generic 16384 0 - Loading 0x0000000000000000\n",
			want: []Module{{Name: "crc32c_generic", Size: 16384, State: Loading}},
		},
		{
			name: "unloading, no address field (non-root view is still 6 fields)",
			in:   "xfs 2011136 0 - Unloading",
			want: []Module{{Name: "xfs", Size: 2011136, State: Unloading}},
		},
		{
			name: "permanent module refcount dash",
			in:   "builtin_ish 4096 - - Live 0x0\n",
			want: []Module{{Name: "builtin_ish", Size: 4096, Refcount: -1, State: Live}},
		},
		{name: "empty", in: "", want: nil},
		{name: "blank lines", in: "\n\n", want: nil},
		{name: "short line", in: "ext4 999424 1 -\n", wantErr: "want at least 5"},
		{name: "bad size", in: "ext4 big 1 - Live 0x0\n", wantErr: "size"},
		{name: "bad refcount", in: "ext4 1 x - Live 0x0\n", wantErr: "refcount"},
		{name: "bad state", in: "ext4 1 1 - Going 0x0\n", wantErr: "unknown module state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseModules([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func FuzzParseModules(f *testing.F) {
	data, err := os.ReadFile("testdata/proc-modules")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte("a 1 - - Live\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		mods, err := parseModules(in)
		if err != nil {
			return
		}
		for _, m := range mods {
			if m.Name == "" || strings.ContainsAny(m.Name, " \t\n") {
				t.Fatalf("bad name %q", m.Name)
			}
			if m.State != Live && m.State != Loading && m.State != Unloading {
				t.Fatalf("bad state %q", m.State)
			}
		}
	})
}

func TestProcModules(t *testing.T) {
	root := t.TempDir()
	data, err := os.ReadFile("testdata/proc-modules")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "modules"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	p := NewProc(pseudofs.FS(root))
	mods, err := p.Modules()
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) != 8 {
		t.Fatalf("%d modules, want 8", len(mods))
	}
	for _, tc := range []struct {
		query string
		found bool
		state State
	}{
		{"livepatch-test", true, Live},
		{"livepatch_test", true, Live},
		{"xfs", true, Unloading},
		{"crc32c-generic", true, Loading},
		{"livepatch", false, ""},
	} {
		m, ok, err := p.Module(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		if ok != tc.found || m.State != tc.state {
			t.Errorf("Module(%q) = %+v, %v; want found=%v state=%q", tc.query, m, ok, tc.found, tc.state)
		}
	}
	if _, err := NewProc(pseudofs.FS(t.TempDir())).Modules(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing /proc/modules: err = %v, want ErrNotExist", err)
	}
}

// TestProcModulesTooLarge: a /proc/modules longer than the bound is an
// error, not a list silently cut at the bound (lines of 64 bytes end
// exactly there, so a cut one parses cleanly).
func TestProcModulesTooLarge(t *testing.T) {
	root := t.TempDir()
	line := fmt.Sprintf("%-29s 16384 0 - Live 0x0000000000000000\n", "m")
	if len(line) != 64 {
		t.Fatalf("line is %d bytes", len(line))
	}
	data := strings.Repeat(line, maxProcModules/64+1)
	if err := os.WriteFile(filepath.Join(root, "modules"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	mods, err := NewProc(pseudofs.FS(root)).Modules()
	if !errors.Is(err, pseudofs.ErrTooLarge) {
		t.Fatalf("Modules() of %d bytes = %d modules, %v; want ErrTooLarge", len(data), len(mods), err)
	}
}

func TestReadInfo(t *testing.T) {
	want := Info{
		Name:      "livepatch_test",
		Vermagic:  "6.1.0-56-amd64 SMP preempt mod_unload modversions ",
		License:   "GPL",
		Livepatch: true,
	}
	for _, file := range []string{"livepatch-test.ko", "livepatch-test.ko.gz", "livepatch-test.ko.xz", "livepatch-test.ko.zst"} {
		t.Run(file, func(t *testing.T) {
			switch filepath.Ext(file) {
			case ".xz":
				needTool(t, "xz", "xz-utils")
			case ".zst":
				needTool(t, "zstd", "zstd")
			}
			got, err := ReadInfo(filepath.Join("testdata", file))
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != want.Name || got.Vermagic != want.Vermagic || got.License != want.License || got.Livepatch != want.Livepatch {
				t.Fatalf("got %+v\nwant %+v", got, want)
			}
			if got.Modinfo["retpoline"] != "Y" {
				t.Errorf("modinfo retpoline = %q, want Y", got.Modinfo["retpoline"])
			}
		})
	}
	t.Run("name from this_module without modinfo", func(t *testing.T) {
		got, err := ReadInfo("testdata/no-modinfo.ko")
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "livepatch_test" || got.Vermagic != "" {
			t.Fatalf("got name %q vermagic %q, want livepatch_test and none", got.Name, got.Vermagic)
		}
	})
	t.Run("not a module", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "x.ko")
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadInfo(p)
		if err == nil || !strings.Contains(err.Error(), "neither an ELF module") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("corrupt gzip", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "x.ko.gz")
		if err := os.WriteFile(p, []byte{0x1f, 0x8b, 8, 0, 0}, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadInfo(p); err == nil || !strings.Contains(err.Error(), "decompress module") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestExternalToolMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := ReadImage("testdata/livepatch-test.ko.xz")
	if err == nil || !strings.Contains(err.Error(), "xz not found in PATH (install xz-utils") {
		t.Fatalf("err = %v", err)
	}
}

func needTool(t *testing.T, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("skipping: %s not in PATH (try: apt-get install %s)", tool, pkg)
	}
}

func TestStrings(t *testing.T) {
	image, err := ReadImage("testdata/livepatch-test.ko")
	if err != nil {
		t.Fatal(err)
	}
	got := Strings(image, "/sys/fs/bpf/")
	want := []string{"/sys/fs/bpf/syncord_test_filter", "/sys/fs/bpf/hash_map"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Strings = %q, want %q", got, want)
	}
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"start of data", "/sys/fs/bpf/a\x00", []string{"/sys/fs/bpf/a"}},
		{"inside another string", "x/sys/fs/bpf/a\x00", nil},
		{"not terminated", "\x00/sys/fs/bpf/a", nil},
		{"non printable", "\x00/sys/fs/bpf/a\x01\x00", nil},
		{"duplicates once", "\x00/sys/fs/bpf/a\x00/sys/fs/bpf/b\x00/sys/fs/bpf/a\x00", []string{"/sys/fs/bpf/a", "/sys/fs/bpf/b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Strings([]byte(tt.in), "/sys/fs/bpf/"); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErrorAdvice(t *testing.T) {
	tests := []struct {
		op    string
		errno unix.Errno
		want  string
		is    error
	}{
		{"finit_module", unix.EPERM, "needs CAP_SYS_MODULE", fs.ErrPermission},
		{"finit_module", unix.EEXIST, "already loaded", fs.ErrExist},
		{"delete_module", unix.EBUSY, "in use", nil},
		{"delete_module", unix.EAGAIN, "in use", nil},
		{"init_module", unix.ENOEXEC, "vermagic", nil},
		{"finit_module", unix.ENOENT, "init failed", fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.op+"/"+tt.errno.Error(), func(t *testing.T) {
			err := wrap(tt.op, "livepatch-concord.ko", tt.errno)
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), tt.op+" livepatch-concord.ko: ") {
				t.Fatalf("error %q does not name op and object or lacks %q", err, tt.want)
			}
			if !errors.Is(err, tt.errno) {
				t.Fatalf("error does not unwrap to %v", tt.errno)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("error is not %v", tt.is)
			}
		})
	}
}

func TestLoadRejectsNonModuleBeforeSyscall(t *testing.T) {
	p := filepath.Join(t.TempDir(), "notes.ko")
	if err := os.WriteFile(p, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Load(p, "")
	if err == nil || !strings.Contains(err.Error(), "neither an ELF module") {
		t.Fatalf("Load = %v", err)
	}
	if err := Load(filepath.Join(t.TempDir(), "absent.ko"), ""); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load absent = %v", err)
	}
}

// proc-modules-vm is /proc/modules of the e2e guest (Debian 6.1) with the
// test livepatch loaded, captured by e2e.TestPolicyInstallLivepatch with
// SYNCORD_UPDATE_FIXTURES=1.
func TestProcModulesCapturedInVM(t *testing.T) {
	data, err := os.ReadFile("testdata/proc-modules-vm")
	if err != nil {
		t.Fatal(err)
	}
	mods, err := parseModules(data)
	if err != nil {
		t.Fatal(err)
	}
	var lp *Module
	for i := range mods {
		if mods[i].Name == "livepatch_test" {
			lp = &mods[i]
		}
	}
	if lp == nil || lp.State != Live || !strings.Contains(lp.Taints, "K") || lp.Size == 0 {
		t.Fatalf("livepatch_test = %+v in %d modules", lp, len(mods))
	}
	if len(mods) != strings.Count(string(data), "\n") {
		t.Errorf("%d modules from %d lines", len(mods), strings.Count(string(data), "\n"))
	}
}
