package vm

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The golden command lines below were checked by hand against QEMU 7.2's
// option syntax; TestArgsAcceptedByQEMU runs the 2x2 one for real.
func TestArgsGolden(t *testing.T) {
	noVsock := t.TempDir() // a dev root without vhost-vsock
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{
			name: "2x2 kernel initrd",
			cfg: Config{Sockets: 2, Cores: 2, MemPerNodeMB: 256,
				Kernel: "/k/vmlinuz", Initrd: "/k/initrd.img",
				QMP: "/run/s/qmp.sock", SerialPath: "/run/s/agent.sock",
				ConsoleLog: "/run/s/console.log", DevRoot: noVsock},
			want: `qemu-system-x86_64 \
  -name syncord \
  -nodefaults \
  -nographic \
  -no-reboot \
  -accel tcg \
  -cpu max,hypervisor=off \
  -smp cpus=4,sockets=2,cores=2,threads=1 \
  -m 512M \
  -object memory-backend-ram,id=mem0,size=256M \
  -numa node,nodeid=0,cpus=0-1,memdev=mem0 \
  -object memory-backend-ram,id=mem1,size=256M \
  -numa node,nodeid=1,cpus=2-3,memdev=mem1 \
  -qmp unix:/run/s/qmp.sock,server=on,wait=off \
  -device virtio-serial-pci,id=vser0 \
  -chardev socket,id=agent0,path=/run/s/agent.sock,server=on,wait=off \
  -device virtserialport,bus=vser0.0,chardev=agent0,name=org.syncord.agent \
  -serial file:/run/s/console.log \
  -kernel /k/vmlinuz \
  -initrd /k/initrd.img \
  -append 'console=ttyS0 panic=-1'
`,
		},
		{
			name: "artifact 8x28 image kvm tcp qmp",
			cfg: Config{Sockets: 8, Cores: 28, MemPerNodeMB: 16384,
				Image: "/images/syncord.qcow2", QMP: "tcp:127.0.0.1:5555",
				SerialPath: "/run/s/agent.sock", Accel: "kvm", DevRoot: noVsock,
				ExtraDisks: []string{"/images/fxmark.img"}},
			want: `qemu-system-x86_64 \
  -name syncord \
  -nodefaults \
  -nographic \
  -no-reboot \
  -accel kvm \
  -cpu host \
  -smp cpus=224,sockets=8,cores=28,threads=1 \
  -m 131072M \
  -object memory-backend-ram,id=mem0,size=16384M \
  -numa node,nodeid=0,cpus=0-27,memdev=mem0 \
  -object memory-backend-ram,id=mem1,size=16384M \
  -numa node,nodeid=1,cpus=28-55,memdev=mem1 \
  -object memory-backend-ram,id=mem2,size=16384M \
  -numa node,nodeid=2,cpus=56-83,memdev=mem2 \
  -object memory-backend-ram,id=mem3,size=16384M \
  -numa node,nodeid=3,cpus=84-111,memdev=mem3 \
  -object memory-backend-ram,id=mem4,size=16384M \
  -numa node,nodeid=4,cpus=112-139,memdev=mem4 \
  -object memory-backend-ram,id=mem5,size=16384M \
  -numa node,nodeid=5,cpus=140-167,memdev=mem5 \
  -object memory-backend-ram,id=mem6,size=16384M \
  -numa node,nodeid=6,cpus=168-195,memdev=mem6 \
  -object memory-backend-ram,id=mem7,size=16384M \
  -numa node,nodeid=7,cpus=196-223,memdev=mem7 \
  -qmp tcp:127.0.0.1:5555,server=on,wait=off \
  -device virtio-serial-pci,id=vser0 \
  -chardev socket,id=agent0,path=/run/s/agent.sock,server=on,wait=off \
  -device virtserialport,bus=vser0.0,chardev=agent0,name=org.syncord.agent \
  -serial stdio \
  -drive file=/images/syncord.qcow2,format=qcow2,if=virtio \
  -drive file=/images/fxmark.img,format=raw,if=virtio
`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if got := ShellCommand(tc.cfg.Command()); got != tc.want {
				t.Errorf("command line differs\n got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestArgsHostNodes(t *testing.T) {
	a := strings.Join(Config{Kernel: "/k", Sockets: 2, Cores: 1, MemPerNodeMB: 64, HostNodes: []int{1, 0}}.Args(), " ")
	for _, want := range []string{
		"-object memory-backend-ram,id=mem0,size=64M,host-nodes=1,policy=bind -numa node,nodeid=0,cpus=0,memdev=mem0 ",
		"-object memory-backend-ram,id=mem1,size=64M,host-nodes=0,policy=bind -numa node,nodeid=1,cpus=1,memdev=mem1 ",
	} {
		if !strings.Contains(a, want) {
			t.Errorf("args lack %q: %s", want, a)
		}
	}
}

func TestArgsVsockOnlyWithDevice(t *testing.T) {
	dev := t.TempDir()
	cfg := Config{Kernel: "/k", DevRoot: dev, VsockCID: 7}
	if strings.Contains(strings.Join(cfg.Args(), " "), "vhost-vsock") {
		t.Fatalf("vhost-vsock added without %s/vhost-vsock", dev)
	}
	if err := os.WriteFile(filepath.Join(dev, "vhost-vsock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	args := strings.Join(cfg.Args(), " ")
	if !strings.Contains(args, "-device vhost-vsock-pci,id=vsock0,guest-cid=7 ") {
		t.Fatalf("no vhost-vsock device with %s/vhost-vsock present: %s", dev, args)
	}
	if cid := (Config{}).WithDefaults().VsockCID; cid != DefaultVsockCID {
		t.Fatalf("default CID %d", cid)
	}
}

func TestArgsThisHostHasNoVsock(t *testing.T) {
	if _, err := os.Stat("/dev/vhost-vsock"); err == nil {
		t.Skip("skipping: this host has /dev/vhost-vsock")
	}
	if a := strings.Join((Config{Kernel: "/k"}).Args(), " "); strings.Contains(a, "vsock") {
		t.Fatalf("vsock device on a host without /dev/vhost-vsock: %s", a)
	}
}

func TestDefaults(t *testing.T) {
	d := Config{Kernel: "/k", RunDir: "/r"}.WithDefaults()
	if d.Sockets != 2 || d.Cores != 2 || d.MemPerNodeMB != 512 || d.Accel != "tcg" ||
		d.QMP != "/r/syncord-qmp.sock" || d.SerialPath != "/r/syncord-agent.sock" ||
		d.Append != DefaultAppend || d.Binary != DefaultBinary {
		t.Fatalf("defaults: %+v", d)
	}
	if a := (Config{Image: "/i.img"}).WithDefaults().Append; a != "" {
		t.Fatalf("append %q without a kernel", a)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for none
	}{
		{"ok kernel", Config{Kernel: "/k", Initrd: "/i"}, ""},
		{"ok image", Config{Image: "/i.qcow2"}, ""},
		{"nothing to boot", Config{}, "nothing to boot"},
		{"kernel with root image", Config{Image: "/i.img", Kernel: "/k", Initrd: "/i", Append: "root=/dev/vda"}, ""},
		{"initrd without kernel", Config{Image: "/i", Initrd: "/x"}, "need a kernel"},
		{"negative sockets", Config{Kernel: "/k", Sockets: -1}, "sockets must be"},
		{"negative cores", Config{Kernel: "/k", Cores: -2}, "cores per socket"},
		{"negative memory", Config{Kernel: "/k", MemPerNodeMB: -1}, "memory per node"},
		{"reserved cid", Config{Kernel: "/k", VsockCID: 2}, "reserved"},
		{"bad accel", Config{Kernel: "/k", Accel: "hvf"}, "not tcg or kvm"},
		{"remote qmp", Config{Kernel: "/k", QMP: "tcp:10.0.0.1:5555"}, "not a loopback"},
		{"comma path", Config{Kernel: "/k", SerialPath: "/a,b"}, "comma"},
		{"host nodes per socket", Config{Kernel: "/k", Sockets: 2, HostNodes: []int{0, 1}}, ""},
		{"host nodes short", Config{Kernel: "/k", Sockets: 2, HostNodes: []int{0}}, "1 host nodes for 2 guest nodes"},
		{"host node negative", Config{Kernel: "/k", Sockets: 1, HostNodes: []int{-1}}, "out of range"},
		{"too many vcpus", Config{Kernel: "/k", Sockets: 64, Cores: 128}, "more vCPUs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseMonitorAddr(t *testing.T) {
	for _, tc := range []struct {
		in, network, addr string
		bad               bool
	}{
		{in: "/run/qmp.sock", network: "unix", addr: "/run/qmp.sock"},
		{in: "unix:/run/qmp.sock", network: "unix", addr: "/run/qmp.sock"},
		{in: "tcp:127.0.0.1:5555", network: "tcp", addr: "127.0.0.1:5555"},
		{in: "tcp:127.3.4.5:5555", network: "tcp", addr: "127.3.4.5:5555"},
		{in: "tcp:localhost:5555", network: "tcp", addr: "localhost:5555"},
		{in: "tcp:[::1]:5555", network: "tcp", addr: "[::1]:5555"},
		{in: "tcp:192.168.1.2:5555", bad: true},
		{in: "tcp:example.com:5555", bad: true},
		{in: "tcp:0.0.0.0:5555", bad: true},
		{in: "tcp:127.0.0.1:0", bad: true},
		{in: "tcp:127.0.0.1", bad: true},
		{in: "unix:", bad: true},
		{in: "", bad: true},
		{in: "http://127.0.0.1/", bad: true},
	} {
		n, a, err := ParseMonitorAddr(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseMonitorAddr(%q) = %s %s, want an error", tc.in, n, a)
			}
			continue
		}
		if err != nil || n != tc.network || a != tc.addr {
			t.Errorf("ParseMonitorAddr(%q) = %q %q %v, want %q %q", tc.in, n, a, err, tc.network, tc.addr)
		}
	}
}

func TestShellQuoteRoundTrip(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("skipping: no sh")
	}
	words := []string{"plain", "with space", "it's", "", "$HOME", "a\"b", "*", "console=ttyS0 panic=-1"}
	script := `for w in "$@"; do printf '[%s]\n' "$w"; done`
	out, err := exec.Command(sh, "-c", "set -- "+ShellQuote(words)+"; "+script).Output()
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, w := range words {
		want.WriteString("[" + w + "]\n")
	}
	if string(out) != want.String() {
		t.Fatalf("shell read back\n%s\nwant\n%s", out, want.String())
	}
}
