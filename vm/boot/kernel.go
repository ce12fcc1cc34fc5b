package boot

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Kernel is a bootable kernel and what came with it.
type Kernel struct {
	// Version is the kernel release (uname -r), e.g. 6.1.0-56-amd64.
	Version string
	// Vmlinuz is the bootable image (bzImage).
	Vmlinuz string
	// ModulesDir is lib/modules/<version> of the unpacked package, or ""
	// (a bare bzImage: its drivers must be built in).
	ModulesDir string
	// HeadersDir is the kernel's build tree for out-of-tree modules when
	// known (the installed linux-headers of Debian's kernel, or the
	// headers .deb unpacked beside the image), else "".
	HeadersDir string
}

// ErrNoKernel is wrapped when a kernel path holds nothing bootable.
var ErrNoKernel = errors.New("no bootable kernel")

// DefaultCacheDir is where kernels are unpacked: $SYNCORD_CACHE, else
// the user's cache dir /syncord/kernels.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("SYNCORD_CACHE"); d != "" {
		return d, os.MkdirAll(d, 0o755)
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("kernel cache: %w (set SYNCORD_CACHE)", err)
	}
	d := filepath.Join(dir, "syncord", "kernels")
	return d, os.MkdirAll(d, 0o755)
}

// LockFile takes an exclusive flock on path, serialising downloads and
// unpacking between processes that share a cache.
func LockFile(path string) (func(), error) {
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

// DebianVersion resolves linux-image-amd64's dependency with apt-cache
// (no hard-coded version): "6.1.0-56-amd64". SYNCORD_E2E_KERNEL overrides.
func DebianVersion() (string, error) {
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

// Debian downloads Debian's current linux-image-amd64 kernel package with
// apt-get and unpacks it into cache/kernel-<version>, once: later calls
// find it there.
func Debian(cache string) (*Kernel, error) {
	ver, err := DebianVersion()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	unlock, err := LockFile(filepath.Join(cache, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	dir := filepath.Join(cache, "kernel-"+ver)
	k := &Kernel{
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

// UnpackDebs unpacks kernel packages (a linux-image .deb and optionally
// its linux-headers .deb) with dpkg-deb -x into cache/deb-<digest>, once:
// the digest covers the packages' names, sizes and times, so a rebuilt
// kernel unpacks afresh.
func UnpackDebs(cache string, debs ...string) (*Kernel, error) {
	if len(debs) == 0 {
		return nil, fmt.Errorf("unpack kernel: no .deb given")
	}
	h := sha256.New()
	for _, p := range debs {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("unpack kernel: %w", err)
		}
		fmt.Fprintf(h, "%s %d %d\n", filepath.Base(p), fi.Size(), fi.ModTime().UnixNano())
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	unlock, err := LockFile(filepath.Join(cache, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	dir := filepath.Join(cache, "deb-"+hex.EncodeToString(h.Sum(nil))[:12])
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		os.RemoveAll(dir)
		for _, deb := range debs {
			if out, err := exec.Command("dpkg-deb", "-x", deb, dir).CombinedOutput(); err != nil {
				os.RemoveAll(dir)
				return nil, fmt.Errorf("dpkg-deb -x %s: %w\n%s (is it a Debian package? apt-get install dpkg)", deb, err, out)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o644); err != nil {
			return nil, err
		}
	}
	vm, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	if len(vm) != 1 {
		return nil, fmt.Errorf("%s: want one boot/vmlinuz-* in the package, found %d: %w", strings.Join(debs, ", "), len(vm), ErrNoKernel)
	}
	rel := strings.TrimPrefix(filepath.Base(vm[0]), "vmlinuz-")
	k := &Kernel{Version: rel, Vmlinuz: vm[0]}
	if md := filepath.Join(dir, "lib", "modules", rel); isDir(md) {
		k.ModulesDir = md
	}
	if hd := filepath.Join(dir, "usr", "src", "linux-headers-"+rel); isDir(hd) {
		k.HeadersDir = hd
	}
	return k, nil
}

// BzImage is a bare kernel image; its release is read from the image's
// setup header (kernel_version), and its drivers must be built in.
func BzImage(path string) (*Kernel, error) {
	rel, err := BzImageRelease(path)
	if err != nil {
		return nil, err
	}
	return &Kernel{Version: rel, Vmlinuz: path}, nil
}

// BzImageRelease reads the release from an x86 bzImage: the setup header
// at 0x202 says "HdrS", and the u16 at 0x20e points (+0x200) at the
// kernel_version string ("6.1.0-56-amd64 (debian-kernel@...) #1 ...").
func BzImageRelease(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read kernel image: %w", err)
	}
	defer f.Close()
	hdr := make([]byte, 0x210)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return "", fmt.Errorf("kernel image %s: %w: too short for a bzImage", path, ErrNoKernel)
	}
	if string(hdr[0x202:0x206]) != "HdrS" {
		return "", fmt.Errorf("kernel image %s: %w: no HdrS setup header (not an x86 bzImage)", path, ErrNoKernel)
	}
	off := int64(binary.LittleEndian.Uint16(hdr[0x20e:])) + 0x200
	buf := make([]byte, 256)
	n, _ := f.ReadAt(buf, off)
	s := string(buf[:n])
	if i := strings.IndexAny(s, " \x00"); i > 0 {
		return s[:i], nil
	}
	return "", fmt.Errorf("kernel image %s: no kernel_version string", path)
}

// Resolve turns a kernel name into a kernel: "debian" (Debian's current
// stock kernel, fetched into cache), a .deb (unpacked into cache, with its
// linux-headers .deb when it lies beside it), a directory holding one
// linux-image-*.deb (like ../shared/kernels/stock-syncord), or a bzImage.
func Resolve(name, cache string) (*Kernel, error) {
	if name == "debian" {
		return Debian(cache)
	}
	fi, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("kernel %q: %w (want debian, a bzImage, a linux-image .deb or a folder with one)", name, err)
	}
	switch {
	case fi.IsDir():
		img, _ := filepath.Glob(filepath.Join(name, "linux-image-*.deb"))
		if len(img) != 1 {
			return nil, fmt.Errorf("kernel folder %s: want one linux-image-*.deb, found %d: %w", name, len(img), ErrNoKernel)
		}
		return UnpackDebs(cache, withHeaders(img[0])...)
	case strings.HasSuffix(name, ".deb"):
		return UnpackDebs(cache, withHeaders(name)...)
	}
	return BzImage(name)
}

// withHeaders adds the linux-headers .deb of the same version beside an
// image .deb, when there is one.
func withHeaders(img string) []string {
	base := filepath.Base(img)
	if !strings.HasPrefix(base, "linux-image-") {
		return []string{img}
	}
	hdr := filepath.Join(filepath.Dir(img), "linux-headers-"+strings.TrimPrefix(base, "linux-image-"))
	if _, err := os.Stat(hdr); err == nil {
		return []string{img, hdr}
	}
	return []string{img}
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
