package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Guest paths of what the harness installs.
const (
	GuestSyncord     = "/bin/syncord"
	GuestSyncordHost = "/bin/syncord-host"
)

var (
	binOnce          sync.Once
	binDir           string
	binErr           error
	syncordBin, hBin string
)

// Binaries builds the static syncord and syncord-host binaries from the
// current tree once per test process and returns their paths. Like every
// e2e entry point it skips the test unless SYNCORD_E2E=1.
func Binaries(t testing.TB) (syncord, syncordHost string) {
	t.Helper()
	skipUnlessEnabled(t)
	binOnce.Do(func() {
		top, err := repoRoot()
		if err != nil {
			binErr = err
			return
		}
		if binDir, binErr = os.MkdirTemp("", "sce2e-bin-"); binErr != nil {
			return
		}
		syncordBin = filepath.Join(binDir, "syncord")
		hBin = filepath.Join(binDir, "syncord-host")
		for out, pkg := range map[string]string{syncordBin: "./cmd/syncord", hBin: "./cmd/syncord-host"} {
			cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
			cmd.Dir = top
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if b, err := cmd.CombinedOutput(); err != nil {
				binErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
				return
			}
		}
	})
	if binErr != nil {
		t.Fatalf("e2e binaries: %v", binErr)
	}
	return syncordBin, hBin
}

// CleanupBinaries removes what Binaries built; TestMain calls it.
func CleanupBinaries() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// Initramfs builds the initramfs Boot would use for cfg into a temp file
// removed when the test ends, for tests that start QEMU themselves (for
// example through syncord-host vm). The guest it boots opens the command
// port if QEMU provides one and otherwise just runs cfg.Init and waits.
func Initramfs(t testing.TB, cfg Config) string {
	t.Helper()
	skipUnlessEnabled(t)
	cfg.defaults()
	if cfg.SynCord != nil && len(cfg.Modules) > 0 {
		t.Fatalf("e2e: Config.Modules %v with the SynCord kernel %s: its drivers are built in; leave Modules empty", cfg.Modules, cfg.SynCord.Release)
	}
	Binaries(t)
	var k *KernelInfo
	if cfg.SynCord == nil {
		k = Kernel(t)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "initramfs.cpio")
	if err := buildInitramfs(p, k, &cfg); err != nil {
		t.Fatal(err)
	}
	return p
}

func buildInitramfs(path string, k *KernelInfo, cfg *Config) error {
	if syncordBin == "" {
		return fmt.Errorf("initramfs: binaries not built (call e2e.Binaries first)")
	}
	return BuildInitramfs(path, k, *cfg, syncordBin, hBin)
}

// BuildInitramfs writes the guest initramfs for cfg to path, with the given
// static syncord and syncord-host binaries, outside of a test (the demo).
// With cfg.SynCord set, k is not used (it may be nil) and the initramfs
// carries no modules: the SynCord kernels have their drivers built in.
func BuildInitramfs(path string, k *KernelInfo, cfg Config, syncordBin, hostBin string) error {
	var release, modulesDir string
	var mods []string
	if cfg.SynCord != nil {
		if len(cfg.Modules) > 0 {
			return fmt.Errorf("initramfs: modules %v asked for the SynCord kernel %s, whose drivers are built in; leave Modules empty", cfg.Modules, cfg.SynCord.Release)
		}
		release = cfg.SynCord.Release
	} else {
		if k == nil {
			return fmt.Errorf("initramfs: no kernel given")
		}
		idx, err := loadModuleIndex(k.ModulesDir)
		if err != nil {
			return err
		}
		want := []string{"virtio_pci", "virtio_console"}
		if len(cfg.Disks) > 0 {
			want = append(want, "virtio_blk")
		}
		if mods, err = idx.resolve(append(want, cfg.Modules...)); err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		release, modulesDir = k.Version, k.ModulesDir
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	c := newCPIO(f)
	for _, d := range []string{"/dev", "/proc", "/sys", "/tmp", "/run", "/root", "/sbin", "/usr/bin", "/usr/sbin", "/var", "/mnt", "/etc/e2e"} {
		c.Dir(d)
	}
	c.CharDev("/dev/console", 5, 1)
	c.CharDev("/dev/null", 1, 3)
	c.CopyFile("/bin/busybox", "/bin/busybox")
	c.CopyFile(GuestSyncord, syncordBin)
	c.CopyFile(GuestSyncordHost, hostBin)
	var modList, modDep strings.Builder
	for _, m := range mods {
		rel, _ := filepath.Rel(modulesDir, m)
		guest := "/lib/modules/" + release + "/" + rel
		c.CopyFile(guest, m)
		modList.WriteString(guest + "\n")
		modDep.WriteString(rel + ":\n")
	}
	// A modules.dep so busybox modprobe finds what is here (deps are
	// loaded by init in order already).
	c.File("/lib/modules/"+release+"/modules.dep", 0o644, []byte(modDep.String()))
	c.File("/etc/e2e/modules", 0o644, []byte(modList.String()))
	c.File("/etc/e2e/init.sh", 0o644, []byte(cfg.Init+"\n"))
	c.File("/etc/e2e/loop.sh", 0o755, []byte(CommandLoop))
	for _, g := range sortedKeys(cfg.Files) {
		c.CopyFile(g, cfg.Files[g])
	}
	c.File("/init", 0o755, []byte(initScript))
	return c.Close()
}

// initScript is the guest's PID 1. It mounts the pseudo filesystems, loads
// the modules, runs the test's Init, then serves the command channel: a
// line "<id> <base64 shell>" runs the shell, and the reply is one line
// "@@E2E <id> <status> <base64 combined output>".
const initScript = `#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /dev/shm
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
hostname syncord-e2e
ip link set lo up 2>/dev/null
while read -r m; do insmod "$m" || echo "e2e: insmod $m failed" >/dev/console; done </etc/e2e/modules
echo "e2e: modules loaded" >/dev/console
cd /root
. /etc/e2e/init.sh
exec sh /etc/e2e/loop.sh
`

// CommandLoop serves the harness's command channel on the virtio port
// org.syncord.e2e: a line "<id> <base64 shell>" runs the shell (cwd /root),
// and the reply is one line "@@E2E <id> <status> <base64 combined output>".
// The initramfs's init execs it; a guest image runs it as a systemd
// service (see ImageFiles). Without the port it idles.
const CommandLoop = `#!/bin/sh
dev=
i=0
while [ -z "$dev" ] && [ $i -lt 300 ]; do
	for p in /sys/class/virtio-ports/*; do
		[ -e "$p/name" ] && [ "$(cat "$p/name")" = "org.syncord.e2e" ] && dev=/dev/${p##*/}
	done
	[ -n "$dev" ] && [ -e "$dev" ] && break
	dev=
	sleep 0.1
	i=$((i+1))
done
if [ -z "$dev" ]; then
	echo "e2e: no command port" >/dev/console
	while true; do sleep 3600; done
fi
mkdir -p /root /tmp
exec 3<>"$dev"
echo "e2e: command channel on $dev" >/dev/console
echo @@E2E-READY >&3
while read -r id b64 <&3; do
	echo "$b64" | base64 -d >/tmp/.e2e-cmd
	(cd /root && exec sh /tmp/.e2e-cmd) </dev/null >/tmp/.e2e-out 2>&1
	rc=$?
	echo "e2e: command $id exit $rc" >/dev/console
	printf '@@E2E %s %s %s\n' "$id" "$rc" "$(base64 /tmp/.e2e-out | tr -d '\n')" >&3
done
echo "e2e: command channel closed" >/dev/console
poweroff -f
`

// commandUnit runs CommandLoop in a guest image under systemd.
const commandUnit = `[Unit]
Description=syncord e2e command channel (test images only)
After=systemd-udevd.service

[Service]
ExecStart=/bin/sh /usr/local/sbin/syncord-e2e-loop
Restart=no

[Install]
WantedBy=multi-user.target
`

// ImageFiles writes the command loop and its unit into dir and returns the
// Files and Enable values for image.Options, so a test image answers
// vm.Run like the initramfs does.
func ImageFiles(dir string) (files map[string]string, enable []string, err error) {
	loop := filepath.Join(dir, "syncord-e2e-loop")
	unit := filepath.Join(dir, "syncord-e2e.service")
	if err := os.WriteFile(loop, []byte(CommandLoop), 0o755); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(unit, []byte(commandUnit), 0o644); err != nil {
		return nil, nil, err
	}
	return map[string]string{
		"/usr/local/sbin/syncord-e2e-loop":        loop,
		"/etc/systemd/system/syncord-e2e.service": unit,
	}, []string{"syncord-e2e.service"}, nil
}
