package image

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/syncord/syncord/internal/setting"
)

// BasePackages are installed in every image besides the variant's own.
// dbus lets systemd-logind run, which powers the guest off on the ACPI
// power button (QMP system_powerdown).
var BasePackages = []string{
	"systemd", "systemd-sysv", "udev", "dbus", "kmod", "e2fsprogs", "initramfs-tools",
	"linux-image-amd64", "iproute2", "procps",
}

// Options says what image to build. The zero value needs only Output,
// Syncord and SyncordHost.
type Options struct {
	// Output is the raw image to write; its kernel, initramfs and
	// manifest go beside it.
	Output string
	// SizeMB is the filesystem size (default 2048).
	SizeMB int
	// Suite is the Debian suite (default: this machine's codename).
	Suite string
	// ExtraPackages are installed besides BasePackages.
	ExtraPackages []string
	// Syncord and SyncordHost are the static binaries to install in
	// /usr/local/bin.
	Syncord, SyncordHost string
	// Unit is the agent's systemd unit, installed and enabled.
	Unit string
	// Kernel and ModulesDir replace Debian's kernel with one the user
	// built (a SynCord kernel): bzImage and its lib/modules/<version>.
	Kernel, ModulesDir string
	// Files maps an image path to a host file to copy in (mode kept).
	Files map[string]string
	// Enable lists extra unit names to enable (their files come in Files).
	Enable []string
	// CacheDir keeps the bootstrapped base trees (default
	// $XDG_CACHE_HOME/syncord/image).
	CacheDir string
	// Sources is an apt sources file (one-line or deb822) for mmdebstrap
	// (default: this machine's apt sources).
	Sources string
	// Progress receives one line per step (default: discarded).
	Progress io.Writer
}

// Manifest is written to <Output>.json: how to boot the image.
type Manifest struct {
	Image      string  `json:"image"`
	Kernel     string  `json:"kernel"`
	Initrd     string  `json:"initrd,omitempty"`
	Append     string  `json:"append"`
	KernelVer  string  `json:"kernel_version"`
	Suite      string  `json:"suite"`
	SizeBytes  int64   `json:"size_bytes"`
	BaseCached bool    `json:"base_cached"`
	BuildSecs  float64 `json:"build_seconds"`
}

// ManifestPath returns where Build writes the manifest of img.
func ManifestPath(img string) string { return img + ".json" }

// ReadManifest reads the manifest written beside img.
func ReadManifest(img string) (*Manifest, error) {
	b, err := os.ReadFile(ManifestPath(img))
	if err != nil {
		return nil, fmt.Errorf("read image manifest: %w (build the image with syncord-host image or make image)", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse %s: %w", ManifestPath(img), err)
	}
	return &m, nil
}

// Build builds the image.
func Build(ctx context.Context, o Options) (*Manifest, error) {
	start := time.Now()
	if err := o.defaults(); err != nil {
		return nil, err
	}
	for _, tool := range []string{"mmdebstrap", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s not found (apt-get install mmdebstrap e2fsprogs)", tool)
		}
	}
	for _, f := range []string{o.Syncord, o.SyncordHost} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("binary to install: %w (run make build)", err)
		}
	}
	base, cached, err := o.base(ctx)
	if err != nil {
		return nil, err
	}
	o.step("staging a copy of the base tree")
	if err := os.MkdirAll(filepath.Dir(o.Output), 0o755); err != nil {
		return nil, err
	}
	stage, err := os.MkdirTemp(filepath.Dir(o.Output), ".image-stage-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage)
	if err := run(ctx, "cp", "-a", base+"/.", stage); err != nil {
		return nil, err
	}
	kver, err := o.customize(ctx, stage)
	if err != nil {
		return nil, err
	}
	m := &Manifest{Image: o.Output, Suite: o.Suite, KernelVer: kver, BaseCached: cached,
		Append: "root=/dev/vda rw console=ttyS0 net.ifnames=0"}
	m.Kernel = o.Output + ".vmlinuz"
	if o.Kernel != "" {
		if err := copyFile(o.Kernel, m.Kernel, 0o644); err != nil {
			return nil, err
		}
	} else if err := copyFile(filepath.Join(stage, "boot", "vmlinuz-"+kver), m.Kernel, 0o644); err != nil {
		return nil, err
	}
	if initrd := filepath.Join(stage, "boot", "initrd.img-"+kver); exists(initrd) {
		m.Initrd = o.Output + ".initrd"
		if err := copyFile(initrd, m.Initrd, 0o644); err != nil {
			return nil, err
		}
	}
	o.step(fmt.Sprintf("writing %d MiB ext4 filesystem to %s (mkfs.ext4 -d)", o.SizeMB, o.Output))
	tmp := o.Output + ".tmp"
	os.Remove(tmp)
	if err := run(ctx, "mkfs.ext4", "-q", "-F", "-L", "syncord-root", "-d", stage, tmp, fmt.Sprintf("%dM", o.SizeMB)); err != nil {
		os.Remove(tmp)
		return nil, setting.Errorf("%w (is {SizeMB} large enough for the tree?)", err)
	}
	if err := os.Rename(tmp, o.Output); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(o.Output); err == nil {
		m.SizeBytes = fi.Size()
	}
	m.BuildSecs = time.Since(start).Seconds()
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(ManifestPath(o.Output), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	o.step(fmt.Sprintf("done in %.1fs: %s (kernel %s)", m.BuildSecs, o.Output, kver))
	return m, nil
}

// MaxSizeMB bounds Options.SizeMB: 16 TiB, the largest ext4 file system
// with 4 KiB blocks and 32-bit block numbers (mkfs.ext4's default here).
const MaxSizeMB = 16 << 20

func (o *Options) defaults() error {
	if o.Output == "" {
		return errors.New("no output image given")
	}
	abs, err := filepath.Abs(o.Output)
	if err != nil {
		return err
	}
	o.Output = abs
	if o.SizeMB == 0 {
		o.SizeMB = 2048
	}
	if o.SizeMB < 512 {
		return fmt.Errorf("image size %d MiB is too small for a Debian system with a kernel (use at least 512)", o.SizeMB)
	}
	if o.SizeMB > MaxSizeMB {
		return fmt.Errorf("image size %d MiB is larger than %d MiB (16 TiB, the most an ext4 image with 4 KiB blocks holds); give a size in MiB such as 2048", o.SizeMB, MaxSizeMB)
	}
	if o.Suite == "" {
		o.Suite = hostCodename()
		if o.Suite == "" {
			return setting.Errorf("cannot tell this machine's Debian codename from /etc/os-release; give {Suite}")
		}
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.CacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return err
		}
		o.CacheDir = filepath.Join(dir, "syncord", "image")
	}
	if o.Sources == "" {
		o.Sources = hostSources()
		if o.Sources == "" {
			return setting.Errorf("no apt sources found in /etc/apt (give {Sources} FILE)")
		}
	}
	if (o.Kernel == "") != (o.ModulesDir == "") {
		return setting.Invalid("a custom kernel needs both {Kernel} BZIMAGE and {ModulesDir} DIR (its lib/modules/<version>)")
	}
	return nil
}

func (o *Options) step(s string) { fmt.Fprintf(o.Progress, "image: %s\n", s) }

func (o *Options) packages() []string {
	seen := map[string]bool{}
	var pk []string
	for _, p := range append(append([]string{}, BasePackages...), o.ExtraPackages...) {
		if o.Kernel != "" && p == "linux-image-amd64" {
			continue
		}
		if p != "" && !seen[p] {
			seen[p] = true
			pk = append(pk, p)
		}
	}
	sort.Strings(pk)
	return pk
}

// base returns the bootstrapped tree for the suite, packages and sources,
// running mmdebstrap only when the cache has none.
func (o *Options) base(ctx context.Context) (string, bool, error) {
	src, err := os.ReadFile(o.Sources)
	if err != nil {
		return "", false, fmt.Errorf("read apt sources: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s", o.Suite, strings.Join(o.packages(), ","), src)
	key := hex.EncodeToString(h.Sum(nil))[:16]
	dir := filepath.Join(o.CacheDir, "base-"+o.Suite+"-"+key)
	if exists(filepath.Join(dir, ".complete")) {
		o.step("using cached base tree " + dir)
		return dir, true, o.prepareBase(ctx, dir)
	}
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return "", false, err
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	o.step(fmt.Sprintf("bootstrapping Debian %s with mmdebstrap (%d packages; a few minutes, cached afterwards)", o.Suite, len(o.packages())))
	args := []string{"--variant=minbase", "--mode=root", "--include=" + strings.Join(o.packages(), ","),
		"--components=main", o.Suite, tmp, o.Sources}
	cmd := exec.CommandContext(ctx, "mmdebstrap", args...)
	// On cancel, interrupt: mmdebstrap then unmounts what it mounted in
	// the chroot; SIGKILL would leave /proc, /sys and /dev mounts behind.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		unmountUnder(tmp)
		os.RemoveAll(tmp)
		return "", false, fmt.Errorf("mmdebstrap %s: %v\n%s", strings.Join(args, " "), err, tail(out, 20))
	}
	if err := o.prepareBase(ctx, tmp); err != nil {
		return "", false, err
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		return "", false, err
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", false, err
	}
	return dir, false, nil
}

// baseVersion names the post-bootstrap preparation below; a cached tree
// without its marker is prepared again.
const baseVersion = ".syncord-base-v1"

// initramfsModules is all the guest's initramfs needs to mount its root:
// virtio-blk on PCI and ext4. Debian's default (MODULES=most) makes a 36
// MB initramfs that takes long to unpack under TCG.
const initramfsModules = "virtio_pci\nvirtio_blk\next4\n"

// prepareBase shrinks the bootstrapped tree once: no documentation, and an
// initramfs with just the modules above.
func (o *Options) prepareBase(ctx context.Context, root string) error {
	if exists(filepath.Join(root, baseVersion)) {
		return nil
	}
	o.step("preparing the base tree: small initramfs, no documentation")
	for _, d := range []string{"usr/share/doc", "usr/share/man", "usr/share/info"} {
		os.RemoveAll(filepath.Join(root, d))
	}
	if o.Kernel == "" {
		conf := filepath.Join(root, "etc/initramfs-tools/conf.d/syncord")
		if err := os.WriteFile(conf, []byte("MODULES=list\nCOMPRESS=gzip\n"), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(root, "etc/initramfs-tools/modules"), []byte(initramfsModules), 0o644); err != nil {
			return err
		}
		if err := run(ctx, "chroot", root, "update-initramfs", "-u", "-k", "all"); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(root, baseVersion), nil, 0o644)
}

// maskedUnits are not started in the guest.
var maskedUnits = []string{"getty-static.service", "getty@tty1.service", "autovt@.service",
	"e2scrub_reap.service", "e2scrub_all.timer", "apt-daily.timer", "apt-daily-upgrade.timer"}

// customize installs syncord into the staged tree and returns the kernel
// version the image boots.
func (o *Options) customize(ctx context.Context, root string) (string, error) {
	o.step("installing syncord, the agent unit and guest configuration")
	install := map[string]string{
		"/usr/local/bin/syncord":      o.Syncord,
		"/usr/local/bin/syncord-host": o.SyncordHost,
	}
	for g, h := range o.Files {
		install[g] = h
	}
	for g, h := range install {
		fi, err := os.Stat(h)
		if err != nil {
			return "", fmt.Errorf("file for %s: %w", g, err)
		}
		if err := copyFile(h, filepath.Join(root, g), fi.Mode().Perm()); err != nil {
			return "", err
		}
	}
	enable := append([]string{}, o.Enable...)
	if o.Unit != "" {
		name := filepath.Base(o.Unit)
		if err := copyFile(o.Unit, filepath.Join(root, "etc/systemd/system", name), 0o644); err != nil {
			return "", err
		}
		enable = append(enable, name)
	}
	for _, u := range enable {
		link := filepath.Join(root, "etc/systemd/system/multi-user.target.wants", u)
		os.MkdirAll(filepath.Dir(link), 0o755)
		os.Remove(link)
		if err := os.Symlink("/etc/systemd/system/"+u, link); err != nil {
			return "", err
		}
	}
	writes := map[string]string{
		"etc/fstab":                       "/dev/vda / ext4 rw,errors=remount-ro 0 1\n",
		"etc/hostname":                    "syncord-guest\n",
		"etc/hosts":                       "127.0.0.1 localhost\n127.0.1.1 syncord-guest\n",
		"etc/modules-load.d/syncord.conf": "# vsock for the agent where the kernel has it (not on SynCord 5.4 kernels)\nvsock_loopback\n",
	}
	for p, c := range writes {
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
			return "", err
		}
	}
	// systemd mounts bpffs (/sys/fs/bpf) and tracefs itself. Units that
	// only cost boot time in a headless guest are masked: gettys on
	// virtual terminals (the console is ttyS0) and ext4 scrubbing.
	for _, u := range maskedUnits {
		p := filepath.Join(root, "etc/systemd/system", u)
		os.Remove(p)
		if err := os.Symlink("/dev/null", p); err != nil {
			return "", err
		}
	}
	// Passwordless root on the serial console of a local research VM.
	if err := editShadowRoot(filepath.Join(root, "etc/shadow")); err != nil {
		return "", err
	}
	if o.Kernel != "" {
		ver := filepath.Base(filepath.Clean(o.ModulesDir))
		dst := filepath.Join(root, "lib/modules", ver)
		os.RemoveAll(dst)
		os.MkdirAll(filepath.Dir(dst), 0o755)
		if err := run(ctx, "cp", "-a", o.ModulesDir, dst); err != nil {
			return "", err
		}
		o.step("running depmod and update-initramfs for kernel " + ver)
		if err := run(ctx, "chroot", root, "depmod", ver); err != nil {
			return "", err
		}
		conf := filepath.Join(root, "etc/initramfs-tools/conf.d/syncord")
		os.WriteFile(conf, []byte("MODULES=list\nCOMPRESS=gzip\n"), 0o644)
		os.WriteFile(filepath.Join(root, "etc/initramfs-tools/modules"), []byte(initramfsModules), 0o644)
		if err := run(ctx, "chroot", root, "update-initramfs", "-c", "-k", ver); err != nil {
			o.step("update-initramfs failed; the kernel must then boot without an initramfs: " + err.Error())
		}
		return ver, nil
	}
	vers, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(vers) == 0 {
		return "", errors.New("no kernel in the bootstrapped tree (is linux-image-amd64 in the packages?)")
	}
	sort.Strings(vers)
	return strings.TrimPrefix(filepath.Base(vers[len(vers)-1]), "vmlinuz-"), nil
}

func editShadowRoot(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 && f[0] == "root" {
			lines[i] = "root::" + f[2]
		}
	}
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o640)
}

// unmountUnder lazily unmounts every mount below dir, deepest first, so a
// failed or killed bootstrap leaves no chroot mounts and RemoveAll does not
// descend into /proc or /sys.
// Paths in /proc/self/mountinfo are octal-escaped (a space is \040):
// moby/sys/mountinfo undoes that, so a dir with a space matches too.
func unmountUnder(dir string) {
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return
	}
	var mounts []string
	for _, m := range infos {
		mounts = append(mounts, m.Mountpoint)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
	for _, m := range mounts {
		unix.Unmount(m, unix.MNT_DETACH)
	}
}

func hostCodename() string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VERSION_CODENAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// hostSources returns this machine's apt sources file: a deb822 .sources
// file in sources.list.d, or sources.list.
func hostSources() string {
	if m, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources"); len(m) > 0 {
		sort.Strings(m)
		return m[0]
	}
	if fi, err := os.Stat("/etc/apt/sources.list"); err == nil && fi.Size() > 0 {
		return "/etc/apt/sources.list"
	}
	return ""
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(out, 20))
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
