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

// Guest paths of what the harness installs.
const (
	GuestSyncord     = boot.GuestSyncord
	GuestSyncordHost = boot.GuestSyncordHost
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
	if cfg.SynCord != nil {
		if len(cfg.Modules) > 0 {
			return fmt.Errorf("initramfs: modules %v asked for the SynCord kernel %s, whose drivers are built in; leave Modules empty", cfg.Modules, cfg.SynCord.Release)
		}
		k = &KernelInfo{Version: cfg.SynCord.Release, Vmlinuz: cfg.SynCord.Vmlinuz}
	}
	if k == nil {
		return fmt.Errorf("initramfs: no kernel given")
	}
	return boot.Initramfs{Kernel: k, Modules: cfg.Modules, Disks: len(cfg.Disks) > 0, Files: cfg.Files,
		Init: cfg.Init, Syncord: syncordBin, SyncordHost: hostBin}.Build(path)
}

// CommandLoop serves the harness's command channel; see boot.CommandLoop.
const CommandLoop = boot.CommandLoop

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
