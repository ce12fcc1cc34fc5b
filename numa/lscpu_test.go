package numa

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRuntestHeaderMatchesLscpu computes runtest.py's header the way
// runtest.py does, with util-linux's lscpu -e run on each fixture through
// --sysroot, and compares it with RuntestHeader:
//
//	nr_cores = `lscpu -e=cpu | wc -l` - 1
//	nr_nodes = `lscpu -e=node | sort -u | wc -l` - 1
//	cores_per_socket = nr_cores / nr_nodes
//
// lscpu also needs /proc/cpuinfo (one entry per online CPU) and
// nodeN/cpumap, which the sysroot gets from the fixture's cpulists.
func TestRuntestHeaderMatchesLscpu(t *testing.T) {
	lscpu, err := exec.LookPath("lscpu")
	if err != nil {
		t.Skip("skipping: no lscpu (apt-get install util-linux)")
	}
	for _, name := range []string{"host", "host-smt", "host-offline", "synth-2x4-cpufreq", "synth-8x28", "vm-2node", "vm-4node", "vm-2node-offline", "vm-2node-smt"} {
		t.Run(name, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join("testdata", name)); os.IsNotExist(err) {
				t.Skipf("skipping: no fixture testdata/%s (make fixtures)", name)
			}
			top, err := fixture(t, name).Topology()
			if err != nil {
				t.Fatal(err)
			}
			root := lscpuSysroot(t, name, top)
			rows := func(col string) []string {
				out, err := exec.Command(lscpu, "-e="+col, "--sysroot", root).CombinedOutput()
				if err != nil {
					t.Fatalf("lscpu -e=%s --sysroot %s: %v\n%s", col, root, err, out)
				}
				return strings.Split(strings.TrimRight(string(out), "\n"), "\n")
			}
			cpuRows := rows("cpu")
			nodes := map[string]bool{}
			for _, r := range rows("node") {
				nodes[strings.TrimSpace(r)] = true
			}
			want := RuntestHeader{NumCores: len(cpuRows) - 1, NumNodes: len(nodes) - 1}
			want.CoresPerSocket = want.NumCores / want.NumNodes
			if got := top.RuntestHeader(); got != want {
				t.Fatalf("RuntestHeader() = %v, lscpu gives %v", got, want)
			}
		})
	}
}

// lscpuSysroot builds a tree lscpu --sysroot accepts: sys/devices/system/cpu
// is the fixture's, node/ has nodeN/cpumap masks, proc/cpuinfo lists the
// online CPUs.
func lscpuSysroot(t *testing.T, name string, top *Topology) string {
	t.Helper()
	root := t.TempDir()
	abs, err := filepath.Abs(filepath.Join("testdata", name, "devices/system/cpu"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "sys/devices/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(abs, filepath.Join(root, "sys/devices/system/cpu")); err != nil {
		t.Fatal(err)
	}
	if top.NUMA {
		words := (top.Possible[len(top.Possible)-1] + 32) / 32
		for _, n := range top.Nodes {
			writeFile(t, root, fmt.Sprintf("sys/devices/system/node/node%d/cpumap", n.ID), cpumap(n.CPUs, words))
		}
	}
	var b strings.Builder
	for _, c := range top.Online {
		fmt.Fprintf(&b, "processor\t: %d\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n\n", c)
	}
	writeFile(t, root, "proc/cpuinfo", b.String())
	return root
}

// cpumap formats s as the kernel's cpumap: 32-bit hex words, most
// significant first, separated by commas.
func cpumap(s CPUSet, words int) string {
	w := make([]uint32, words)
	for _, c := range s {
		w[c/32] |= 1 << (c % 32)
	}
	parts := make([]string, words)
	for i := range w {
		parts[words-1-i] = fmt.Sprintf("%08x", w[i])
	}
	return strings.Join(parts, ",") + "\n"
}
