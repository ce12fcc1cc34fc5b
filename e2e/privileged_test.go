package e2e

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// privilegedPackages are the packages whose tests load BPF programs, pin
// in a private bpffs (internal/testutil) and attach to tracepoints: they
// run on the host when it lets them, and always here.
var privilegedPackages = []string{"bpf", "runtime", "bpf/contention"}

// guestTestdata are the testdata trees of other packages the tests read
// (runtime's livepatch module and kallsyms excerpts).
var guestTestdata = []string{"kmod/testdata", "kernel/testdata"}

// guestSkip are unprivileged tests left to the host: they read fixture
// trees too big to carry (numa's sysfs captures).
var guestSkip = map[string]string{"runtime": "^TestParams$"}

// TestPrivilegedPackagesInGuest runs the tests of the privileged packages
// as root in a Debian guest, another kernel than the host's, as TestAgent
// does for runtime/control (u-root's vmtest does this for its packages):
// each package's test binary, built static on the host, runs from a copy
// of its package directory (testdata included, and guestTestdata). A test that skipped because BPF or bpffs
// was refused fails here: the guest is where they must run.
func TestPrivilegedPackagesInGuest(t *testing.T) {
	skipUnlessEnabled(t)
	files := map[string]string{}
	for _, p := range privilegedPackages {
		bin := filepath.Join(t.TempDir(), strings.ReplaceAll(p, "/", "_")+".test")
		build := exec.Command("go", "test", "-c", "-o", bin, "../"+p)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go test -c %s: %v\n%s", p, err, out)
		}
		files["/root/src/"+p+"/pkg.test"] = bin
		addTree(t, files, "../"+p+"/testdata", "/root/src/"+p+"/testdata")
	}
	for _, d := range guestTestdata {
		addTree(t, files, "../"+d, "/root/src/"+d)
	}
	vm := Boot(t, Config{Sockets: 2, Cores: 1, MemPerNodeMB: 384, Files: files})
	refused := regexp.MustCompile(`(?m)^\s*\S+: skipping: (cannot create a BPF map|cannot mount a private bpffs).*$`)
	for _, p := range privilegedPackages {
		t.Run(p, func(t *testing.T) {
			start := time.Now()
			cmd := "cd /root/src/" + p + " && ./pkg.test -test.v -test.count=1"
			if skip := guestSkip[p]; skip != "" {
				cmd += " -test.skip '" + skip + "'"
			}
			out, code := vm.RunTimeout(t, cmd+" 2>&1", 8*time.Minute)
			passed := strings.Count(out, "--- PASS: ")
			t.Logf("%s in the guest: exit %d, %d passed, %d skipped, %v", p, code, passed, strings.Count(out, "--- SKIP: "), time.Since(start).Round(time.Second))
			if code != 0 {
				t.Fatalf("%s tests in the guest: exit %d\n%s", p, code, out)
			}
			if m := refused.FindAllString(out, -1); len(m) > 0 {
				t.Errorf("%s: privileged tests skipped as root in the guest:\n%s", p, strings.Join(m, "\n"))
			}
			if passed == 0 {
				t.Errorf("%s: no test passed in the guest:\n%s", p, out)
			}
			if testing.Verbose() {
				for _, l := range strings.Split(out, "\n") {
					if strings.HasPrefix(strings.TrimSpace(l), "--- SKIP") || strings.Contains(l, "skipping:") {
						t.Log(l)
					}
				}
			}
		})
	}
}

// addTree maps every file below the host directory src (if there is one)
// to the same path below the guest directory dst.
func addTree(t *testing.T, files map[string]string, src, dst string) {
	t.Helper()
	if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
		return
	}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		files[dst+"/"+filepath.ToSlash(rel)] = abs
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
