package numa

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Topology is the CPU and NUMA layout read from sysfs by FS.Topology.
type Topology struct {
	// Online, Possible and Present are /sys/devices/system/cpu/{online,
	// possible,present}.
	Online   CPUSet
	Possible CPUSet
	Present  CPUSet
	// CPUs holds every present CPU, ascending by ID; offline ones too.
	CPUs []CPU
	// Nodes holds every online node, ascending by ID. Without
	// /sys/devices/system/node (a kernel without CONFIG_NUMA) it is one
	// node 0 holding every online CPU, with MemTotal 0 (unknown).
	Nodes []Node
	// NUMA is false when the tree has no /sys/devices/system/node.
	NUMA bool
}

// CPU is one present CPU. Socket, Die, Core and ThreadSiblings come from
// cpuN/topology, which the kernel removes while a CPU is offline; they are
// -1 (and empty) then.
type CPU struct {
	ID     int  `json:"cpu"`
	Node   int  `json:"node"`
	Socket int  `json:"socket"`
	Die    int  `json:"die"`
	Core   int  `json:"core"`
	Online bool `json:"online"`
	// ThreadSiblings is topology/thread_siblings_list: the CPUs sharing
	// this CPU's core (itself included).
	ThreadSiblings CPUSet `json:"thread_siblings"`
	// Freq is cpuN/cpufreq, nil when the CPU has none.
	Freq *CPUFreq `json:"cpufreq,omitempty"`
}

// Node is one online NUMA node.
type Node struct {
	ID int `json:"node"`
	// CPUs is nodeN/cpulist: the node's online CPUs.
	CPUs CPUSet `json:"cpus"`
	// MemTotal is MemTotal of nodeN/meminfo in bytes.
	MemTotal uint64 `json:"mem_total_bytes"`
	// Distances is nodeN/distance: the distance to every online node, in
	// the order of Topology.Nodes.
	Distances []int `json:"distances"`
}

// CPUFreq is the cpufreq state of one CPU, read from
// /sys/devices/system/cpu/cpuN/cpufreq/. Frequencies are in kHz.
type CPUFreq struct {
	Driver     string `json:"driver"`
	ScalingMin uint64 `json:"scaling_min_khz"`
	ScalingMax uint64 `json:"scaling_max_khz"`
	// ScalingCur is 0 when scaling_cur_freq is absent.
	ScalingCur uint64 `json:"scaling_cur_khz"`
	CPUInfoMin uint64 `json:"cpuinfo_min_khz"`
	CPUInfoMax uint64 `json:"cpuinfo_max_khz"`
	// Available is scaling_available_frequencies; drivers such as
	// intel_pstate do not provide it (nil then).
	Available []uint64 `json:"available_khz,omitempty"`
}

const (
	cpuDir  = "devices/system/cpu"
	nodeDir = "devices/system/node"
)

// Topology reads /sys/devices/system/cpu/{online,possible,present},
// /sys/devices/system/node/node*/{cpulist,meminfo,distance} and, for every
// present CPU, cpuN/topology/{physical_package_id,die_id,core_id,
// thread_siblings_list}, the cpuN/nodeM link when the node cpulists do not
// name it (offline CPUs) and cpuN/cpufreq/* where present.
func (fs *FS) Topology() (*Topology, error) {
	t := &Topology{}
	var err error
	if t.Online, err = readParsed(fs, cpuDir+"/online", parseCPUListFile); err != nil {
		return nil, fs.hint(err)
	}
	if t.Possible, err = readParsed(fs, cpuDir+"/possible", parseCPUListFile); err != nil {
		return nil, err
	}
	if t.Present, err = readParsed(fs, cpuDir+"/present", parseCPUListFile); err != nil {
		return nil, err
	}
	if err := fs.readNodes(t); err != nil {
		return nil, err
	}
	nodeOf := make(map[int]int, t.Online.Len())
	for _, n := range t.Nodes {
		for _, c := range n.CPUs {
			nodeOf[c] = n.ID
		}
	}
	t.CPUs = make([]CPU, 0, t.Present.Len())
	for _, id := range t.Present {
		c, err := fs.readCPU(t, id, nodeOf)
		if err != nil {
			return nil, err
		}
		t.CPUs = append(t.CPUs, c)
	}
	return t, nil
}

// OnlineCPUs reads /sys/devices/system/cpu/online: the CPUs the kernel
// schedules on now.
func (fs *FS) OnlineCPUs() (CPUSet, error) {
	set, err := readParsed(fs, cpuDir+"/online", parseCPUListFile)
	if err != nil {
		return nil, fs.hint(err)
	}
	return set, nil
}

// hint adds a remedy to a failure to read the first file.
func (fs *FS) hint(err error) error {
	if isNotExist(err) {
		return fmt.Errorf("%w (is %s a sysfs tree? try: mount -t sysfs sysfs /sys)", err, fs.root)
	}
	return err
}

func (fs *FS) readNodes(t *Topology) error {
	online, err := readParsed(fs, nodeDir+"/online", parseCPUListFile)
	if isNotExist(err) {
		if _, serr := os.Stat(fs.path(nodeDir)); os.IsNotExist(serr) {
			// No CONFIG_NUMA: one node holding every online CPU.
			t.Nodes = []Node{{ID: 0, CPUs: append(CPUSet{}, t.Online...), Distances: []int{10}}}
			return nil
		}
	}
	if err != nil {
		return err
	}
	t.NUMA = true
	t.Nodes = make([]Node, 0, online.Len())
	for _, id := range online {
		dir := nodeDir + "/node" + strconv.Itoa(id)
		n := Node{ID: id}
		if n.CPUs, err = readParsed(fs, dir+"/cpulist", parseCPUListFile); err != nil {
			return err
		}
		if n.MemTotal, err = readParsed(fs, dir+"/meminfo", parseMemTotal); err != nil {
			return err
		}
		if n.Distances, err = readParsed(fs, dir+"/distance", parseDistances); err != nil {
			return err
		}
		if len(n.Distances) != online.Len() {
			return fs.parseErr(dir+"/distance", fmt.Errorf("%d distances for %d online nodes (%s)", len(n.Distances), online.Len(), online))
		}
		t.Nodes = append(t.Nodes, n)
	}
	return nil
}

func (fs *FS) readCPU(t *Topology, id int, nodeOf map[int]int) (CPU, error) {
	dir := cpuDir + "/cpu" + strconv.Itoa(id)
	c := CPU{ID: id, Node: -1, Socket: -1, Die: -1, Core: -1, Online: t.Online.Contains(id), ThreadSiblings: CPUSet{}}
	if n, ok := nodeOf[id]; ok {
		c.Node = n
	} else if !t.NUMA {
		c.Node = 0
	} else {
		n, err := fs.nodeLink(dir)
		if err != nil {
			return c, err
		}
		c.Node = n
	}
	if c.Online {
		var err error
		top := dir + "/topology/"
		if c.Socket, err = readParsed(fs, top+"physical_package_id", parseInt); err != nil {
			return c, err
		}
		// die_id appeared in Linux 5.2; before, every package was one die.
		if c.Die, err = readParsed(fs, top+"die_id", parseInt); isNotExist(err) {
			c.Die = 0
		} else if err != nil {
			return c, err
		}
		if c.Core, err = readParsed(fs, top+"core_id", parseInt); err != nil {
			return c, err
		}
		if c.ThreadSiblings, err = readParsed(fs, top+"thread_siblings_list", parseCPUListFile); err != nil {
			return c, err
		}
	}
	f, err := fs.CPUFreq(id)
	if err != nil {
		return c, err
	}
	c.Freq = f
	return c, nil
}

// nodeLink finds the cpuN/nodeM link of a CPU that no node cpulist names
// (an offline CPU); -1 when there is none.
func (fs *FS) nodeLink(dir string) (int, error) {
	ents, err := os.ReadDir(fs.path(dir))
	if err != nil {
		if isNotExist(err) {
			return -1, nil
		}
		return -1, err
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), "node")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(rest)
		if err != nil || n < 0 {
			continue
		}
		if fs.rec != nil {
			fs.rec.link(dir+"/"+e.Name(), "../../node/"+e.Name())
		}
		return n, nil
	}
	return -1, nil
}

// CPU returns the present CPU id, or nil.
func (t *Topology) CPU(id int) *CPU {
	i := sort.Search(len(t.CPUs), func(i int) bool { return t.CPUs[i].ID >= id })
	if i < len(t.CPUs) && t.CPUs[i].ID == id {
		return &t.CPUs[i]
	}
	return nil
}

// Sockets is the number of distinct physical packages of the online CPUs.
func (t *Topology) Sockets() int {
	seen := map[int]bool{}
	for _, c := range t.CPUs {
		if c.Online {
			seen[c.Socket] = true
		}
	}
	return len(seen)
}

// CoresPerSocket is runtest.py's cores_per_socket: the present CPUs divided
// by the nodes holding them (integer division). runtest.py takes both from
// lscpu -e, so a "core" is a logical CPU and a "socket" is a NUMA node; the
// artifact VM has one node per socket. It is at least 1 when any CPU is
// present. Unlike RuntestHeader, an offline CPU counts for the node of its
// cpuN/nodeM link (and for no extra node when it has none).
func (t *Topology) CoresPerSocket() int {
	if len(t.CPUs) == 0 {
		return 0
	}
	nodes := map[int]bool{}
	for _, c := range t.CPUs {
		if c.Node >= 0 {
			nodes[c.Node] = true
		}
	}
	return len(t.CPUs) / max(len(nodes), 1)
}

// SMT reports whether any online CPU shares its core with another
// (thread_siblings_list names more than one CPU).
func (t *Topology) SMT() bool {
	for _, c := range t.CPUs {
		if c.Online && c.ThreadSiblings.Len() > 1 {
			return true
		}
	}
	return false
}

// Role is the AMP role of cpu (SYNCORD-ABI.md section 3) with this machine's
// cores per socket.
func (t *Topology) Role(cpu int) Role { return RoleOf(cpu, max(t.CoresPerSocket(), 1)) }

// Placement returns the CPU of each of n tasks on this machine.
func (t *Topology) Placement(n int) ([]int, error) { return Placement(n, t.CoresPerSocket()) }

// SweepPoints returns runtest.py's core counts for this machine: the online
// CPUs with CoresPerSocket.
func (t *Topology) SweepPoints() []int { return SweepPoints(t.Online.Len(), t.CoresPerSocket()) }

// FastSlow splits the CPUs of a node into its fast and slow halves.
func (t *Topology) FastSlow(n Node) (fast, slow CPUSet) {
	cps := max(t.CoresPerSocket(), 1)
	fast, slow = CPUSet{}, CPUSet{}
	for _, c := range n.CPUs {
		if IsFast(c, cps) {
			fast = append(fast, c)
		} else {
			slow = append(slow, c)
		}
	}
	return fast, slow
}

// RuntestHeader is the triple runtest.py prints first:
// "(num_cores, num_nodes, cores_per_socket) = (%d, %d, %d)".
type RuntestHeader struct {
	NumCores       int `json:"num_cores"`
	NumNodes       int `json:"num_nodes"`
	CoresPerSocket int `json:"cores_per_socket"`
}

func (h RuntestHeader) String() string {
	return fmt.Sprintf("(num_cores, num_nodes, cores_per_socket) = (%d, %d, %d)", h.NumCores, h.NumNodes, h.CoresPerSocket)
}

// RuntestHeader computes the header as runtest.py does:
//
//	nr_cores = `lscpu -e=cpu | wc -l` - 1          (rows: present CPUs)
//	nr_nodes = `lscpu -e=node | sort -u | wc -l` - 1 (distinct NODE values)
//	cores_per_socket = nr_cores / nr_nodes          (printed with %d)
//
// lscpu takes a CPU's node from nodeN/cpumap, which lists online CPUs only,
// and prints "-" for a CPU in no node; "-" then counts as one more node. So
// offline CPUs add a node here (as they did for runtest.py), and a kernel
// without NUMA is one node.
func (t *Topology) RuntestHeader() RuntestHeader {
	h := RuntestHeader{NumCores: len(t.CPUs)}
	labels := map[int]bool{}
	for _, c := range t.CPUs {
		node := -1 // lscpu's "-"
		if t.NUMA {
			for _, n := range t.Nodes {
				if n.CPUs.Contains(c.ID) {
					node = n.ID
					break
				}
			}
		}
		labels[node] = true
	}
	h.NumNodes = len(labels)
	if h.NumNodes > 0 {
		h.CoresPerSocket = h.NumCores / h.NumNodes
	}
	return h
}
