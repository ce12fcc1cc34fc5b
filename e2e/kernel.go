package e2e

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// KernelInfo is Debian's current stock kernel, unpacked into the cache.
type KernelInfo struct {
	// Version is the kernel release, e.g. 6.1.0-56-amd64.
	Version string
	// Vmlinuz is the bootable image.
	Vmlinuz string
	// ModulesDir is lib/modules/<version> of the unpacked package.
	ModulesDir string
	// HeadersDir is /usr/src/linux-headers-<version> when the matching
	// headers package is installed (.ci/run installs it), else "".
	HeadersDir string
}

var (
	kernelOnce sync.Once
	kernelInfo *KernelInfo
	kernelErr  error
)

// Kernel returns Debian's linux-image-amd64 kernel, downloading and
// unpacking it into the cache on first use. It skips the test when e2e
// tests are not enabled.
func Kernel(t testing.TB) *KernelInfo {
	t.Helper()
	skipUnlessEnabled(t)
	kernelOnce.Do(func() { kernelInfo, kernelErr = FetchKernel() })
	if kernelErr != nil {
		t.Fatalf("e2e kernel: %v", kernelErr)
	}
	return kernelInfo
}

// CacheDir is where downloads are kept between runs: $SYNCORD_CACHE, or
// .cache/e2e at the top of the repository (ignored by git).
func CacheDir() (string, error) {
	if d := os.Getenv("SYNCORD_CACHE"); d != "" {
		return d, os.MkdirAll(d, 0o755)
	}
	top, err := repoRoot()
	if err != nil {
		return "", err
	}
	d := filepath.Join(top, ".cache", "e2e")
	return d, os.MkdirAll(d, 0o755)
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if d == filepath.Dir(d) {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
}

// lockFile takes an exclusive flock on path, serialising downloads between
// test processes that share the cache.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("flock %s: %w", path, err)
	}
	return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}

// KernelVersion resolves linux-image-amd64's dependency with apt-cache
// (no hard-coded version): "6.1.0-56-amd64". SYNCORD_E2E_KERNEL overrides.
func KernelVersion() (string, error) {
	if v := os.Getenv("SYNCORD_E2E_KERNEL"); v != "" {
		return v, nil
	}
	out, err := exec.Command("apt-cache", "depends", "linux-image-amd64").Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends linux-image-amd64: %v (run apt-get update; this needs Debian's apt)", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			return strings.TrimPrefix(f[1], "linux-image-"), nil
		}
	}
	return "", fmt.Errorf("apt-cache depends linux-image-amd64: no linux-image-* dependency in %q (run apt-get update)", out)
}

// FetchKernel downloads Debian's current linux-image-amd64 kernel package
// with apt-get and unpacks it into the cache, once: later calls find it
// there.
func FetchKernel() (*KernelInfo, error) {
	ver, err := KernelVersion()
	if err != nil {
		return nil, err
	}
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	unlock, err := lockFile(filepath.Join(cache, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	dir := filepath.Join(cache, "kernel-"+ver)
	k := &KernelInfo{
		Version:    ver,
		Vmlinuz:    filepath.Join(dir, "boot", "vmlinuz-"+ver),
		ModulesDir: filepath.Join(dir, "lib", "modules", ver),
	}
	if h := "/usr/src/linux-headers-" + ver; isDir(h) {
		k.HeadersDir = h
	}
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return k, nil
	}
	tmp, err := os.MkdirTemp(cache, "download-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	pkg := "linux-image-" + ver
	cmd := exec.Command("apt-get", "download", pkg)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("apt-get download %s: %v\n%s", pkg, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("apt-get download %s: expected one .deb in %s, found %d", pkg, tmp, len(debs))
	}
	os.RemoveAll(dir)
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], dir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("dpkg-deb -x %s: %v\n%s", debs[0], err, out)
	}
	if _, err := os.Stat(k.Vmlinuz); err != nil {
		return nil, fmt.Errorf("unpacked %s but %v", pkg, err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o644); err != nil {
		return nil, err
	}
	return k, nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// moduleIndex maps module names (with '-' as '_') to .ko paths under a
// kernel's modules dir, and knows which names are built in.
type moduleIndex struct {
	dir     string
	paths   map[string]string
	builtin map[string]bool
}

func normModName(s string) string { return strings.ReplaceAll(s, "-", "_") }

func loadModuleIndex(modulesDir string) (*moduleIndex, error) {
	idx := &moduleIndex{dir: modulesDir, paths: map[string]string{}, builtin: map[string]bool{}}
	err := filepath.WalkDir(filepath.Join(modulesDir, "kernel"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".ko") {
			idx.paths[normModName(strings.TrimSuffix(d.Name(), ".ko"))] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index modules in %s: %w", modulesDir, err)
	}
	if b, err := os.ReadFile(filepath.Join(modulesDir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			idx.builtin[normModName(strings.TrimSuffix(filepath.Base(l), ".ko"))] = true
		}
	}
	return idx, nil
}

// modinfoDepends reads the depends= field of a module's .modinfo section.
func modinfoDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("%s: no .modinfo section", path)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, err
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			var deps []string
			for _, d := range strings.Split(string(v), ",") {
				if d != "" {
					deps = append(deps, normModName(d))
				}
			}
			return deps, nil
		}
	}
	return nil, nil
}

// resolve returns the .ko paths to insmod, dependencies first, for the
// named modules (modprobe's order); built-in names are skipped.
func (idx *moduleIndex) resolve(names []string) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(n string, from string) error
	visit = func(n, from string) error {
		n = normModName(n)
		switch state[n] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("module dependency cycle at %s", n)
		}
		if idx.builtin[n] {
			state[n] = 2
			return nil
		}
		p, ok := idx.paths[n]
		if !ok {
			if from != "" {
				return fmt.Errorf("module %s (needed by %s) not found in %s", n, from, idx.dir)
			}
			return fmt.Errorf("module %s not found in %s and not built in", n, idx.dir)
		}
		state[n] = 1
		deps, err := modinfoDepends(p)
		if err != nil {
			return err
		}
		sort.Strings(deps)
		for _, d := range deps {
			if err := visit(d, n); err != nil {
				return err
			}
		}
		state[n] = 2
		order = append(order, p)
		return nil
	}
	for _, n := range names {
		if err := visit(n, ""); err != nil {
			return nil, err
		}
	}
	return order, nil
}
