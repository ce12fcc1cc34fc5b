package kernel

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/syncord/syncord/internal/pseudofs"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const stockKallsyms = `ffffffff81000000 T _stext
ffffffff81234560 T d_move
ffffffff82a0b040 D rename_lock
ffffffff82a0b080 D mount_lock
ffffffffc0001000 t foo_init	[foo]
`

func TestProbe(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string]string
		synCord   bool
		byName    bool
		btf       bool
		kallsyms  bool
		wantProof string
	}{
		{
			name: "stock 6.1 with BTF",
			files: map[string]string{
				"proc/sys/kernel/osrelease": "6.1.0-56-amd64\n",
				"proc/kallsyms":             stockKallsyms,
				"sys/kernel/btf/vmlinux":    "",
			},
			btf: true, kallsyms: true,
		},
		{
			name: "syncord 5.4 shfllock",
			files: map[string]string{
				"proc/sys/kernel/osrelease": "5.4.0-shfllock-syncord+\n",
				"proc/kallsyms":             stockKallsyms + "ffffffff82b00000 B num_policy\n",
			},
			synCord: true, byName: true, kallsyms: true, wantProof: "num_policy",
		},
		{
			name: "named syncord but symbols missing is not syncord",
			files: map[string]string{
				"proc/sys/kernel/osrelease": "5.4.0-stock-syncord\n",
				"proc/kallsyms":             stockKallsyms,
			},
			byName: true, kallsyms: true,
		},
		{
			name: "no kallsyms",
			files: map[string]string{
				"proc/sys/kernel/osrelease": "5.4.0\n",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := writeTree(t, tc.files)
			info, err := testFS(filepath.Join(root, "proc"), filepath.Join(root, "sys")).Probe()
			if err != nil {
				t.Fatal(err)
			}
			if info.SynCord != tc.synCord || info.SynCordName != tc.byName || info.BTF != tc.btf ||
				info.Kallsyms != tc.kallsyms || info.SynCordSymbol != tc.wantProof {
				t.Fatalf("got %+v", info)
			}
		})
	}
}

func TestProbeMissingRelease(t *testing.T) {
	root := t.TempDir()
	if _, err := testFS(root, root).Probe(); err == nil {
		t.Fatal("probe of an empty tree succeeded")
	}
}

func TestKallsymsLookup(t *testing.T) {
	root := writeTree(t, map[string]string{"proc/kallsyms": stockKallsyms})
	syms, err := testFS(filepath.Join(root, "proc"), root).Kallsyms()
	if err != nil {
		t.Fatal(err)
	}
	if syms.Len() != 5 {
		t.Fatalf("Len = %d, want 5", syms.Len())
	}
	if a, ok := syms.Address("rename_lock"); !ok || a != 0xffffffff82a0b040 {
		t.Fatalf("Address(rename_lock) = %#x, %v", a, ok)
	}
	cases := []struct {
		addr  uint64
		exact bool
		want  string
	}{
		{0xffffffff82a0b040, true, "rename_lock"},
		{0xffffffff82a0b048, true, ""},
		{0xffffffff82a0b048, false, "rename_lock+0x8"},
		{0xffffffff81234570, false, "d_move+0x10"},
		{0x1000, false, ""},
	}
	for _, c := range cases {
		if got := syms.Name(c.addr, c.exact); got != c.want {
			t.Errorf("Name(%#x, %v) = %q, want %q", c.addr, c.exact, got, c.want)
		}
	}
	sym, _, _ := syms.Lookup(0xffffffffc0001000)
	if sym.Module != "foo" {
		t.Errorf("module = %q, want foo", sym.Module)
	}
}

func TestKallsymsZeroAddresses(t *testing.T) {
	root := writeTree(t, map[string]string{"proc/kallsyms": "0000000000000000 T _stext\n0000000000000000 D rename_lock\n"})
	if _, err := testFS(filepath.Join(root, "proc"), root).Kallsyms(); err == nil {
		t.Fatal("zeroed kallsyms accepted")
	}
}

func TestProbeLive(t *testing.T) {
	info, err := NewDefaultFS().Probe()
	if err != nil {
		t.Skipf("skipping: cannot probe the running kernel: %v", err)
	}
	if info.Release == "" {
		t.Fatal("empty release")
	}
	t.Logf("running kernel: %+v", info)
}

// testFS reads the fixture roots proc and sys.
func testFS(proc, sys string) FS {
	return NewFS(pseudofs.Roots{Proc: pseudofs.FS(proc), Sys: pseudofs.FS(sys)})
}
