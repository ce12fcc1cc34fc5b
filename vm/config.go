package vm

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// AgentPortName is the name of the virtio-serial port the guest agent
// listens on (/sys/class/virtio-ports/vportNpM/name in the guest).
const AgentPortName = "org.syncord.agent"

// Defaults used for zero fields of Config.
const (
	DefaultBinary       = "qemu-system-x86_64"
	DefaultSockets      = 2
	DefaultCores        = 2
	DefaultMemPerNodeMB = 512
	DefaultAccel        = "tcg"
	DefaultAppend       = "console=ttyS0 panic=-1"
	DefaultVsockCID     = 3
	DefaultDevRoot      = "/dev"
)

// Config describes a SynCord NUMA guest: one memory-backed NUMA node per
// socket, a QMP monitor for vCPU pinning, a virtio-serial port for the
// agent and, when the host has /dev/vhost-vsock, a vsock device. The zero
// value of every field means its default (see the Default constants and
// the field comments).
type Config struct {
	Binary       string // QEMU binary; DefaultBinary
	Sockets      int    // guest sockets, one NUMA node each; DefaultSockets
	Cores        int    // cores per socket (threads=1); DefaultCores
	MemPerNodeMB int    // memory of each node in MiB; DefaultMemPerNodeMB

	// Boot a disk image (the first virtio-blk disk, /dev/vda; qcow2 by
	// extension, else raw) with its own bootloader, or a kernel and initrd
	// with a command line (DefaultAppend), or both: the kernel boots
	// directly with the image as its root disk (what vm/image builds).
	Image  string
	Kernel string
	Initrd string
	Append string

	// QMP is the monitor address: a unix socket path, "unix:PATH" or
	// "tcp:HOST:PORT" with a loopback HOST; RunDir/syncord-qmp.sock by
	// default.
	QMP string
	// VsockCID is the guest CID of the vhost-vsock device, added only when
	// DevRoot/vhost-vsock exists; DefaultVsockCID when zero.
	VsockCID uint32
	// SerialPath is the host unix socket (QEMU is the server) of the guest
	// port AgentPortName; RunDir/syncord-agent.sock by default.
	SerialPath string
	// ConsoleLog receives the guest's serial console (ttyS0); empty means
	// QEMU's stdio.
	ConsoleLog string
	// Accel is "tcg" (default, with -cpu max,hypervisor=off) or "kvm"
	// (with -cpu host). Under TCG the guest must not see the hypervisor
	// CPUID bit: without paravirt spinlocks Linux then takes
	// virt_spin_lock's test-and-set path and never enters the qspinlock
	// slow path, where SynCord's policies hook and where the contention
	// tracepoints fire.
	Accel string
	// HostNodes, when set, binds the memory of guest node i to host node
	// HostNodes[i] (memory-backend-ram host-nodes=N,policy=bind), so the
	// guest's NUMA distances are the host's; one entry per socket. Pair it
	// with syncord-host pin --plan numa, which puts guest socket i's vCPUs
	// on the same host node while the host has nodes enough.
	HostNodes []int
	// ExtraDisks are attached as raw virtio-blk disks after Image.
	ExtraDisks []string
	// ExtraArgs are appended to the command line unchanged.
	ExtraArgs []string

	// RunDir holds the default sockets; os.TempDir() when empty.
	RunDir string
	// DevRoot is where /dev/vhost-vsock is looked for; DefaultDevRoot when
	// empty (tests point it at a temporary tree).
	DevRoot string
}

// TCGCPU is the guest CPU model under TCG (see Config.Accel).
const TCGCPU = "max,hypervisor=off"

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Binary == "" {
		c.Binary = DefaultBinary
	}
	if c.Sockets == 0 {
		c.Sockets = DefaultSockets
	}
	if c.Cores == 0 {
		c.Cores = DefaultCores
	}
	if c.MemPerNodeMB == 0 {
		c.MemPerNodeMB = DefaultMemPerNodeMB
	}
	if c.Kernel != "" && c.Append == "" {
		c.Append = DefaultAppend
	}
	if c.RunDir == "" {
		c.RunDir = os.TempDir()
	}
	if c.QMP == "" {
		c.QMP = filepath.Join(c.RunDir, "syncord-qmp.sock")
	}
	if c.SerialPath == "" {
		c.SerialPath = filepath.Join(c.RunDir, "syncord-agent.sock")
	}
	if c.VsockCID == 0 {
		c.VsockCID = DefaultVsockCID
	}
	if c.Accel == "" {
		c.Accel = DefaultAccel
	}
	if c.DevRoot == "" {
		c.DevRoot = DefaultDevRoot
	}
	return c
}

// Validate reports the first field of c (after defaults) that QEMU would
// refuse or that this package will not set up.
func (c Config) Validate() error {
	d := c.WithDefaults()
	switch {
	case d.Sockets < 1:
		return fmt.Errorf("vm config: sockets must be >= 1, got %d", c.Sockets)
	case d.Cores < 1:
		return fmt.Errorf("vm config: cores per socket must be >= 1, got %d", c.Cores)
	case d.Sockets*d.Cores > 4096:
		return fmt.Errorf("vm config: %d sockets x %d cores is more vCPUs than QEMU supports", d.Sockets, d.Cores)
	case d.MemPerNodeMB < 1:
		return fmt.Errorf("vm config: memory per node must be >= 1 MiB, got %d", c.MemPerNodeMB)
	case d.Image == "" && d.Kernel == "":
		return fmt.Errorf("vm config: nothing to boot (give an image, or a kernel and initrd)")
	case d.Kernel == "" && (d.Initrd != "" || c.Append != ""):
		return fmt.Errorf("vm config: initrd and append need a kernel")
	case d.VsockCID < 3:
		return fmt.Errorf("vm config: vsock CID %d is reserved (guest CIDs start at 3)", d.VsockCID)
	case d.Accel != "tcg" && d.Accel != "kvm":
		return fmt.Errorf("vm config: accelerator %q is not tcg or kvm", d.Accel)
	}
	if len(d.HostNodes) > 0 && len(d.HostNodes) != d.Sockets {
		return fmt.Errorf("vm config: %d host nodes for %d guest nodes (give one per socket)", len(d.HostNodes), d.Sockets)
	}
	for _, n := range d.HostNodes {
		if n < 0 || n > 1023 {
			return fmt.Errorf("vm config: host node %d is out of range", n)
		}
	}
	if _, _, err := ParseMonitorAddr(d.QMP); err != nil {
		return fmt.Errorf("vm config: %w", err)
	}
	for _, p := range []string{d.SerialPath, d.ConsoleLog, d.Image, d.Kernel, d.Initrd} {
		if strings.Contains(p, ",") {
			return fmt.Errorf("vm config: path %q contains a comma, which QEMU option syntax cannot carry here", p)
		}
	}
	for _, p := range d.ExtraDisks {
		if strings.Contains(p, ",") {
			return fmt.Errorf("vm config: disk %q contains a comma, which QEMU option syntax cannot carry here", p)
		}
	}
	return nil
}

// HasVsock reports whether the vhost-vsock device is added: whether
// DevRoot/vhost-vsock exists on this host.
func (c Config) HasVsock() bool {
	d := c.WithDefaults()
	_, err := os.Stat(filepath.Join(d.DevRoot, "vhost-vsock"))
	return err == nil
}

// NodeCPUs returns the vCPU range "a-b" of guest NUMA node n (socket n).
func (c Config) NodeCPUs(n int) string {
	d := c.WithDefaults()
	lo := n * d.Cores
	hi := lo + d.Cores - 1
	if lo == hi {
		return strconv.Itoa(lo)
	}
	return fmt.Sprintf("%d-%d", lo, hi)
}

// Command returns the QEMU binary followed by Args.
func (c Config) Command() []string {
	return append([]string{c.WithDefaults().Binary}, c.Args()...)
}

// Args builds the QEMU arguments (without the binary) for c with defaults
// applied. It does not validate; call Validate first.
func (c Config) Args() []string {
	d := c.WithDefaults()
	a := []string{"-name", "syncord", "-nodefaults", "-nographic", "-no-reboot"}
	switch d.Accel {
	case "kvm":
		a = append(a, "-accel", "kvm", "-cpu", "host")
	default:
		a = append(a, "-accel", d.Accel, "-cpu", TCGCPU)
	}
	cpus := d.Sockets * d.Cores
	a = append(a,
		"-smp", fmt.Sprintf("cpus=%d,sockets=%d,cores=%d,threads=1", cpus, d.Sockets, d.Cores),
		"-m", fmt.Sprintf("%dM", d.Sockets*d.MemPerNodeMB))
	for n := 0; n < d.Sockets; n++ {
		bind := ""
		if n < len(d.HostNodes) {
			bind = fmt.Sprintf(",host-nodes=%d,policy=bind", d.HostNodes[n])
		}
		a = append(a,
			"-object", fmt.Sprintf("memory-backend-ram,id=mem%d,size=%dM%s", n, d.MemPerNodeMB, bind),
			"-numa", fmt.Sprintf("node,nodeid=%d,cpus=%s,memdev=mem%d", n, d.NodeCPUs(n), n))
	}
	a = append(a, "-qmp", qmpChardev(d.QMP))
	if c.HasVsock() {
		a = append(a, "-device", fmt.Sprintf("vhost-vsock-pci,id=vsock0,guest-cid=%d", d.VsockCID))
	}
	a = append(a,
		"-device", "virtio-serial-pci,id=vser0",
		"-chardev", fmt.Sprintf("socket,id=agent0,path=%s,server=on,wait=off", d.SerialPath),
		"-device", fmt.Sprintf("virtserialport,bus=vser0.0,chardev=agent0,name=%s", AgentPortName))
	if d.ConsoleLog != "" {
		a = append(a, "-serial", "file:"+d.ConsoleLog)
	} else {
		a = append(a, "-serial", "stdio")
	}
	if d.Image != "" {
		a = append(a, "-drive", fmt.Sprintf("file=%s,format=%s,if=virtio", d.Image, imageFormat(d.Image)))
	}
	for _, disk := range d.ExtraDisks {
		a = append(a, "-drive", fmt.Sprintf("file=%s,format=raw,if=virtio", disk))
	}
	if d.Kernel != "" {
		a = append(a, "-kernel", d.Kernel)
		if d.Initrd != "" {
			a = append(a, "-initrd", d.Initrd)
		}
		a = append(a, "-append", d.Append)
	}
	return append(a, d.ExtraArgs...)
}

func imageFormat(path string) string {
	if strings.EqualFold(filepath.Ext(path), ".qcow2") {
		return "qcow2"
	}
	return "raw"
}

// qmpChardev turns a monitor address (already validated) into the -qmp
// chardev string.
func qmpChardev(addr string) string {
	network, a, err := ParseMonitorAddr(addr)
	if err != nil {
		return "unix:" + addr + ",server=on,wait=off"
	}
	return network + ":" + a + ",server=on,wait=off"
}

// ParseMonitorAddr splits a QMP address into network and address: a bare
// path or "unix:PATH" is ("unix", PATH); "tcp:HOST:PORT" is ("tcp",
// "HOST:PORT") and HOST must be a loopback address or "localhost" (SynCord
// never exposes or reaches a monitor off this machine).
func ParseMonitorAddr(addr string) (network, address string, err error) {
	switch {
	case addr == "":
		return "", "", addrError(addr, nil, "QMP address is empty (give a socket path or tcp:127.0.0.1:PORT)")
	case strings.HasPrefix(addr, "unix:"):
		p := strings.TrimPrefix(addr, "unix:")
		if p == "" {
			return "", "", addrError(addr, nil, "QMP address %q has no path", addr)
		}
		return "unix", p, nil
	case strings.HasPrefix(addr, "tcp:"):
		hp := strings.TrimPrefix(addr, "tcp:")
		host, port, err := net.SplitHostPort(hp)
		if err != nil {
			return "", "", addrError(addr, err, "QMP address %q: %v (want tcp:127.0.0.1:PORT)", addr, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", "", addrError(addr, nil, "QMP address %q: bad port %q", addr, port)
		}
		if !isLoopbackHost(host) {
			return "", "", addrError(addr, ErrNotLoopback, "QMP address %q: host %q is not a loopback address (only 127.0.0.0/8, ::1 or localhost are allowed)", addr, host)
		}
		return "tcp", hp, nil
	case strings.Contains(addr, "://"):
		return "", "", addrError(addr, nil, "QMP address %q: unknown form (give a socket path, unix:PATH or tcp:127.0.0.1:PORT)", addr)
	}
	return "unix", addr, nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ErrNotLoopback means a QMP address names a host off this machine.
var ErrNotLoopback = errors.New("not a loopback address")

// AddrError is a QMP address ParseMonitorAddr refused. Err is the cause
// when there is one (ErrNotLoopback, net.SplitHostPort's error).
type AddrError struct {
	Addr string
	Err  error
	msg  string
}

func (e *AddrError) Error() string { return e.msg }
func (e *AddrError) Unwrap() error { return e.Err }

func addrError(addr string, cause error, format string, args ...any) error {
	return &AddrError{Addr: addr, Err: cause, msg: fmt.Sprintf(format, args...)}
}
