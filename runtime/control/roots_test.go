package control

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRootsCheck(t *testing.T) {
	base := t.TempDir()
	pol := filepath.Join(base, "policies")
	bench := filepath.Join(base, "bench")
	bpffs := filepath.Join(base, "bpf")
	for _, d := range []string{pol, bench, bpffs, filepath.Join(base, "outside")} {
		os.MkdirAll(d, 0o755)
	}
	// A link inside the bench root that leads out of it.
	if err := os.Symlink(filepath.Join(base, "outside"), filepath.Join(bench, "escape")); err != nil {
		t.Fatal(err)
	}
	r := &Roots{Policy: []string{pol}, Bench: []string{bench}, BPF: []string{bpffs}}
	for _, tc := range []struct {
		name    string
		args    []string
		errPart string // "" = allowed
	}{
		{"read-only command", []string{"topology", "--json"}, ""},
		{"built-in policy name", []string{"policy", "install", "lockstat"}, ""},
		{"policy dir inside", []string{"policy", "install", pol + "/scl"}, ""},
		{"policy dir outside", []string{"policy", "install", "/etc"}, `path "/etc" is outside the policy roots`},
		{"dot-dot escape", []string{"policy", "install", pol + "/../outside"}, "outside the policy roots"},
		{"livepatch flag outside", []string{"policy", "install", "lockstat", "--livepatch", "/lib/modules/x.ko"}, `path "/lib/modules/x.ko" of --livepatch`},
		{"livepatch flag with equals", []string{"policy", "install", "lockstat", "-livepatch=/root/x.ko"}, "of --livepatch"},
		{"build clang binary outside", []string{"policy", "build", pol + "/src", "--clang", "/bin/sh"}, "of --clang"},
		{"livepatch relative name is resolved", []string{"policy", "install", "lockstat", "--livepatch", "x.ko"}, "of --livepatch"},
		{"livepatch inside", []string{"policy", "install", "lockstat", "--livepatch", pol + "/lp.ko"}, ""},
		{"param is not a path", []string{"policy", "install", "amp", "--param", "cores=28"}, ""},
		{"param holding a path", []string{"policy", "install", "amp", "--param=file=/etc/shadow"}, "outside the policy roots"},
		{"bench root flag outside", []string{"bench", "fxmark", "--type", "MWRL", "--root", "/"}, `path "/" of --root`},
		{"bench db inside", []string{"bench", "leveldb", "readrandom", "--db", bench + "/db"}, ""},
		{"bench symlink escape", []string{"bench", "xdir", "prepare", "--dir", bench + "/escape/d"}, "outside the bench roots"},
		{"bench positional outside", []string{"bench", "xdir", "run", "/srv/src", "d", "e", "5", "1", "1"}, `path "/srv/src"`},
		{"bench after --", []string{"bench", "xdir", "run", "--", "/srv/src"}, `path "/srv/src"`},
		{"tilde", []string{"bench", "fxmark", "--root", "~/x"}, "does not expand ~"},
		{"lockstat map outside bpffs", []string{"lockstat", "--map", "/tmp/map"}, "outside the bpf roots"},
		{"lockstat map inside", []string{"lockstat", "--map", bpffs + "/lockstat/map"}, ""},
		{"flag without value", []string{"bench", "fxmark", "--root"}, ""},
		{"read-only sysfs root is not checked", []string{"bench", "will-it-scale", "lock1", "--sysfs", "/sys"}, ""},
		{"policy bpffs outside", []string{"policy", "install", "lockstat", "--bpffs", "/tmp/bpf"}, "outside the bpf roots"},
		{"topology capture to stdout", []string{"topology", "--capture", "-"}, ""},
		{"topology capture outside", []string{"topology", "--capture", "/etc/x"}, "outside the bench roots"},
		{"topology sysfs root", []string{"topology", "--root", "/sys"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := r.Check(tc.args)
			if tc.errPart == "" {
				if err != nil {
					t.Fatalf("Check(%q) = %v, want allowed", tc.args, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Fatalf("Check(%q) = %v, want error containing %q", tc.args, err, tc.errPart)
			}
		})
	}
}

func TestRootsUnconfigured(t *testing.T) {
	err := (&Roots{}).Check([]string{"bench", "fxmark", "--root", "/tmp/x"})
	if err == nil || !strings.Contains(err.Error(), "no bench root is configured (start the agent with --bench-root DIR)") {
		t.Fatalf("err = %v", err)
	}
}
