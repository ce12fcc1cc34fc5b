package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/syncord/syncord/vm/boot"
)

// SynCord kernel branches in the kernels folder (see KernelsDir).
const (
	StockSynCord    = "stock-syncord"
	ShfllockSynCord = "shfllock-syncord"
	CNASynCord      = "cna-syncord"
)

// SynCordKernel is one of the real SynCord kernels, unpacked into the cache.
type SynCordKernel struct {
	Branch  string // "stock-syncord"
	Release string // uname -r, e.g. "5.4.0-stock-syncord"
	Vmlinuz string // bootable bzImage
	KDIR    string // extracted headers: .../usr/src/linux-headers-<release>
}

// KernelsDir is the folder of the real SynCord kernels: $SYNCORD_KERNELS,
// or ../shared/kernels beside the repository's root (where CI and every
// developer have it). It is not checked to exist.
func KernelsDir() (string, error) {
	if d := os.Getenv("SYNCORD_KERNELS"); d != "" {
		return d, nil
	}
	top, err := repoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(top), "shared", "kernels"), nil
}

var (
	synMu      sync.Mutex
	synKernels = map[string]*SynCordKernel{}
)

// SynCordKernelFor unpacks (dpkg-deb -x, once, under CacheDir() with the existing lockFile/.complete pattern) the image and headers .deb of branch and returns it. It skips the test with a clear reason and remedy when e2e is disabled, when the kernels folder or that branch is missing, or when gcc-11 is missing ("apt-get install gcc-11").
func SynCordKernelFor(t testing.TB, branch string) *SynCordKernel {
	t.Helper()
	skipUnlessEnabled(t)
	kdir, err := KernelsDir()
	if err != nil {
		t.Fatalf("syncord kernels: %v", err)
	}
	if !isDir(kdir) {
		t.Skipf("skipping: no SynCord kernels folder %s (CI has ../shared/kernels beside the repository; elsewhere set SYNCORD_KERNELS=DIR)", kdir)
	}
	bdir := filepath.Join(kdir, branch)
	if !isDir(bdir) {
		t.Skipf("skipping: no %s kernel in %s (expected %s/linux-image-*.deb and linux-headers-*.deb)", branch, kdir, bdir)
	}
	if _, err := exec.LookPath("gcc-11"); err != nil {
		t.Skipf("skipping: gcc-11 not installed; the SynCord kernels' modules are built with it (apt-get install gcc-11)")
	}
	synMu.Lock()
	defer synMu.Unlock()
	if k := synKernels[branch]; k != nil {
		return k
	}
	k, err := unpackSynCord(bdir, branch)
	if err != nil {
		t.Fatalf("syncord kernel %s: %v", branch, err)
	}
	synKernels[branch] = k
	return k
}

// oneDeb finds the single dir/<prefix>*.deb.
func oneDeb(dir, prefix string) (string, error) {
	m, err := filepath.Glob(filepath.Join(dir, prefix+"*.deb"))
	if err != nil {
		return "", err
	}
	if len(m) != 1 {
		return "", fmt.Errorf("want one %s*.deb in %s, found %d", prefix, dir, len(m))
	}
	return m[0], nil
}

// unpackSynCord extracts the image and headers packages of bdir into the
// cache once (boot.UnpackDebs: keyed by the packages' names, sizes and
// times, so a rebuilt kernel unpacks afresh).
func unpackSynCord(bdir, branch string) (*SynCordKernel, error) {
	img, err := oneDeb(bdir, "linux-image-")
	if err != nil {
		return nil, err
	}
	hdr, err := oneDeb(bdir, "linux-headers-")
	if err != nil {
		return nil, err
	}
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	bk, err := boot.UnpackDebs(cache, img, hdr)
	if err != nil {
		return nil, err
	}
	k := &SynCordKernel{Branch: branch, Release: bk.Version, Vmlinuz: bk.Vmlinuz, KDIR: bk.HeadersDir}
	if _, err := os.Stat(filepath.Join(k.KDIR, "Makefile")); k.KDIR == "" || err != nil {
		return nil, fmt.Errorf("%s: no headers tree for %s in the package", filepath.Base(hdr), k.Release)
	}
	return k, nil
}

// BuildModuleFor copies the files of srcDir (a Kbuild/Makefile + C files) into a temp dir, runs
// make -C k.KDIR M=<tmp> CC=gcc-11 HOSTCC=gcc-11 modules, and returns the temp dir (fails the test with the build output on error).
func BuildModuleFor(t testing.TB, k *SynCordKernel, srcDir string) string {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("skipping: make not installed (apt-get install make)")
	}
	dir := t.TempDir()
	ents, err := os.ReadDir(srcDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(srcDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("make", "-C", k.KDIR, "M="+dir, "CC=gcc-11", "HOSTCC=gcc-11", "modules")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("build %s against %s (%s): %v\n%s", srcDir, k.KDIR, k.Release, err, out)
	}
	return dir
}
