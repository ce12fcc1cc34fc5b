package e2e

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/syncord/syncord/vm/image"
)

// Port names of the guest's virtio-serial ports.
const (
	// CommandPort carries the harness's command channel.
	CommandPort = "org.syncord.e2e"
	// AgentPort is left for the syncord agent (virtio-serial://org.syncord.agent).
	AgentPort = "org.syncord.agent"
)

// Config describes one VM. The zero value boots 2 sockets x 2 cores with
// 256 MiB per node.
type Config struct {
	// Sockets x Cores x Threads vCPUs; Threads defaults to 1 (no SMT).
	Sockets, Cores, Threads int
	MemPerNodeMB            int
	// Modules are loaded in the guest, with their dependencies, before
	// Init runs (virtio_pci and virtio_console always are).
	Modules []string
	// Disks are raw images attached as virtio-blk, /dev/vda first.
	Disks []string
	// Files maps a guest path to a host file copied into the initramfs.
	Files map[string]string
	// Init is shell run in the guest after setup, before the command loop.
	Init string
	// Append is added to the kernel command line.
	Append string
	// BootTimeout bounds the time to the first command (default 180 s).
	BootTimeout time.Duration
	// KVM uses -accel kvm instead of tcg.
	KVM bool
	// ExtraArgs are appended to the QEMU command line.
	ExtraArgs []string
	// Image boots a disk image built by vm/image (its manifest gives the
	// kernel, initramfs and command line) instead of the initramfs; it is
	// attached first (/dev/vda) with snapshot=on, so the image is not
	// changed. The image must run CommandLoop (see ImageFiles).
	Image string
	// SynCord boots that real SynCord kernel (see SynCordKernelFor)
	// instead of Debian's. Its virtio drivers and ext4 are built in, so
	// the initramfs carries no modules and Modules must be empty.
	SynCord *SynCordKernel
}

func (c *Config) defaults() {
	if c.Sockets <= 0 {
		c.Sockets = 2
	}
	if c.Cores <= 0 {
		c.Cores = 2
	}
	if c.Threads <= 0 {
		c.Threads = 1
	}
	if c.MemPerNodeMB <= 0 {
		c.MemPerNodeMB = 256
	}
	if c.BootTimeout <= 0 {
		c.BootTimeout = 180 * time.Second
	}
}

// Enabled reports whether e2e tests run (SYNCORD_E2E=1).
func Enabled() bool { return os.Getenv("SYNCORD_E2E") == "1" }

func skipUnlessEnabled(t testing.TB) {
	t.Helper()
	if !Enabled() {
		t.Skip("skipping: e2e tests boot a VM under QEMU; run them with SYNCORD_E2E=1 (make e2e)")
	}
}

// VM is a booted guest.
type VM struct {
	cfg      Config
	dir      string
	cmd      *exec.Cmd
	console  string
	qmp      string
	agent    string
	conn     net.Conn
	rd       *bufio.Reader
	mu       sync.Mutex
	seq      int
	exited   chan struct{}
	exitErr  error
	BootTime time.Duration
}

// Boot starts a VM with cfg and waits until its command channel answers.
// QEMU is killed and the VM's temp dir removed when the test ends; the
// console log of a failed test is copied to e2e/logs and its tail printed.
func Boot(t testing.TB, cfg Config) *VM {
	t.Helper()
	skipUnlessEnabled(t)
	cfg.defaults()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 not found (apt-get install qemu-system-x86)")
	}
	if cfg.SynCord != nil && len(cfg.Modules) > 0 {
		t.Fatalf("e2e: Config.Modules %v with the SynCord kernel %s: its drivers are built in and the initramfs carries no modules; leave Modules empty", cfg.Modules, cfg.SynCord.Release)
	}
	if cfg.SynCord != nil && cfg.Image != "" {
		t.Fatalf("e2e: Config.Image and Config.SynCord both set; the image's manifest names its own kernel")
	}
	Binaries(t)
	var kernel, release string
	var k *KernelInfo
	if cfg.SynCord != nil {
		kernel, release = cfg.SynCord.Vmlinuz, cfg.SynCord.Release
	} else {
		k = Kernel(t)
		kernel, release = k.Vmlinuz, k.Version
	}
	// Unix socket paths must stay under 108 bytes: a short temp dir.
	dir, err := os.MkdirTemp("", "sce2e-")
	if err != nil {
		t.Fatal(err)
	}
	vm := &VM{cfg: cfg, dir: dir, console: filepath.Join(dir, "console.log"),
		qmp: filepath.Join(dir, "qmp.sock"), agent: filepath.Join(dir, "agent.sock"),
		exited: make(chan struct{})}
	t.Cleanup(func() { vm.shutdown(t) })

	initrd, appendLine := filepath.Join(dir, "initramfs.cpio"), "rdinit=/init"
	if cfg.Image != "" {
		m, err := image.ReadManifest(cfg.Image)
		if err != nil {
			t.Fatal(err)
		}
		kernel, initrd, appendLine = m.Kernel, m.Initrd, m.Append
	} else if err := buildInitramfs(initrd, k, &cfg); err != nil {
		t.Fatal(err)
	}
	cmdSock := filepath.Join(dir, "cmd.sock")
	ln, err := net.Listen("unix", cmdSock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	args := qemuArgs(&cfg, kernel, initrd, appendLine, vm.console, vm.qmp, cmdSock, vm.agent)
	vm.cmd = exec.Command("qemu-system-x86_64", args...)
	vm.cmd.Stdout, vm.cmd.Stderr = nil, nil
	qlog, err := os.Create(filepath.Join(dir, "qemu.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer qlog.Close()
	vm.cmd.Stdout, vm.cmd.Stderr = qlog, qlog
	// QEMU dies with the test binary, whatever kills it.
	vm.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := vm.cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	go func() { vm.exitErr = vm.cmd.Wait(); close(vm.exited) }()

	// QEMU connects to our listener when the guest port is set up.
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := ln.Accept(); ch <- res{c, err} }()
	deadline := time.NewTimer(cfg.BootTimeout)
	defer deadline.Stop()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("accept command channel: %v", r.err)
		}
		vm.conn = r.c
	case <-vm.exited:
		t.Fatalf("qemu exited before connecting: %v\n%s", vm.exitErr, vm.tail(40))
	case <-deadline.C:
		t.Fatalf("qemu did not connect within %v\n%s", cfg.BootTimeout, vm.tail(40))
	}
	vm.rd = bufio.NewReaderSize(vm.conn, 1<<20)
	// The guest says READY once init has opened its end of the port.
	vm.conn.SetReadDeadline(time.Now().Add(time.Until(start.Add(cfg.BootTimeout))))
	for {
		line, err := vm.rd.ReadString('\n')
		if err != nil {
			t.Fatalf("waiting for the guest to come up: %v\n%s", err, vm.tail(60))
		}
		if strings.TrimSpace(line) == "@@E2E-READY" {
			break
		}
	}
	vm.conn.SetReadDeadline(time.Time{})
	vm.BootTime = time.Since(start)
	t.Logf("e2e: %dx%dx%d VM up in %v (kernel %s)", cfg.Sockets, cfg.Cores, cfg.Threads, vm.BootTime.Round(time.Millisecond), release)
	return vm
}

func qemuArgs(cfg *Config, kernel, initrd, appendLine, console, qmp, cmdSock, agentSock string) []string {
	accel := "tcg"
	if cfg.KVM {
		accel = "kvm"
	}
	// No hypervisor CPUID bit (see vm.TCGCPU): spinlocks then take the
	// native qspinlock slow path. TCG's max CPU is AuthenticAMD without
	// topoext, so Linux sees no thread siblings; with the Intel vendor it
	// reads CPUID leaf 0xB.
	cpu := "max,hypervisor=off"
	if cfg.Threads > 1 {
		cpu = "max,vendor=GenuineIntel,hypervisor=off"
	}
	per := cfg.Cores * cfg.Threads
	n := cfg.Sockets * per
	args := []string{
		"-accel", accel, "-cpu", cpu, "-nodefaults", "-display", "none", "-no-reboot",
		"-m", strconv.Itoa(cfg.MemPerNodeMB*cfg.Sockets) + "M",
		"-smp", fmt.Sprintf("cpus=%d,sockets=%d,cores=%d,threads=%d", n, cfg.Sockets, cfg.Cores, cfg.Threads),
	}
	for s := 0; s < cfg.Sockets; s++ {
		args = append(args,
			"-object", fmt.Sprintf("memory-backend-ram,id=mem%d,size=%dM", s, cfg.MemPerNodeMB),
			"-numa", fmt.Sprintf("node,nodeid=%d,cpus=%d-%d,memdev=mem%d", s, s*per, (s+1)*per-1, s))
	}
	args = append(args,
		"-kernel", kernel,
		// no_timer_check: on a loaded host a TCG guest's timer IRQ can
		// miss the kernel's boot-time check, which then panics with
		// "IO-APIC + timer doesn't work!" (seen on the SynCord 5.4
		// kernels at load 25 on 2 cores); KVM guests skip it the same way.
		"-append", strings.TrimSpace("console=ttyS0 panic=-1 loglevel=4 no_timer_check "+appendLine+" "+cfg.Append),
		"-serial", "file:"+console,
		"-qmp", "unix:"+qmp+",server=on,wait=off",
		"-device", "virtio-serial-pci,id=vser0",
		"-chardev", "socket,id=e2ecmd,path="+cmdSock,
		"-device", "virtserialport,bus=vser0.0,chardev=e2ecmd,name="+CommandPort,
		"-chardev", "socket,id=agent,path="+agentSock+",server=on,wait=off",
		"-device", "virtserialport,bus=vser0.0,chardev=agent,name="+AgentPort,
	)
	if initrd != "" {
		args = append(args, "-initrd", initrd)
	}
	disks := cfg.Disks
	if cfg.Image != "" {
		args = append(args, "-drive", fmt.Sprintf("file=%s,format=raw,if=virtio,index=0,snapshot=on", cfg.Image))
		disks = nil
		for i, d := range cfg.Disks {
			args = append(args, "-drive", fmt.Sprintf("file=%s,format=raw,if=virtio,index=%d,cache=unsafe", d, i+1))
		}
	}
	for i, d := range disks {
		args = append(args, "-drive", fmt.Sprintf("file=%s,format=raw,if=virtio,index=%d,cache=unsafe", d, i))
	}
	return append(args, cfg.ExtraArgs...)
}

// QMPPath is the host unix socket of the VM's QMP monitor.
func (vm *VM) QMPPath() string { return vm.qmp }

// AgentSerialPath is the host unix socket of the guest port org.syncord.agent.
func (vm *VM) AgentSerialPath() string { return vm.agent }

// ConsolePath is the serial console log.
func (vm *VM) ConsolePath() string { return vm.console }

// PID is the QEMU process id.
func (vm *VM) PID() int { return vm.cmd.Process.Pid }

// Dir is the VM's host temp dir (removed with the VM).
func (vm *VM) Dir() string { return vm.dir }

// Run runs shell in the guest (busybox sh, cwd /root) and returns its
// combined stdout and stderr and its exit status. It fails the test if the
// channel breaks or the command outlives 10 minutes.
func (vm *VM) Run(t testing.TB, shell string) (string, int) {
	t.Helper()
	return vm.RunTimeout(t, shell, 10*time.Minute)
}

// MustRun is Run that fails the test on a non-zero status.
func (vm *VM) MustRun(t testing.TB, shell string) string {
	t.Helper()
	out, code := vm.Run(t, shell)
	if code != 0 {
		t.Fatalf("guest: %q exited %d:\n%s", shell, code, out)
	}
	return out
}

// RunTimeout is Run with its own limit.
func (vm *VM) RunTimeout(t testing.TB, shell string, limit time.Duration) (string, int) {
	t.Helper()
	out, code, err := vm.exec(shell, limit)
	if err != nil {
		t.Fatalf("guest: %q: %v\n%s", shell, err, vm.tail(40))
	}
	return out, code
}

func (vm *VM) exec(shell string, limit time.Duration) (string, int, error) {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	vm.seq++
	id := strconv.Itoa(vm.seq)
	vm.conn.SetDeadline(time.Now().Add(limit))
	defer vm.conn.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(vm.conn, "%s %s\n", id, base64.StdEncoding.EncodeToString([]byte(shell))); err != nil {
		return "", -1, err
	}
	for {
		line, err := vm.rd.ReadString('\n')
		if err != nil {
			return "", -1, fmt.Errorf("read reply: %w", err)
		}
		f := strings.Fields(line)
		// @@E2E <id> <status> [<base64 output>]
		if len(f) < 3 || f[0] != "@@E2E" || f[1] != id {
			continue
		}
		code, err := strconv.Atoi(f[2])
		if err != nil {
			return "", -1, fmt.Errorf("bad status in %q", line)
		}
		var out []byte
		if len(f) > 3 {
			if out, err = base64.StdEncoding.DecodeString(f[3]); err != nil {
				return "", -1, fmt.Errorf("bad output encoding: %v", err)
			}
		}
		return string(out), code, nil
	}
}

// CopyOut reads a guest file through the command channel.
func (vm *VM) CopyOut(t testing.TB, guestPath string) []byte {
	t.Helper()
	out := vm.MustRun(t, "base64 "+shellQuote(guestPath)+" | tr -d '\\n'")
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("copy out %s: %v", guestPath, err)
	}
	return b
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// tail returns the last n lines of the console log.
func (vm *VM) tail(n int) string {
	b, _ := os.ReadFile(vm.console)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "--- console (last lines) ---\n" + strings.Join(lines, "\n")
}

// Poweroff asks the guest to power off and waits for QEMU to exit.
func (vm *VM) Poweroff(t testing.TB) {
	t.Helper()
	vm.mu.Lock()
	if vm.conn != nil {
		fmt.Fprintf(vm.conn, "0 %s\n", base64.StdEncoding.EncodeToString([]byte("poweroff -f")))
	}
	vm.mu.Unlock()
	select {
	case <-vm.exited:
	case <-time.After(30 * time.Second):
		t.Errorf("guest did not power off within 30s")
	}
}

func (vm *VM) shutdown(t testing.TB) {
	if vm.conn != nil {
		vm.conn.Close()
	}
	if vm.cmd != nil && vm.cmd.Process != nil {
		select {
		case <-vm.exited:
		default:
			vm.cmd.Process.Kill()
			<-vm.exited
		}
	}
	if t.Failed() {
		if top, err := repoRoot(); err == nil {
			logs := filepath.Join(top, "e2e", "logs")
			os.MkdirAll(logs, 0o755)
			name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + ".console.log"
			if b, err := os.ReadFile(vm.console); err == nil {
				os.WriteFile(filepath.Join(logs, name), b, 0o644)
				t.Logf("console log kept in e2e/logs/%s", name)
			}
		}
		t.Log(vm.tail(30))
	}
	os.RemoveAll(vm.dir)
}
