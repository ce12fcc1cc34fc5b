package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/syncord/syncord/vm"
	"github.com/syncord/syncord/vm/image"
)

func init() {
	register(&command{Name: "vm", Summary: "start the NUMA guest under QEMU (one memory node per socket, QMP, agent port)", Run: runVM})
}

const vmHelp = `
Builds the QEMU command line for a guest of SOCKETS x CORES vCPUs with one
NUMA node (memory-backend-ram of --mem-per-node MiB) per socket, a QMP
monitor (for syncord-host pin), a virtio-serial port named
org.syncord.agent on a host unix socket (for syncord-host guest --serial),
and a vhost-vsock device when this host has /dev/vhost-vsock. --print shows
the command line; otherwise QEMU runs until the guest powers off, and
SIGINT/SIGTERM stop it. The QMP and serial sockets are removed when it
exits.

--host-nodes binds each guest node's memory to a host node (auto: the
nodes syncord-host pin --plan numa puts that socket's vCPUs on), so the
guest's NUMA distances are real; without it memory is wherever the host
puts it, as in the artifact.

--image IMG with IMG.json beside it (written by syncord-host image) boots
that manifest's kernel, initrd and command line with IMG as /dev/vda.

The artifact's VM:
    syncord-host vm --sockets 8 --cores 28 --mem-per-node 16384 --kvm \
        --image syncord.img --qmp tcp:127.0.0.1:5555`

func runVM(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "vm", "vm --sockets S --cores C --mem-per-node MB (--image IMG | --kernel K --initrd I) [--append ARGS] [--qmp PATH|tcp:127.0.0.1:PORT] [--vsock-cid N] [--serial PATH] [--console FILE] [--kvm] [--print [--json]]", vmHelp)
	var c vm.Config
	fs.IntVar(&c.Sockets, "sockets", vm.DefaultSockets, "guest sockets, one NUMA node each")
	fs.IntVar(&c.Cores, "cores", vm.DefaultCores, "cores per socket")
	fs.IntVar(&c.MemPerNodeMB, "mem-per-node", vm.DefaultMemPerNodeMB, "memory per NUMA node in `MiB`")
	fs.StringVar(&c.Image, "image", "", "disk `image` to boot (virtio-blk /dev/vda)")
	fs.StringVar(&c.Kernel, "kernel", "", "`bzImage` to boot directly")
	fs.StringVar(&c.Initrd, "initrd", "", "`initramfs` for --kernel")
	fs.StringVar(&c.Append, "append", "", "kernel command line (default \""+vm.DefaultAppend+"\")")
	fs.StringVar(&c.QMP, "qmp", "", "QMP monitor: socket `path` or tcp:127.0.0.1:PORT (default $TMPDIR/syncord-qmp.sock)")
	cid := fs.Uint("vsock-cid", vm.DefaultVsockCID, "guest vsock `CID` (used when /dev/vhost-vsock exists)")
	fs.StringVar(&c.SerialPath, "serial", "", "host unix `socket` of the agent port org.syncord.agent (default $TMPDIR/syncord-agent.sock)")
	fs.StringVar(&c.ConsoleLog, "console", "", "write the guest console to `file` (default: stdio)")
	kvm := fs.Bool("kvm", false, "use KVM (-accel kvm -cpu host) instead of TCG")
	var disks diskList
	fs.Var(&disks, "disk", "extra raw `disk` image (repeatable)")
	var extra diskList
	fs.Var(&extra, "qemu-arg", "extra QEMU `argument`, appended as is (repeatable: --qemu-arg -S)")
	hostNodes := fs.String("host-nodes", "", "bind guest node memory to host nodes: auto (the nodes pin --plan numa picks) or one node per socket, `0,1,...`")
	sysRoot := fs.String("sys-root", "/sys", "sysfs `root` for --host-nodes auto")
	fs.StringVar(&c.Binary, "qemu", vm.DefaultBinary, "QEMU `binary`")
	printOnly := fs.Bool("print", false, "print the QEMU command line and exit")
	asJSON := fs.Bool("json", false, "with --print: the command as a JSON array")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("vm: unexpected argument %q (see syncord-host help vm)", fs.Arg(0))
	}
	if *cid > 1<<32-1 {
		return fmt.Errorf("vm: vsock CID %d does not fit in 32 bits", *cid)
	}
	c.VsockCID = uint32(*cid)
	c.ExtraDisks = disks
	c.ExtraArgs = extra
	if *kvm {
		c.Accel = "kvm"
	}
	switch *hostNodes {
	case "":
	case "auto":
		host, err := vm.ReadHostTopology(*sysRoot)
		if err != nil {
			return fmt.Errorf("vm: --host-nodes auto: %v", err)
		}
		c.HostNodes = vm.HostNodesFor(c.Sockets, host)
	default:
		for _, f := range strings.Split(*hostNodes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return fmt.Errorf("vm: --host-nodes %q: want auto or node numbers separated by commas", *hostNodes)
			}
			c.HostNodes = append(c.HostNodes, n)
		}
	}
	if c.Image != "" && c.Kernel == "" {
		if m, err := image.ReadManifest(c.Image); err == nil {
			c.Kernel, c.Initrd = m.Kernel, m.Initrd
			if c.Append == "" {
				c.Append = m.Append
			}
		} else if _, serr := os.Stat(image.ManifestPath(c.Image)); serr == nil {
			return fmt.Errorf("vm: %v", err)
		}
	}
	if err := c.Validate(); err != nil {
		return err
	}
	cidSet := false
	fs.Visit(func(f *flag.Flag) { cidSet = cidSet || f.Name == "vsock-cid" })
	if cidSet && !c.HasVsock() {
		fmt.Fprintf(env.Stderr, "syncord-host vm: no /dev/vhost-vsock on this host, so no vsock device (modprobe vhost_vsock); use --serial\n")
	}
	cmd := c.Command()
	if *printOnly {
		if *asJSON {
			return json.NewEncoder(env.Stdout).Encode(map[string]any{"command": cmd})
		}
		_, err := fmt.Fprint(env.Stdout, vm.ShellCommand(cmd))
		return err
	}
	d := c.WithDefaults()
	// QEMU's stderr and ours go to one writer: serialise unless it is a
	// file, which QEMU then writes directly.
	stderr := env.Stderr
	if _, isFile := stderr.(*os.File); !isFile {
		stderr = &lockedWriter{w: stderr}
	}
	var p *vm.Process
	var err error
	if d.ConsoleLog == "" {
		p, err = vm.Start(c, os.Stdin, env.Stdout, stderr) // the console is ours
	} else {
		p, err = vm.Start(c, nil, env.Stdout, stderr)
	}
	if err != nil {
		return err
	}
	vsock := "none (no /dev/vhost-vsock)"
	if c.HasVsock() {
		vsock = fmt.Sprintf("guest CID %d", d.VsockCID)
	}
	fmt.Fprintf(stderr, "syncord-host vm: QEMU pid %d, %dx%d vCPUs, qmp %s, agent serial %s, vsock %s\n",
		p.PID(), d.Sockets, d.Cores, d.QMP, d.SerialPath, vsock)
	if err := p.Wait(ctx); err != nil {
		return err
	}
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "syncord-host vm: stopped QEMU pid %d\n", p.PID())
	}
	return nil
}

// diskList collects a repeatable string flag (--disk, --qemu-arg).
type diskList []string

func (m *diskList) String() string { return strings.Join(*m, ",") }
func (m *diskList) Set(v string) error {
	*m = append(*m, v)
	return nil
}

// lockedWriter serialises writes from QEMU's output copier and ours.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
