package vm

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syncord/syncord/numa"
)

// guest returns query-cpus-fast of a sockets x cores guest with one NUMA
// node per socket, like `syncord-host vm` builds.
func guest(sockets, cores int) []CPU {
	var cpus []CPU
	for i := 0; i < sockets*cores; i++ {
		cpus = append(cpus, CPU{Index: i, ThreadID: 5000 + i, Props: CPUProps{
			NodeID: i / cores, SocketID: i / cores, CoreID: i % cores}})
	}
	return cpus
}

// hostOf builds a host whose node n holds sizes[n] consecutive CPUs.
func hostOf(sizes ...int) HostTopology {
	var h HostTopology
	next := 0
	for n, s := range sizes {
		var cpus []int
		for range s {
			cpus = append(cpus, next)
			next++
		}
		h = append(h, HostNode{ID: n, CPUs: numa.NewCPUSet(cpus...)})
	}
	return h
}

// checkPlan verifies the invariants every plan keeps: one row per vCPU in
// index order carrying its thread and guest position, host CPUs that
// exist, host nodes that match, and no shared host CPU unless
// Oversubscribed.
func checkPlan(t *testing.T, p *Plan, cpus []CPU, host HostTopology) {
	t.Helper()
	if len(p.Assignments) != len(cpus) {
		t.Fatalf("%d assignments for %d vCPUs", len(p.Assignments), len(cpus))
	}
	all := host.CPUs()
	used := map[int]int{}
	for i, a := range p.Assignments {
		c := cpus[i]
		if a.VCPU != c.Index || a.ThreadID != c.ThreadID || a.GuestSocket != c.Props.SocketID || a.GuestNode != c.Props.NodeID {
			t.Fatalf("row %d %+v does not match vCPU %+v", i, a, c)
		}
		if !all.Contains(a.HostCPU) || host.NodeOf(a.HostCPU) != a.HostNode {
			t.Fatalf("row %d: host CPU %d node %d is not on the host", i, a.HostCPU, a.HostNode)
		}
		used[a.HostCPU]++
	}
	shared := len(used) < len(cpus)
	if shared != p.Oversubscribed {
		t.Fatalf("%d distinct host CPUs for %d vCPUs but Oversubscribed=%v", len(used), len(cpus), p.Oversubscribed)
	}
}

// socketNodes returns, per guest socket, the set of host nodes it uses.
func socketNodes(p *Plan) map[int]map[int]bool {
	m := map[int]map[int]bool{}
	for _, a := range p.Assignments {
		if m[a.GuestSocket] == nil {
			m[a.GuestSocket] = map[int]bool{}
		}
		m[a.GuestSocket][a.HostNode] = true
	}
	return m
}

func TestPlanArtifactGuest(t *testing.T) {
	g := guest(8, 28) // the artifact's 224-vCPU guest
	for _, tc := range []struct {
		name       string
		host       HostTopology
		opt        PlanOptions
		wantErr    string
		nodeOf     func(socket int) int // the one host node of each socket; nil: not checked
		spread     []int                // sockets expected to span several nodes
		oversub    bool
		wantNotes  int
		firstCPUOf map[int]int // guest socket -> host CPU of its first vCPU
	}{
		{name: "1 node 224 CPUs", host: hostOf(224), nodeOf: func(int) int { return 0 },
			firstCPUOf: map[int]int{0: 0, 1: 28, 7: 196}},
		{name: "1 node 256 CPUs", host: hostOf(256), nodeOf: func(int) int { return 0 }},
		{name: "1 node 64 CPUs refused", host: hostOf(64), wantErr: "224 vCPUs need 224 host CPUs, the host has 64"},
		{name: "1 node 64 CPUs oversubscribed", host: hostOf(64), opt: PlanOptions{AllowOversubscribe: true},
			nodeOf: func(int) int { return 0 }, oversub: true, wantNotes: 1},
		{name: "2 nodes x 112", host: hostOf(112, 112), nodeOf: func(s int) int { return s / 4 },
			firstCPUOf: map[int]int{0: 0, 3: 84, 4: 112, 7: 196}},
		{name: "2 nodes uneven 100+124", host: hostOf(100, 124),
			// sockets 0-3 prefer node 0, 4-7 node 1. Node 0 takes 0-2
			// (84 CPUs, 16 left), socket 3 moves to node 1, which then
			// holds 3-6 (112, 12 left); socket 7 spans both.
			nodeOf: func(s int) int {
				switch {
				case s < 3:
					return 0
				case s < 7:
					return 1
				}
				return -1
			}, spread: []int{7}, wantNotes: 1},
		{name: "2 nodes x 16 oversubscribed", host: hostOf(16, 16), opt: PlanOptions{AllowOversubscribe: true},
			nodeOf: func(s int) int { return s / 4 }, oversub: true, wantNotes: 1},
		{name: "8 nodes x 28", host: hostOf(28, 28, 28, 28, 28, 28, 28, 28), nodeOf: func(s int) int { return s },
			firstCPUOf: map[int]int{0: 0, 5: 140, 7: 196}},
		{name: "16 nodes x 28", host: hostOf(28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28), nodeOf: func(s int) int { return s }},
		{name: "4 nodes x 56", host: hostOf(56, 56, 56, 56), nodeOf: func(s int) int { return s / 2 },
			firstCPUOf: map[int]int{1: 28, 2: 56, 7: 196}},
		{name: "8 nodes x 32", host: hostOf(32, 32, 32, 32, 32, 32, 32, 32), nodeOf: func(s int) int { return s },
			firstCPUOf: map[int]int{1: 32, 7: 224}},
		{name: "10 nodes x 24 spreads", host: hostOf(24, 24, 24, 24, 24, 24, 24, 24, 24, 24),
			spread: []int{0, 1, 2, 3, 4, 5, 6, 7}, wantNotes: 8},
		{name: "8 nodes x 8 refused", host: hostOf(8, 8, 8, 8, 8, 8, 8, 8), wantErr: "the host has 64"},
		{name: "identity 224", host: hostOf(28, 28, 28, 28, 28, 28, 28, 28), opt: PlanOptions{Kind: PlanIdentity},
			nodeOf: func(s int) int { return s }, firstCPUOf: map[int]int{3: 84}},
		{name: "identity on 2 nodes x 56 refused", host: hostOf(56, 56), opt: PlanOptions{Kind: PlanIdentity},
			wantErr: "vCPU 112 needs host CPU 112"},
		{name: "identity on 1 node oversubscribed", host: hostOf(112), opt: PlanOptions{Kind: PlanIdentity, AllowOversubscribe: true},
			oversub: true, wantNotes: 1, firstCPUOf: map[int]int{4: 0, 5: 28}},
		{name: "unknown plan", host: hostOf(224), opt: PlanOptions{Kind: "random"}, wantErr: "unknown plan"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPlan(g, tc.host, tc.opt)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkPlan(t, p, g, tc.host)
			if p.Oversubscribed != tc.oversub {
				t.Errorf("Oversubscribed = %v, want %v", p.Oversubscribed, tc.oversub)
			}
			if len(p.Notes) != tc.wantNotes {
				t.Errorf("notes %q, want %d", p.Notes, tc.wantNotes)
			}
			nodes := socketNodes(p)
			for s := 0; s < 8; s++ {
				if tc.nodeOf != nil && tc.nodeOf(s) >= 0 {
					if len(nodes[s]) != 1 || !nodes[s][tc.nodeOf(s)] {
						t.Errorf("guest socket %d on host nodes %v, want only node %d", s, nodes[s], tc.nodeOf(s))
					}
				}
			}
			for _, s := range tc.spread {
				if len(nodes[s]) < 2 {
					t.Errorf("guest socket %d on host nodes %v, want it spread", s, nodes[s])
				}
				if !strings.Contains(strings.Join(p.Notes, "\n"), fmt.Sprintf("guest socket %d (28 vCPUs) does not fit", s)) {
					t.Errorf("no note for spread socket %d: %q", s, p.Notes)
				}
			}
			for s, cpu := range tc.firstCPUOf {
				if got := p.Assignments[s*28].HostCPU; got != cpu {
					t.Errorf("guest socket %d starts on host CPU %d, want %d", s, got, cpu)
				}
			}
		})
	}
}

func TestPlanSmallGuests(t *testing.T) {
	g := guest(2, 2)
	// The e2e host: 2 CPUs, one node; identity with oversubscription maps
	// vCPU i to CPU i mod 2.
	p, err := NewPlan(g, hostOf(2), PlanOptions{Kind: PlanIdentity, AllowOversubscribe: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range p.Assignments {
		if a.HostCPU != i%2 {
			t.Errorf("vCPU %d on CPU %d, want %d", i, a.HostCPU, i%2)
		}
	}
	if _, err := NewPlan(g, hostOf(2), PlanOptions{Kind: PlanIdentity}); err == nil {
		t.Error("4 vCPUs on 2 host CPUs planned without AllowOversubscribe")
	}
	// Host CPUs with holes (offline CPU 1): identity uses what is online.
	holes := HostTopology{{ID: 0, CPUs: numa.NewCPUSet(0, 2, 3)}, {ID: 1, CPUs: numa.NewCPUSet(4, 5)}}
	if _, err := NewPlan(g, holes, PlanOptions{Kind: PlanIdentity}); err == nil || !strings.Contains(err.Error(), "host CPU 1") {
		t.Errorf("identity onto an offline CPU: %v", err)
	}
	p, err = NewPlan(g, holes, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, p, g, holes)
	got := fmt.Sprint(p.Assignments[0].HostCPU, p.Assignments[1].HostCPU, p.Assignments[2].HostCPU, p.Assignments[3].HostCPU)
	// socket 0 on node 0 (0,2), socket 1 on node 1 (4,5).
	if got != "0 2 4 5" {
		t.Errorf("plan %s, want 0 2 4 5", got)
	}
	// Without socket props the node id groups; without either, one group.
	bare := []CPU{{Index: 0, ThreadID: 10, Props: CPUProps{-1, -1, -1, -1}}, {Index: 1, ThreadID: 11, Props: CPUProps{-1, -1, -1, -1}}}
	p, err = NewPlan(bare, hostOf(1, 2), PlanOptions{}) // node 0 too small
	if err != nil {
		t.Fatal(err)
	}
	if p.Assignments[0].HostNode != 1 || p.Assignments[1].HostNode != 1 {
		t.Errorf("propless guest not kept on the node that fits: %+v", p.Assignments)
	}
	// Threads shared between vCPUs (TCG thread=single) cannot be pinned.
	shared := []CPU{{Index: 0, ThreadID: 7}, {Index: 1, ThreadID: 7}}
	if _, err := NewPlan(shared, hostOf(4), PlanOptions{}); err == nil || !strings.Contains(err.Error(), "share host thread") {
		t.Errorf("shared thread: %v", err)
	}
	if _, err := NewPlan(nil, hostOf(4), PlanOptions{}); err == nil {
		t.Error("empty guest planned")
	}
}

func TestPlanTable(t *testing.T) {
	p, err := NewPlan(guest(2, 2), hostOf(2), PlanOptions{Kind: PlanIdentity, AllowOversubscribe: true})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := p.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	want := `vcpu  thread-id  guest-socket  guest-node  host-cpu  host-node
0     5000       0             0           0         0
1     5001       0             0           1         0
2     5002       1             1           0         0
3     5003       1             1           1         0
note: oversubscribed: 4 vCPUs on 2 host CPUs (up to 2 vCPUs per host CPU)
`
	if b.String() != want {
		t.Errorf("table\n%s\nwant\n%s", b.String(), want)
	}
}

func TestReadHostTopology(t *testing.T) {
	for _, tc := range []struct{ fixture, want string }{
		{"synth-8x28", "[{0 0-27} {1 28-55} {2 56-83} {3 84-111} {4 112-139} {5 140-167} {6 168-195} {7 196-223}]"},
		{"synth-2x4-cpufreq", "[{0 0-3} {1 4-7}]"},
		{"host", "[{0 0-1}]"},
		{"host-offline", "[{0 0}]"},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			h, err := ReadHostTopology(filepath.Join("..", "numa", "testdata", tc.fixture))
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(h); got != tc.want {
				t.Errorf("topology %s, want %s", got, tc.want)
			}
		})
	}
	if _, err := ReadHostTopology(t.TempDir()); err == nil {
		t.Error("empty root read")
	}
	live, err := ReadHostTopology("/sys")
	if err != nil {
		t.Fatal(err)
	}
	if live.CPUs().Len() == 0 {
		t.Error("live host has no CPUs")
	}
}

// The artifact's guest planned onto the artifact's own 8x28 layout read
// from the numa fixture: every socket on its own node, vCPU i on CPU i.
func TestPlanOntoSynth8x28Fixture(t *testing.T) {
	h, err := ReadHostTopology(filepath.Join("..", "numa", "testdata", "synth-8x28"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(guest(8, 28), h, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range p.Assignments {
		if a.HostCPU != a.VCPU || a.HostNode != a.GuestNode {
			t.Fatalf("row %+v: want vCPU i on CPU i, node = guest node", a)
		}
	}
}

func TestHostNodesFor(t *testing.T) {
	for _, tc := range []struct {
		sockets int
		host    HostTopology
		want    string
	}{
		{8, hostOf(28, 28, 28, 28, 28, 28, 28, 28), "[0 1 2 3 4 5 6 7]"},
		{8, hostOf(112, 112), "[0 0 0 0 1 1 1 1]"},
		{8, hostOf(224), "[0 0 0 0 0 0 0 0]"},
		{2, hostOf(4, 4, 4, 4), "[0 1]"},
		{2, HostTopology{{ID: 3, CPUs: numa.NewCPUSet(0)}, {ID: 5, CPUs: numa.NewCPUSet(1)}}, "[3 5]"},
	} {
		if got := fmt.Sprint(HostNodesFor(tc.sockets, tc.host)); got != tc.want {
			t.Errorf("HostNodesFor(%d, %v) = %s, want %s", tc.sockets, tc.host, got, tc.want)
		}
	}
	// The binding and the plan agree: socket k's vCPUs land on node k's pick.
	g := guest(8, 28)
	h := hostOf(112, 112)
	p, err := NewPlan(g, h, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nodes := HostNodesFor(8, h)
	for _, a := range p.Assignments {
		if a.HostNode != nodes[a.GuestSocket] {
			t.Fatalf("vCPU %d on host node %d, memory of its node on %d", a.VCPU, a.HostNode, nodes[a.GuestSocket])
		}
	}
}
