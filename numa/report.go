package numa

// Report is the topology with everything derived from it, as
// `syncord topology --json` prints it.
type Report struct {
	Online         CPUSet        `json:"online"`
	Possible       CPUSet        `json:"possible"`
	Present        CPUSet        `json:"present"`
	CPUs           []CPUReport   `json:"cpus"`
	Nodes          []NodeReport  `json:"nodes"`
	NUMA           bool          `json:"numa"`
	Sockets        int           `json:"sockets"`
	CoresPerSocket int           `json:"cores_per_socket"`
	SMT            bool          `json:"smt"`
	SweepPoints    []int         `json:"sweep_points"`
	Runtest        RuntestHeader `json:"runtest"`
}

// CPUReport is a CPU with its AMP role ("fast" or "slow").
type CPUReport struct {
	CPU
	Role string `json:"role"`
}

// NodeReport is a node with the fast and slow halves of its CPUs.
type NodeReport struct {
	Node
	Fast CPUSet `json:"fast"`
	Slow CPUSet `json:"slow"`
}

// Report derives the report of t.
func (t *Topology) Report() *Report {
	r := &Report{
		Online: t.Online, Possible: t.Possible, Present: t.Present,
		NUMA: t.NUMA, Sockets: t.Sockets(), CoresPerSocket: t.CoresPerSocket(), SMT: t.SMT(),
		SweepPoints: t.SweepPoints(), Runtest: t.RuntestHeader(),
		CPUs:  make([]CPUReport, len(t.CPUs)),
		Nodes: make([]NodeReport, len(t.Nodes)),
	}
	if r.SweepPoints == nil {
		r.SweepPoints = []int{}
	}
	for i, c := range t.CPUs {
		r.CPUs[i] = CPUReport{CPU: c, Role: t.Role(c.ID).String()}
	}
	for i, n := range t.Nodes {
		fast, slow := t.FastSlow(n)
		r.Nodes[i] = NodeReport{Node: n, Fast: fast, Slow: slow}
	}
	return r
}
