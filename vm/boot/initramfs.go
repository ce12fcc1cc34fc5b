package boot

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Guest paths of what the initramfs installs.
const (
	GuestSyncord     = "/bin/syncord"
	GuestSyncordHost = "/bin/syncord-host"
)

// BaseModules are loaded in every guest whose kernel has them as modules:
// the virtio-serial port the agent and the harness talk over.
var BaseModules = []string{"virtio_pci", "virtio_console"}

// AgentInit starts the agent on the virtio-serial port org.syncord.agent,
// as make demo and syncord-host experiment boot it.
const AgentInit = "syncord agent --listen virtio-serial://org.syncord.agent >/run/syncord-agent.log 2>&1 &"

// Initramfs describes a guest initramfs.
type Initramfs struct {
	// Kernel gives the release and the modules. With no ModulesDir (a
	// bare bzImage) no modules are added and Modules must be empty.
	Kernel *Kernel
	// Modules are loaded, with their dependencies, after BaseModules;
	// modules the kernel has built in are skipped.
	Modules []string
	// Disks adds virtio_blk.
	Disks bool
	// Files maps a guest path to a host file copied in.
	Files map[string]string
	// Init is shell run after setup (see InitScript).
	Init string
	// Syncord and SyncordHost are the static binaries to install;
	// SyncordHost may be empty.
	Syncord, SyncordHost string
}

// Build writes the initramfs to path.
func (c Initramfs) Build(path string) error {
	if c.Kernel == nil {
		return fmt.Errorf("initramfs: no kernel given")
	}
	if c.Syncord == "" {
		return fmt.Errorf("initramfs: no syncord binary given")
	}
	var mods []string
	if c.Kernel.ModulesDir != "" {
		idx, err := loadModuleIndex(c.Kernel.ModulesDir)
		if err != nil {
			return err
		}
		want := append([]string(nil), BaseModules...)
		if c.Disks {
			want = append(want, "virtio_blk")
		}
		if mods, err = idx.resolve(append(want, c.Modules...)); err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
	} else if len(c.Modules) > 0 {
		return fmt.Errorf("initramfs: modules %v asked for kernel %s, which came without modules (give its .deb, or build them in)", c.Modules, c.Kernel.Version)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := newCPIO(f)
	for _, d := range []string{"/dev", "/proc", "/sys", "/tmp", "/run", "/root", "/sbin", "/usr/bin", "/usr/sbin", "/var", "/mnt", "/etc/e2e"} {
		w.Dir(d)
	}
	w.CharDev("/dev/console", 5, 1)
	w.CharDev("/dev/null", 1, 3)
	w.CopyFile("/bin/busybox", "/bin/busybox")
	w.CopyFile(GuestSyncord, c.Syncord)
	if c.SyncordHost != "" {
		w.CopyFile(GuestSyncordHost, c.SyncordHost)
	}
	var modList, modDep strings.Builder
	for _, m := range mods {
		rel, _ := filepath.Rel(c.Kernel.ModulesDir, m)
		guest := "/lib/modules/" + c.Kernel.Version + "/" + rel
		w.CopyFile(guest, m)
		modList.WriteString(guest + "\n")
		modDep.WriteString(rel + ":\n")
	}
	// A modules.dep so busybox modprobe finds what is here (deps are
	// loaded by init in order already).
	w.File("/lib/modules/"+c.Kernel.Version+"/modules.dep", 0o644, []byte(modDep.String()))
	w.File("/etc/e2e/modules", 0o644, []byte(modList.String()))
	w.File("/etc/e2e/init.sh", 0o644, []byte(c.Init+"\n"))
	w.File("/etc/e2e/loop.sh", 0o755, []byte(CommandLoop))
	for _, g := range sortedKeys(c.Files) {
		w.CopyFile(g, c.Files[g])
	}
	w.File("/init", 0o755, []byte(InitScript))
	return w.Close()
}
