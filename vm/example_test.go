package vm_test

import (
	"fmt"
	"os"

	"github.com/syncord/syncord/numa"
	"github.com/syncord/syncord/vm"
)

// A two-socket guest booted from a kernel, printed as a shell command.
func ExampleConfig_Command() {
	cfg := vm.Config{Sockets: 2, Cores: 4, MemPerNodeMB: 1024,
		Kernel: "bzImage", Initrd: "initrd.img",
		QMP: "tcp:127.0.0.1:5555", SerialPath: "/run/syncord/agent.sock",
		ConsoleLog: "console.log", DevRoot: "/nonexistent"}
	if err := cfg.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(vm.ShellCommand(cfg.Command()))
	// Output:
	// qemu-system-x86_64 \
	//   -name syncord \
	//   -nodefaults \
	//   -nographic \
	//   -no-reboot \
	//   -accel tcg \
	//   -cpu max,hypervisor=off \
	//   -smp cpus=8,sockets=2,cores=4,threads=1 \
	//   -m 2048M \
	//   -object memory-backend-ram,id=mem0,size=1024M \
	//   -numa node,nodeid=0,cpus=0-3,memdev=mem0 \
	//   -object memory-backend-ram,id=mem1,size=1024M \
	//   -numa node,nodeid=1,cpus=4-7,memdev=mem1 \
	//   -qmp tcp:127.0.0.1:5555,server=on,wait=off \
	//   -device virtio-serial-pci,id=vser0 \
	//   -chardev socket,id=agent0,path=/run/syncord/agent.sock,server=on,wait=off \
	//   -device virtserialport,bus=vser0.0,chardev=agent0,name=org.syncord.agent \
	//   -serial file:console.log \
	//   -kernel bzImage \
	//   -initrd initrd.img \
	//   -append 'console=ttyS0 panic=-1'
}

// A 2x2 guest on a two-node host: each guest socket keeps to one node.
func ExampleNewPlan() {
	var cpus []vm.CPU
	for i := 0; i < 4; i++ {
		cpus = append(cpus, vm.CPU{Index: i, ThreadID: 1000 + i,
			Props: vm.CPUProps{NodeID: i / 2, SocketID: i / 2, CoreID: i % 2}})
	}
	host := vm.HostTopology{
		{ID: 0, CPUs: numa.NewCPUSet(0, 1, 2, 3)},
		{ID: 1, CPUs: numa.NewCPUSet(4, 5, 6, 7)},
	}
	plan, err := vm.NewPlan(cpus, host, vm.PlanOptions{Kind: vm.PlanNUMA})
	if err != nil {
		fmt.Println(err)
		return
	}
	plan.WriteTable(os.Stdout)
	// Output:
	// vcpu  thread-id  guest-socket  guest-node  host-cpu  host-node
	// 0     1000       0             0           0         0
	// 1     1001       0             0           1         0
	// 2     1002       1             1           4         1
	// 3     1003       1             1           5         1
}
