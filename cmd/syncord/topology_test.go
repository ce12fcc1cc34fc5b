package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/syncord/syncord/numa"
)

const numaTestdata = "../../numa/testdata/"

func runSyncord(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), &Env{Stdout: &out, Stderr: &errb}, args)
	return out.String(), errb.String(), code
}

// topologyJSON is the documented shape of `syncord topology --json`,
// decoded without the numa types so the field names are checked.
type topologyJSON struct {
	CPUs []struct {
		CPU    int  `json:"cpu"`
		Node   int  `json:"node"`
		Socket int  `json:"socket"`
		Core   int  `json:"core"`
		Online bool `json:"online"`
	} `json:"cpus"`
	Nodes []struct {
		Node          int    `json:"node"`
		CPUs          []int  `json:"cpus"`
		MemTotalBytes uint64 `json:"mem_total_bytes"`
		Distances     []int  `json:"distances"`
	} `json:"nodes"`
	Sockets        int   `json:"sockets"`
	CoresPerSocket int   `json:"cores_per_socket"`
	SMT            bool  `json:"smt"`
	SweepPoints    []int `json:"sweep_points"`
	Runtest        struct {
		NumCores       int `json:"num_cores"`
		NumNodes       int `json:"num_nodes"`
		CoresPerSocket int `json:"cores_per_socket"`
	} `json:"runtest"`
}

func topologyOf(t *testing.T, root string) topologyJSON {
	t.Helper()
	out, errOut, code := runSyncord(t, "topology", "--json", "--root", root)
	if code != 0 {
		t.Fatalf("syncord topology --json --root %s: exit %d, %s", root, code, errOut)
	}
	var got topologyJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not the documented JSON: %v\n%s", err, out)
	}
	return got
}

func TestTopologyJSON8x28(t *testing.T) {
	got := topologyOf(t, numaTestdata+"synth-8x28")
	if len(got.CPUs) != 224 || len(got.Nodes) != 8 || got.Sockets != 8 || got.CoresPerSocket != 28 || got.SMT {
		t.Fatalf("8x28: %d cpus, %d nodes, %d sockets, %d cores/socket, smt %v", len(got.CPUs), len(got.Nodes), got.Sockets, got.CoresPerSocket, got.SMT)
	}
	for _, c := range got.CPUs {
		if !c.Online || c.Node != c.CPU/28 || c.Socket != c.CPU/28 || c.Core != c.CPU%28 {
			t.Fatalf("cpu entry %+v, want node=socket=%d core=%d online", c, c.CPU/28, c.CPU%28)
		}
	}
	for i, n := range got.Nodes {
		if n.Node != i || len(n.CPUs) != 28 || n.CPUs[0] != 28*i || n.MemTotalBytes != 16<<30 || len(n.Distances) != 8 {
			t.Fatalf("node entry %+v", n)
		}
	}
	if want := []int{1, 2, 4, 8, 16, 28, 56, 84, 112, 140, 168, 196, 224}; !reflect.DeepEqual(got.SweepPoints, want) {
		t.Errorf("sweep_points = %v, want %v", got.SweepPoints, want)
	}
	if got.Runtest.NumCores != 224 || got.Runtest.NumNodes != 8 || got.Runtest.CoresPerSocket != 28 {
		t.Errorf("runtest = %+v", got.Runtest)
	}
}

func TestTopologyJSONFixtures(t *testing.T) {
	for _, tc := range []struct {
		fixture         string
		cpus, nodes     int
		sockets, cps    int
		smt             bool
		offline         []int
		runtestNumNodes int
	}{
		{"host", 2, 1, 1, 2, false, nil, 1},
		{"host-smt", 2, 1, 1, 2, true, nil, 1},
		{"host-offline", 2, 1, 1, 2, false, []int{1}, 2},
		{"synth-2x4-cpufreq", 8, 2, 2, 4, false, nil, 2},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			got := topologyOf(t, numaTestdata+tc.fixture)
			var offline []int
			for _, c := range got.CPUs {
				if !c.Online {
					offline = append(offline, c.CPU)
				}
			}
			if len(got.CPUs) != tc.cpus || len(got.Nodes) != tc.nodes || got.Sockets != tc.sockets ||
				got.CoresPerSocket != tc.cps || got.SMT != tc.smt || !reflect.DeepEqual(offline, tc.offline) ||
				got.Runtest.NumNodes != tc.runtestNumNodes {
				t.Fatalf("%s: %+v", tc.fixture, got)
			}
		})
	}
}

func TestTopologyHuman(t *testing.T) {
	out, errOut, code := runSyncord(t, "topology", "--root", numaTestdata+"synth-2x4-cpufreq")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"8 online (0-7)",
		"sockets:     2, 4 cores per socket, SMT off",
		"node 1     cpus 4-7          4.0 GiB    fast 4-5        slow 6-7",
		"sweep:       1,2,4,8",
		"(num_cores, num_nodes, cores_per_socket) = (8, 2, 4)",
		"acpi-cpufreq on 8 CPUs, 1.20-2.20 GHz",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = runSyncord(t, "topology", "--root", numaTestdata+"host-offline")
	if !strings.Contains(out, "offline:     1 (node 0)") {
		t.Errorf("offline CPU not shown:\n%s", out)
	}
}

func TestTopologyCapture(t *testing.T) {
	dir := t.TempDir()
	if _, errOut, code := runSyncord(t, "topology", "--root", numaTestdata+"host-offline", "--capture", dir); code != 0 {
		t.Fatalf("capture: exit %d: %s", code, errOut)
	}
	if a, b := topologyOf(t, numaTestdata+"host-offline"), topologyOf(t, dir); !reflect.DeepEqual(a, b) {
		t.Fatalf("captured tree reads differently:\n%+v\n%+v", a, b)
	}
	out, errOut, code := runSyncord(t, "topology", "--root", numaTestdata+"host", "--capture", "-")
	if code != 0 {
		t.Fatalf("capture -: exit %d: %s", code, errOut)
	}
	snap, err := numa.ReadSnapshot(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if snap.Files["devices/system/cpu/online"] != "0-1\n" {
		t.Errorf("snapshot online = %q", snap.Files["devices/system/cpu/online"])
	}
}

func TestTopologyErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nosys")
	_, errOut, code := runSyncord(t, "topology", "--root", missing)
	if code != 1 || !strings.Contains(errOut, missing) {
		t.Errorf("missing root: exit %d, %q", code, errOut)
	}
	empty := t.TempDir()
	_, errOut, code = runSyncord(t, "topology", "--root", empty)
	if code != 1 || !strings.Contains(errOut, empty+"/devices/system/cpu/online") || !strings.Contains(errOut, "mount -t sysfs") {
		t.Errorf("empty root: exit %d, %q", code, errOut)
	}
	if _, _, code := runSyncord(t, "topology", "--bogus"); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
	if _, _, code := runSyncord(t, "topology", "extra"); code != 2 {
		t.Errorf("extra argument: exit %d, want 2", code)
	}
}

// BenchmarkTopologyColdStart execs a freshly built syncord binary running
// `syncord topology` on the live /sys, as a user does: process start, Go
// runtime init, the sysfs reads and the print. It reports the median.
func BenchmarkTopologyColdStart(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "syncord")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	var times []time.Duration
	for b.Loop() {
		start := time.Now()
		if out, err := exec.Command(bin, "topology").CombinedOutput(); err != nil {
			b.Fatalf("syncord topology: %v\n%s", err, out)
		}
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
}
