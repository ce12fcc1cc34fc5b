package numa

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// want is what a fixture must read as.
type want struct {
	online, present string
	numa            bool
	nodes           []string // cpulist per node, in node order
	memTotal        uint64   // of node 0
	distances0      []int    // row of node 0
	sockets, cps    int
	smt             bool
	sweep           []int
	runtest         RuntestHeader
	cpufreqCPUs     int
}

func TestTopologyFixtures(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		want    want
	}{
		{"host", want{
			online: "0-1", present: "0-1", numa: true, nodes: []string{"0-1"},
			memTotal: 4941600 * 1024, distances0: []int{10},
			sockets: 1, cps: 2, sweep: []int{1, 2}, runtest: RuntestHeader{2, 1, 2},
		}},
		{"host-smt", want{
			online: "0-1", present: "0-1", numa: true, nodes: []string{"0-1"},
			memTotal: 4941600 * 1024, distances0: []int{10},
			sockets: 1, cps: 2, smt: true, sweep: []int{1, 2}, runtest: RuntestHeader{2, 1, 2},
		}},
		{"host-offline", want{
			online: "0", present: "0-1", numa: true, nodes: []string{"0"},
			memTotal: 4941600 * 1024, distances0: []int{10},
			// cpu1 counts for node 0 through its cpu1/node0 link, but lscpu
			// (so runtest.py) shows "-" for its node: a second node.
			sockets: 1, cps: 2, sweep: []int{1}, runtest: RuntestHeader{2, 2, 1},
		}},
		{"vm-2node", want{
			online: "0-3", present: "0-3", numa: true, nodes: []string{"0-1", "2-3"},
			memTotal: 211064 * 1024, distances0: []int{10, 20},
			sockets: 2, cps: 2, sweep: []int{1, 2, 4}, runtest: RuntestHeader{4, 2, 2},
		}},
		{"vm-4node", want{
			online: "0-3", present: "0-3", numa: true, nodes: []string{"0", "1", "2", "3"},
			memTotal: 256584 * 1024, distances0: []int{10, 20, 20, 20},
			sockets: 4, cps: 1, sweep: []int{1, 2, 3, 4}, runtest: RuntestHeader{4, 4, 1},
		}},
		{"vm-2node-smt", want{
			// 2 sockets x 1 core x 2 threads: runtest.py counts lscpu rows,
			// so cores_per_socket is logical CPUs per node.
			online: "0-3", present: "0-3", numa: true, nodes: []string{"0-1", "2-3"},
			memTotal: 256336 * 1024, distances0: []int{10, 20},
			sockets: 2, cps: 2, smt: true, sweep: []int{1, 2, 4}, runtest: RuntestHeader{4, 2, 2},
		}},
		{"vm-2node-offline", want{
			online: "0-2", present: "0-3", numa: true, nodes: []string{"0-1", "2"},
			memTotal: 211064 * 1024, distances0: []int{10, 20},
			sockets: 2, cps: 2, sweep: []int{1, 2, 3}, runtest: RuntestHeader{4, 3, 1},
		}},
		{"synth-8x28", want{
			online: "0-223", present: "0-223", numa: true,
			nodes:    []string{"0-27", "28-55", "56-83", "84-111", "112-139", "140-167", "168-195", "196-223"},
			memTotal: 16 << 30, distances0: []int{10, 20, 20, 20, 20, 20, 20, 20},
			sockets: 8, cps: 28, sweep: []int{1, 2, 4, 8, 16, 28, 56, 84, 112, 140, 168, 196, 224},
			runtest: RuntestHeader{224, 8, 28},
		}},
		{"synth-2x4-cpufreq", want{
			online: "0-7", present: "0-7", numa: true, nodes: []string{"0-3", "4-7"},
			memTotal: 4 << 30, distances0: []int{10, 21},
			sockets: 2, cps: 4, sweep: []int{1, 2, 4, 8}, runtest: RuntestHeader{8, 2, 4},
			cpufreqCPUs: 8,
		}},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			top, err := fixture(t, tc.fixture).Topology()
			if err != nil {
				t.Fatal(err)
			}
			checkTopology(t, top, tc.want)
		})
	}
}

func checkTopology(t *testing.T, top *Topology, w want) {
	t.Helper()
	if got := top.Online.String(); got != w.online {
		t.Errorf("Online = %q, want %q", got, w.online)
	}
	if got := top.Present.String(); got != w.present {
		t.Errorf("Present = %q, want %q", got, w.present)
	}
	if top.NUMA != w.numa {
		t.Errorf("NUMA = %v, want %v", top.NUMA, w.numa)
	}
	var nodes []string
	for i, n := range top.Nodes {
		if n.ID != i {
			t.Errorf("node %d has ID %d", i, n.ID)
		}
		nodes = append(nodes, n.CPUs.String())
		if len(n.Distances) != len(top.Nodes) || n.Distances[i] != 10 {
			t.Errorf("node %d distances %v: want %d entries, 10 for itself", i, n.Distances, len(top.Nodes))
		}
	}
	if !reflect.DeepEqual(nodes, w.nodes) {
		t.Errorf("node cpulists = %q, want %q", nodes, w.nodes)
	}
	if top.Nodes[0].MemTotal != w.memTotal {
		t.Errorf("node 0 MemTotal = %d, want %d", top.Nodes[0].MemTotal, w.memTotal)
	}
	if !reflect.DeepEqual(top.Nodes[0].Distances, w.distances0) {
		t.Errorf("node 0 distances = %v, want %v", top.Nodes[0].Distances, w.distances0)
	}
	if got := top.Sockets(); got != w.sockets {
		t.Errorf("Sockets() = %d, want %d", got, w.sockets)
	}
	if got := top.CoresPerSocket(); got != w.cps {
		t.Errorf("CoresPerSocket() = %d, want %d", got, w.cps)
	}
	if got := top.SMT(); got != w.smt {
		t.Errorf("SMT() = %v, want %v", got, w.smt)
	}
	if got := top.SweepPoints(); !reflect.DeepEqual(got, w.sweep) {
		t.Errorf("SweepPoints() = %v, want %v", got, w.sweep)
	}
	if got := top.RuntestHeader(); got != w.runtest {
		t.Errorf("RuntestHeader() = %v, want %v", got, w.runtest)
	}
	// Every online CPU sits in exactly the node whose cpulist names it, in
	// its thread siblings, and in a socket; offline ones have no topology.
	var withFreq int
	for _, c := range top.CPUs {
		if c.Freq != nil {
			withFreq++
		}
		if !c.Online {
			if c.Socket != -1 || c.Core != -1 || c.ThreadSiblings.Len() != 0 {
				t.Errorf("offline cpu %d has topology %+v", c.ID, c)
			}
			continue
		}
		if c.Node < 0 || !top.Nodes[c.Node].CPUs.Contains(c.ID) {
			t.Errorf("cpu %d: node %d does not list it", c.ID, c.Node)
		}
		if !c.ThreadSiblings.Contains(c.ID) {
			t.Errorf("cpu %d: thread siblings %s do not include it", c.ID, c.ThreadSiblings)
		}
		if c.Socket < 0 || c.Core < 0 {
			t.Errorf("cpu %d: socket %d core %d", c.ID, c.Socket, c.Core)
		}
	}
	if withFreq != w.cpufreqCPUs {
		t.Errorf("%d CPUs have cpufreq, want %d", withFreq, w.cpufreqCPUs)
	}
}

func TestTopology8x28Details(t *testing.T) {
	top, err := fixture(t, "synth-8x28").Topology()
	if err != nil {
		t.Fatal(err)
	}
	c := top.CPU(57)
	if c == nil || c.Node != 2 || c.Socket != 2 || c.Core != 1 || !c.Online || c.ThreadSiblings.String() != "57" {
		t.Fatalf("CPU(57) = %+v, want node 2 socket 2 core 1 online, siblings 57", c)
	}
	if top.CPU(224) != nil {
		t.Errorf("CPU(224) exists")
	}
	if got := top.Nodes[3].Distances; !reflect.DeepEqual(got, []int{20, 20, 20, 10, 20, 20, 20, 20}) {
		t.Errorf("node 3 distances = %v", got)
	}
	fast, slow := top.FastSlow(top.Nodes[1])
	if fast.String() != "28-41" || slow.String() != "42-55" {
		t.Errorf("node 1 fast/slow = %s / %s, want 28-41 / 42-55", fast, slow)
	}
	for cpu, role := range map[int]Role{0: Fast, 13: Fast, 14: Slow, 27: Slow, 28: Fast, 223: Slow} {
		if got := top.Role(cpu); got != role {
			t.Errorf("Role(%d) = %v, want %v", cpu, got, role)
		}
	}
	p, err := top.Placement(4)
	if err != nil || !reflect.DeepEqual(p, []int{0, 1, 14, 15}) {
		t.Errorf("Placement(4) = %v, %v; want [0 1 14 15]", p, err)
	}
	if got := top.RuntestHeader().String(); got != "(num_cores, num_nodes, cores_per_socket) = (224, 8, 28)" {
		t.Errorf("RuntestHeader().String() = %q", got)
	}
}

func TestTopologyOfflineCPU(t *testing.T) {
	top, err := fixture(t, "host-offline").Topology()
	if err != nil {
		t.Fatal(err)
	}
	c := top.CPU(1)
	if c == nil || c.Online || c.Node != 0 {
		t.Fatalf("CPU(1) = %+v, want offline on node 0 (from the cpu1/node0 link)", c)
	}
	// Without the link the node is unknown, not an error.
	root := tempFixture(t, "host-offline")
	if err := os.Remove(filepath.Join(root, "devices/system/cpu/cpu1/node0")); err != nil {
		t.Fatal(err)
	}
	fs, _ := NewFS(root)
	top, err = fs.Topology()
	if err != nil {
		t.Fatal(err)
	}
	if c := top.CPU(1); c.Node != -1 {
		t.Errorf("CPU(1).Node = %d without a node link, want -1", c.Node)
	}
	if top.CoresPerSocket() != 2 || top.Sockets() != 1 {
		t.Errorf("without a node link: %d sockets, %d cores per socket; want 1, 2", top.Sockets(), top.CoresPerSocket())
	}
}

func TestTopologySMTSiblings(t *testing.T) {
	for _, tc := range []struct {
		fixture  string
		siblings []string // thread_siblings_list per CPU
		cores    []int    // core_id per CPU
	}{
		// CPUs 0 and 1 made the two threads of core 0.
		{"host-smt", []string{"0-1", "0-1"}, []int{0, 0}},
		// QEMU -smp sockets=2,cores=1,threads=2: core 0 of each socket.
		{"vm-2node-smt", []string{"0-1", "0-1", "2-3", "2-3"}, []int{0, 0, 0, 0}},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			top, err := fixture(t, tc.fixture).Topology()
			if err != nil {
				t.Fatal(err)
			}
			if len(top.CPUs) != len(tc.siblings) {
				t.Fatalf("%d CPUs, want %d", len(top.CPUs), len(tc.siblings))
			}
			for i, c := range top.CPUs {
				if c.ThreadSiblings.String() != tc.siblings[i] || c.Core != tc.cores[i] {
					t.Errorf("cpu %d: siblings %s core %d, want %s core %d", c.ID, c.ThreadSiblings, c.Core, tc.siblings[i], tc.cores[i])
				}
			}
		})
	}
}

func TestTopologyWithoutNUMA(t *testing.T) {
	root := tempFixture(t, "host")
	if err := os.RemoveAll(filepath.Join(root, "devices/system/node")); err != nil {
		t.Fatal(err)
	}
	fs, err := NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	top, err := fs.Topology()
	if err != nil {
		t.Fatal(err)
	}
	checkTopology(t, top, want{
		online: "0-1", present: "0-1", numa: false, nodes: []string{"0-1"},
		memTotal: 0, distances0: []int{10},
		sockets: 1, cps: 2, sweep: []int{1, 2}, runtest: RuntestHeader{2, 1, 2},
	})
	for _, c := range top.CPUs {
		if c.Node != 0 {
			t.Errorf("cpu %d on node %d, want 0", c.ID, c.Node)
		}
	}
}

func TestTopologyErrorsNameTheFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fixture string
		edit    func(t *testing.T, root string)
		wantErr []string
	}{
		{"malformed core_id", "vm-2node", func(t *testing.T, root string) {
			writeFile(t, root, "devices/system/cpu/cpu1/topology/core_id", "one\n")
		}, []string{"parse ", "devices/system/cpu/cpu1/topology/core_id", "bad integer"}},
		{"online CPU without topology", "vm-2node", func(t *testing.T, root string) {
			os.RemoveAll(filepath.Join(root, "devices/system/cpu/cpu1/topology"))
		}, []string{"devices/system/cpu/cpu1/topology/physical_package_id", "no such file"}},
		{"malformed online list", "vm-2node", func(t *testing.T, root string) {
			writeFile(t, root, "devices/system/cpu/online", "0-x\n")
		}, []string{"devices/system/cpu/online", "cpulist"}},
		{"no cpu directory", "vm-2node", func(t *testing.T, root string) {
			os.RemoveAll(filepath.Join(root, "devices/system/cpu"))
		}, []string{"devices/system/cpu/online", "mount -t sysfs"}},
		{"missing present", "vm-2node", func(t *testing.T, root string) {
			os.Remove(filepath.Join(root, "devices/system/cpu/present"))
		}, []string{"devices/system/cpu/present"}},
		{"node dir without online", "vm-2node", func(t *testing.T, root string) {
			os.Remove(filepath.Join(root, "devices/system/node/online"))
		}, []string{"devices/system/node/online"}},
		{"meminfo without MemTotal", "vm-2node", func(t *testing.T, root string) {
			writeFile(t, root, "devices/system/node/node0/meminfo", "Node 0 MemFree: 1 kB\n")
		}, []string{"devices/system/node/node0/meminfo", "no MemTotal"}},
		{"distance row too short", "vm-2node", func(t *testing.T, root string) {
			writeFile(t, root, "devices/system/node/node1/distance", "21\n")
		}, []string{"devices/system/node/node1/distance", "1 distances for 2 online nodes"}},
		{"cpufreq file malformed", "synth-2x4-cpufreq", func(t *testing.T, root string) {
			writeFile(t, root, "devices/system/cpu/cpu3/cpufreq/scaling_max_freq", "fast\n")
		}, []string{"devices/system/cpu/cpu3/cpufreq/scaling_max_freq", "bad frequency"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := tempFixture(t, tc.fixture)
			tc.edit(t, root)
			fs, err := NewFS(root)
			if err != nil {
				t.Fatal(err)
			}
			top, err := fs.Topology()
			if err == nil {
				t.Fatalf("Topology() = %+v, want an error", top)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), root) {
				t.Errorf("error %q does not name the file under %s", err, root)
			}
		})
	}
}

func TestNewFSErrors(t *testing.T) {
	if _, err := NewFS(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("NewFS(missing dir) error = %v, want one naming it", err)
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := NewFS(f); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("NewFS(file) error = %v, want not a directory", err)
	}
	fs, err := NewDefaultFS()
	if err != nil {
		t.Skipf("skipping: no /sys here (%v)", err)
	}
	if fs.Root() != "/sys" {
		t.Errorf("NewDefaultFS().Root() = %q", fs.Root())
	}
}

func TestReadRejectsHugeFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "big")
	if err := os.WriteFile(p, make([]byte, maxFileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	fs, err := NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.read("big"); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("read(%d bytes) error = %v, want a bound error naming the file", maxFileSize+1, err)
	}
	os.WriteFile(filepath.Join(dir, "exact"), make([]byte, 5000), 0o644)
	if b, err := fs.read("exact"); err != nil || len(b) != 5000 {
		t.Fatalf("read(5000 bytes) = %d bytes, %v", len(b), err)
	}
}

// TestLiveSys reads this machine's /sys: it must parse and agree with
// itself (counts are the machine's, so only invariants are checked).
func TestLiveSys(t *testing.T) {
	fs, err := NewDefaultFS()
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	top, err := fs.Topology()
	if err != nil {
		t.Fatal(err)
	}
	if top.Online.Len() == 0 || top.Sockets() == 0 || top.CoresPerSocket() == 0 {
		t.Fatalf("live topology is empty: %+v", top)
	}
	pts := top.SweepPoints()
	if pts[0] != 1 || pts[len(pts)-1] != top.Online.Len() {
		t.Errorf("SweepPoints() = %v, want 1..%d", pts, top.Online.Len())
	}
}
