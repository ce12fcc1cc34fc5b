// Command mkinitramfs fetches Debian's stock kernel into the e2e cache and
// builds a guest initramfs holding busybox, the given static syncord
// binaries and the modules the agent needs, whose init starts the agent on
// the virtio-serial port org.syncord.agent. make demo uses it to boot a VM
// with syncord-host vm. It prints the kernel and initramfs paths as JSON.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/syncord/syncord/e2e"
)

func main() {
	out := flag.String("o", "initramfs.cpio", "initramfs to write")
	syncord := flag.String("syncord", "bin/syncord", "static syncord binary")
	host := flag.String("syncord-host", "bin/syncord-host", "static syncord-host binary")
	modules := flag.String("modules", "vsock_loopback,ext4", "extra modules to load in the guest (comma separated)")
	init := flag.String("init", "syncord agent --listen virtio-serial://org.syncord.agent >/run/syncord-agent.log 2>&1 &",
		"shell the guest runs after setup")
	flag.Parse()
	k, err := e2e.FetchKernel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkinitramfs:", err)
		os.Exit(1)
	}
	var mods []string
	for _, m := range strings.Split(*modules, ",") {
		if m = strings.TrimSpace(m); m != "" {
			mods = append(mods, m)
		}
	}
	cfg := e2e.Config{Modules: mods, Init: *init}
	if err := e2e.BuildInitramfs(*out, k, cfg, *syncord, *host); err != nil {
		fmt.Fprintln(os.Stderr, "mkinitramfs:", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(map[string]string{"kernel": k.Vmlinuz, "initrd": *out, "version": k.Version})
}
