package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/syncord/syncord/vm/boot"
)

// KernelInfo is a bootable kernel (see boot.Kernel); Kernel returns
// Debian's current stock kernel unpacked into the cache.
type KernelInfo = boot.Kernel

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

// KernelVersion resolves linux-image-amd64's dependency with apt-cache;
// see boot.DebianVersion.
func KernelVersion() (string, error) { return boot.DebianVersion() }

// FetchKernel downloads Debian's current linux-image-amd64 kernel package
// with apt-get and unpacks it into the cache, once (boot.Debian).
func FetchKernel() (*KernelInfo, error) {
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	return boot.Debian(cache)
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
