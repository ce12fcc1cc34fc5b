package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/syncord/syncord/vm/image"
)

func init() {
	register(&command{Name: "image", Summary: "build a bootable Debian guest disk image with syncord and its agent unit", Run: runImage})
}

const imageHelp = `
Builds a raw ext4 disk image from Debian packages (mmdebstrap, then
mkfs.ext4 -d: no loop devices, no mounts) holding a minimal systemd system,
Debian's kernel and initramfs, the static syncord binaries in /usr/local/bin
and the agent's systemd unit, enabled. The kernel, initramfs and a manifest
are written beside the image (IMG.vmlinuz, IMG.initrd, IMG.json), so

    syncord-host vm --image IMG --sockets 2 --cores 2

boots it directly with root=/dev/vda. The bootstrapped base is cached (by
suite, package set and apt sources): a second build only re-copies syncord.
Root has no password on the serial console. Needs root, mmdebstrap and
e2fsprogs.

To use your own kernel (a SynCord kernel you built), give --kernel with its
bzImage and --modules with its lib/modules/<version> directory.`

func runImage(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "image", "image -o IMG [--size MB] [--packages P,...] [--kernel BZIMAGE --modules DIR] [--json]", imageHelp)
	var o image.Options
	out := fs.String("o", "syncord-guest.img", "image `file` to write")
	fs.IntVar(&o.SizeMB, "size", 2048, "filesystem size in `MiB`")
	fs.StringVar(&o.Suite, "suite", "", "Debian `suite` (default: this machine's codename)")
	pk := fs.String("packages", "", "extra packages to install, comma separated")
	self, _ := os.Executable()
	dir := filepath.Dir(self)
	fs.StringVar(&o.Syncord, "syncord", filepath.Join(dir, "syncord"), "static syncord `binary` to install")
	fs.StringVar(&o.SyncordHost, "syncord-host", self, "static syncord-host `binary` to install")
	fs.StringVar(&o.Unit, "unit", "", "agent systemd `unit` to install and enable (default: dist/syncord-agent.service when present)")
	fs.StringVar(&o.Kernel, "kernel", "", "your own kernel `bzImage` instead of Debian's")
	fs.StringVar(&o.ModulesDir, "modules", "", "its lib/modules/<version> `dir`")
	fs.StringVar(&o.CacheDir, "cache", "", "cache `dir` for bootstrapped trees (default ~/.cache/syncord/image)")
	fs.StringVar(&o.Sources, "sources", "", "apt sources `file` (default: this machine's)")
	asJSON := fs.Bool("json", false, "print the manifest as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	o.Output = *out
	if *pk != "" {
		o.ExtraPackages = strings.Split(*pk, ",")
	}
	if o.Unit == "" {
		if _, err := os.Stat("dist/syncord-agent.service"); err == nil {
			o.Unit = "dist/syncord-agent.service"
		}
	}
	o.Progress = env.Stderr
	m, err := image.Build(ctx, o)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(m)
	}
	fmt.Fprintf(env.Stdout, "image   %s (%d MiB)\nkernel  %s (%s)\ninitrd  %s\nappend  %s\nboot it: syncord-host vm --image %s\n",
		m.Image, m.SizeBytes>>20, m.Kernel, m.KernelVer, m.Initrd, m.Append, m.Image)
	return nil
}
