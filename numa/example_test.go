package numa_test

import (
	"fmt"
	"log"

	"github.com/syncord/syncord/numa"
)

// Read a topology (here the synthesized artifact VM; NewDefaultFS for the
// live machine) and derive what runtest.py needs.
func ExampleFS_Topology() {
	fs, err := numa.NewFS("testdata/synth-8x28")
	if err != nil {
		log.Fatal(err)
	}
	top, err := fs.Topology()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(top.Online, len(top.Nodes), top.Sockets(), top.CoresPerSocket(), top.SMT())
	fmt.Println(top.RuntestHeader())
	fmt.Println(top.SweepPoints())
	// Output:
	// 0-223 8 8 28 false
	// (num_cores, num_nodes, cores_per_socket) = (224, 8, 28)
	// [1 2 4 8 16 28 56 84 112 140 168 196 224]
}

func ExamplePlacement() {
	cpus, _ := numa.Placement(4, 28)
	fmt.Println(cpus, numa.RoleOf(cpus[1], 28), numa.RoleOf(cpus[2], 28))
	// Output: [0 1 14 15] fast slow
}
