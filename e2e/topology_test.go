package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/syncord/syncord/numa"
)

// updateFixtures (SYNCORD_UPDATE_FIXTURES=1, make fixtures) writes the VM
// captures into numa/testdata instead of comparing with them.
func updateFixtures() bool { return os.Getenv("SYNCORD_UPDATE_FIXTURES") == "1" }

const numaTestdata = "../numa/testdata"

// TestTopology boots the layouts QEMU is asked for and checks that
// `syncord topology --json` in the guest reports exactly them; the 2x2
// guest then takes cpu 3 offline and is read again. Each state is captured
// (`syncord topology --capture -`) and compared with, or with
// SYNCORD_UPDATE_FIXTURES=1 written to, numa/testdata/vm-*.
func TestTopology(t *testing.T) {
	for _, tc := range []struct {
		name           string
		sockets, cores int
		fixture        string
	}{
		{"2x2", 2, 2, "vm-2node"},
		{"4x1", 4, 1, "vm-4node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const memMB = 256
			vm := Boot(t, Config{Sockets: tc.sockets, Cores: tc.cores, MemPerNodeMB: memMB})
			rep := guestTopology(t, vm)
			checkLayout(t, rep, tc.sockets, tc.cores, memMB)
			human := vm.MustRun(t, "syncord topology")
			if want := fmt.Sprintf("sockets:     %d, %d cores per socket, SMT off", tc.sockets, tc.cores); !strings.Contains(human, want) {
				t.Errorf("syncord topology lacks %q:\n%s", want, human)
			}
			captureFixture(t, vm, tc.fixture, fmt.Sprintf("the e2e VM booted with -smp sockets=%d,cores=%d,threads=1 and one %d MiB -numa node per socket", tc.sockets, tc.cores, memMB))

			if tc.sockets != 2 || tc.cores != 2 {
				return
			}
			// Offline CPU: Linux drops it from cpu/online and node1/cpulist
			// and removes cpu3/topology; the cpu3/node1 link stays.
			vm.MustRun(t, "echo 0 > /sys/devices/system/cpu/cpu3/online")
			off := guestTopology(t, vm)
			c := off.CPUs[3]
			if c.Online || c.Node != 1 || c.Socket != -1 || c.Core != -1 {
				t.Errorf("offline cpu 3 reads as %+v, want offline, node 1 (from its link), no topology", c.CPU)
			}
			if off.Online.String() != "0-2" || off.Present.String() != "0-3" || off.Nodes[1].CPUs.String() != "2" {
				t.Errorf("offline: online %s present %s node 1 cpus %s; want 0-2, 0-3, 2", off.Online, off.Present, off.Nodes[1].CPUs)
			}
			if off.Sockets != 2 || off.CoresPerSocket != 2 {
				t.Errorf("offline: %d sockets, %d cores per socket; want 2, 2", off.Sockets, off.CoresPerSocket)
			}
			// lscpu shows "-" as the node of an offline CPU: one more node.
			if want := (numa.RuntestHeader{NumCores: 4, NumNodes: 3, CoresPerSocket: 1}); off.Runtest != want {
				t.Errorf("offline: runtest header %v, want %v", off.Runtest, want)
			}
			captureFixture(t, vm, "vm-2node-offline", "the e2e VM booted with -smp sockets=2,cores=2,threads=1 and one 256 MiB -numa node per socket, after echo 0 > /sys/devices/system/cpu/cpu3/online")
		})
	}
}

func guestTopology(t *testing.T, vm *VM) *numa.Report {
	t.Helper()
	out := vm.MustRun(t, "syncord topology --json")
	var rep numa.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("syncord topology --json: %v\n%s", err, out)
	}
	return &rep
}

// checkLayout asserts that rep is exactly sockets x cores, one node per
// socket, as Config asks QEMU for.
func checkLayout(t *testing.T, rep *numa.Report, sockets, cores, memMB int) {
	t.Helper()
	n := sockets * cores
	if len(rep.CPUs) != n || rep.Online.Len() != n || len(rep.Nodes) != sockets || rep.Sockets != sockets ||
		rep.CoresPerSocket != cores || rep.SMT || !rep.NUMA {
		t.Fatalf("guest reports %d CPUs (%d online), %d nodes, %d sockets, %d cores per socket, SMT %v, NUMA %v; want %d, %d, %d, %d, %d, false, true",
			len(rep.CPUs), rep.Online.Len(), len(rep.Nodes), rep.Sockets, rep.CoresPerSocket, rep.SMT, rep.NUMA, n, n, sockets, sockets, cores)
	}
	for _, c := range rep.CPUs {
		if !c.Online || c.Node != c.ID/cores || c.Socket != c.ID/cores || c.ThreadSiblings.Len() != 1 {
			t.Errorf("cpu %+v: want online on node and socket %d", c.CPU, c.ID/cores)
		}
	}
	for i, nd := range rep.Nodes {
		want := make([]int, cores)
		for j := range want {
			want[j] = i*cores + j
		}
		if nd.ID != i || !reflect.DeepEqual([]int(nd.CPUs), want) {
			t.Errorf("node %d: id %d cpus %v, want cpus %v", i, nd.ID, nd.CPUs, want)
		}
		if nd.MemTotal == 0 || nd.MemTotal > uint64(memMB)<<20 {
			t.Errorf("node %d MemTotal %d bytes, want 0 < x <= %d MiB", i, nd.MemTotal, memMB)
		}
		if len(nd.Distances) != sockets || nd.Distances[i] != 10 {
			t.Errorf("node %d distances %v", i, nd.Distances)
		}
	}
	if want := (numa.RuntestHeader{NumCores: n, NumNodes: sockets, CoresPerSocket: cores}); rep.Runtest != want {
		t.Errorf("runtest header %v, want %v", rep.Runtest, want)
	}
	if want := numa.SweepPoints(n, cores); !reflect.DeepEqual(rep.SweepPoints, want) {
		t.Errorf("sweep points %v, want %v", rep.SweepPoints, want)
	}
}

// captureFixture captures the guest's sysfs and writes it to
// numa/testdata/name (SYNCORD_UPDATE_FIXTURES=1) or checks that the
// committed fixture still reads as the guest does (memory sizes aside:
// they move with the kernel's reservations).
func captureFixture(t *testing.T, vm *VM, name, what string) {
	t.Helper()
	out := vm.MustRun(t, "syncord topology --capture -")
	snap, err := numa.ReadSnapshot(strings.NewReader(out))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	dir := filepath.Join(numaTestdata, name)
	if updateFixtures() {
		if err := snap.WriteDir(dir); err != nil {
			t.Fatal(err)
		}
		k := Kernel(t)
		readme := fmt.Sprintf("# %s: CAPTURED in the e2e VM\n\nThe sysfs files the numa reader uses, captured from %s\n(Debian kernel %s under QEMU TCG) with `syncord topology --capture -`.\nRefresh: make fixtures (SYNCORD_E2E=1 SYNCORD_UPDATE_FIXTURES=1 go test ./e2e -run TestTopology).\n", name, what, k.Version)
		if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte(readme), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", dir)
		return
	}
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		t.Logf("no committed fixture %s to compare (make fixtures writes it)", dir)
		return
	}
	tmp := t.TempDir()
	if err := snap.WriteDir(tmp); err != nil {
		t.Fatal(err)
	}
	got, want := readReport(t, tmp), readReport(t, dir)
	for _, r := range []*numa.Report{got, want} {
		for i := range r.Nodes {
			r.Nodes[i].MemTotal = 0
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("numa/testdata/%s no longer matches the VM (refresh: make fixtures)", name)
	}
}

func readReport(t *testing.T, root string) *numa.Report {
	t.Helper()
	fs, err := numa.NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	top, err := fs.Topology()
	if err != nil {
		t.Fatal(err)
	}
	return top.Report()
}

// TestTopologySMT boots 2 sockets x 1 core x 2 threads (one node per
// socket) and checks that the guest reports the two hardware threads of
// each core as siblings, SMT on, and runtest.py's header and
// cores_per_socket: runtest.py counts lscpu rows, so a "core" there is a
// logical CPU (4 CPUs / 2 nodes = 2). The tree is captured as, or compared
// with, numa/testdata/vm-2node-smt.
//
// The guest CPU is -cpu max with an Intel vendor: TCG's max CPU is
// AuthenticAMD without topoext (TCG does not offer it), and Linux's AMD
// path then makes each thread a core of its own (thread_siblings_list of
// one CPU); with GenuineIntel it reads CPUID leaf 0xB, where QEMU reports
// the threads.
func TestTopologySMT(t *testing.T) {
	const sockets, cores, threads, memMB = 2, 1, 2, 256
	const cpu = "max,vendor=GenuineIntel"
	vm := Boot(t, Config{Sockets: sockets, Cores: cores, Threads: threads, MemPerNodeMB: memMB,
		ExtraArgs: []string{"-cpu", cpu}}) // the last -cpu wins
	rep := guestTopology(t, vm)
	n := sockets * cores * threads
	per := cores * threads // logical CPUs per socket and node
	if len(rep.CPUs) != n || rep.Online.String() != "0-3" || rep.Present.String() != "0-3" || len(rep.Nodes) != sockets ||
		rep.Sockets != sockets || rep.CoresPerSocket != per || !rep.SMT || !rep.NUMA {
		t.Fatalf("guest reports %d CPUs (online %s, present %s), %d nodes, %d sockets, %d cores per socket, SMT %v, NUMA %v; want %d, 0-3, 0-3, %d, %d, %d, true, true",
			len(rep.CPUs), rep.Online, rep.Present, len(rep.Nodes), rep.Sockets, rep.CoresPerSocket, rep.SMT, rep.NUMA, n, sockets, sockets, per)
	}
	siblings := []string{"0-1", "0-1", "2-3", "2-3"}
	for i, c := range rep.CPUs {
		if c.ID != i || !c.Online || c.Node != i/per || c.Socket != i/per || c.ThreadSiblings.String() != siblings[i] {
			t.Errorf("cpu %+v: want cpu %d online on node and socket %d, thread siblings %s", c.CPU, i, i/per, siblings[i])
		}
	}
	// Both threads of a core share its core id; the sockets' cores may be
	// numbered alike, so compare within a socket only.
	for s := 0; s < sockets; s++ {
		if a, b := rep.CPUs[s*per], rep.CPUs[s*per+1]; a.Core != b.Core {
			t.Errorf("socket %d: threads cpu %d and %d have core ids %d and %d, want one core", s, a.ID, b.ID, a.Core, b.Core)
		}
	}
	for i, nd := range rep.Nodes {
		if want := fmt.Sprintf("%d-%d", i*per, i*per+per-1); nd.ID != i || nd.CPUs.String() != want {
			t.Errorf("node %d: id %d cpus %s, want %s", i, nd.ID, nd.CPUs, want)
		}
		if nd.MemTotal == 0 || nd.MemTotal > uint64(memMB)<<20 {
			t.Errorf("node %d MemTotal %d bytes, want 0 < x <= %d MiB", i, nd.MemTotal, memMB)
		}
		if len(nd.Distances) != sockets || nd.Distances[i] != 10 {
			t.Errorf("node %d distances %v", i, nd.Distances)
		}
	}
	if want := (numa.RuntestHeader{NumCores: 4, NumNodes: 2, CoresPerSocket: 2}); rep.Runtest != want {
		t.Errorf("runtest header %v, want %v", rep.Runtest, want)
	}
	if want := []int{1, 2, 4}; !reflect.DeepEqual(rep.SweepPoints, want) {
		t.Errorf("sweep points %v, want %v", rep.SweepPoints, want)
	}
	human := vm.MustRun(t, "syncord topology")
	if want := "sockets:     2, 2 cores per socket, SMT on"; !strings.Contains(human, want) {
		t.Errorf("syncord topology lacks %q:\n%s", want, human)
	}
	captureFixture(t, vm, "vm-2node-smt", fmt.Sprintf("the e2e VM booted with -cpu %s -smp sockets=%d,cores=%d,threads=%d and one %d MiB -numa node per socket", cpu, sockets, cores, threads, memMB))
}
