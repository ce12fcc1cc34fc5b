package vm

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/syncord/syncord/internal/setting"
	"github.com/syncord/syncord/numa"
)

// HostNode is one NUMA node of the host and its online CPUs.
type HostNode struct {
	ID   int         `json:"id"`
	CPUs numa.CPUSet `json:"cpus"`
}

// HostTopology is the host's NUMA nodes, ordered by id.
type HostTopology []HostNode

// CPUs returns every CPU of the host, ascending.
func (h HostTopology) CPUs() numa.CPUSet {
	var all []int
	for _, n := range h {
		all = append(all, n.CPUs...)
	}
	return numa.NewCPUSet(all...)
}

// NodeOf returns the node holding cpu, or -1.
func (h HostTopology) NodeOf(cpu int) int {
	for _, n := range h {
		if n.CPUs.Contains(cpu) {
			return n.ID
		}
	}
	return -1
}

// ReadHostTopology reads the host's NUMA nodes and their online CPUs from
// the sysfs tree at sysRoot (normally /sys) with numa.FS.Topology:
// devices/system/node/nodeN/cpulist, or one node 0 holding
// devices/system/cpu/online on a kernel without NUMA.
func ReadHostTopology(sysRoot string) (HostTopology, error) {
	fs, err := numa.NewFS(sysRoot)
	if err != nil {
		return nil, fmt.Errorf("read host topology: %w", err)
	}
	top, err := fs.Topology()
	if err != nil {
		return nil, fmt.Errorf("read host topology: %w", err)
	}
	return HostTopologyOf(top)
}

// HostTopologyOf keeps the nodes of top that have online CPUs.
func HostTopologyOf(top *numa.Topology) (HostTopology, error) {
	var h HostTopology
	for _, n := range top.Nodes {
		var on []int
		for _, c := range n.CPUs {
			if top.Online.Contains(c) {
				on = append(on, c)
			}
		}
		if len(on) > 0 {
			h = append(h, HostNode{ID: n.ID, CPUs: numa.NewCPUSet(on...)})
		}
	}
	if len(h) == 0 {
		return nil, fmt.Errorf("read host topology: no node has an online CPU")
	}
	sort.Slice(h, func(i, j int) bool { return h[i].ID < h[j].ID })
	return h, nil
}

// PlanKind names a pinning strategy.
type PlanKind string

const (
	// PlanNUMA keeps every guest socket on one host node where it fits,
	// distinct guest sockets on distinct host nodes while there are nodes
	// enough (see preferredNode).
	PlanNUMA PlanKind = "numa"
	// PlanIdentity pins vCPU i to host CPU i, as the artifact's script did.
	PlanIdentity PlanKind = "identity"
)

// PlanOptions chooses the plan. The zero value is the numa plan without
// oversubscription.
type PlanOptions struct {
	Kind PlanKind
	// AllowOversubscribe lets two vCPUs share a host CPU when the host has
	// too few (or, for identity, lacks the CPU of that index).
	AllowOversubscribe bool
}

// Assignment pins one vCPU thread to one host CPU.
type Assignment struct {
	VCPU        int `json:"vcpu"`
	ThreadID    int `json:"thread_id"`
	GuestSocket int `json:"guest_socket"` // -1 when QEMU reports none
	GuestNode   int `json:"guest_node"`   // -1 when QEMU reports none
	HostCPU     int `json:"host_cpu"`
	HostNode    int `json:"host_node"`
}

// Plan is a vCPU -> host CPU mapping with notes on where it departs from
// the ideal (sockets spread over nodes, oversubscription).
type Plan struct {
	Kind           PlanKind     `json:"plan"`
	Assignments    []Assignment `json:"assignments"`
	Oversubscribed bool         `json:"oversubscribed"`
	Notes          []string     `json:"notes,omitempty"`
}

// NewPlan computes where each of the guest's vCPUs (from query-cpus-fast)
// goes on host. It never maps two vCPUs to one host CPU unless
// opt.AllowOversubscribe, and then says so in Notes.
func NewPlan(cpus []CPU, host HostTopology, opt PlanOptions) (*Plan, error) {
	if opt.Kind == "" {
		opt.Kind = PlanNUMA
	}
	if len(cpus) == 0 {
		return nil, fmt.Errorf("pin plan: the guest reported no vCPUs")
	}
	all := host.CPUs()
	if all.Len() == 0 {
		return nil, fmt.Errorf("pin plan: the host topology has no CPUs")
	}
	cpus = slices.Clone(cpus)
	sortCPUs(cpus)
	tids := map[int]int{}
	for _, c := range cpus {
		if c.ThreadID > 0 {
			if other, dup := tids[c.ThreadID]; dup {
				return nil, fmt.Errorf("pin plan: vCPUs %d and %d share host thread %d (QEMU runs TCG with thread=single; start it with -accel tcg,thread=multi or kvm)", other, c.Index, c.ThreadID)
			}
			tids[c.ThreadID] = c.Index
		}
	}
	p := &Plan{Kind: opt.Kind}
	var hostCPU []int
	var err error
	switch opt.Kind {
	case PlanIdentity:
		hostCPU, err = identityPlan(p, cpus, all, opt.AllowOversubscribe)
	case PlanNUMA:
		hostCPU, err = numaPlan(p, cpus, host, opt.AllowOversubscribe)
	default:
		return nil, fmt.Errorf("pin plan: unknown plan %q (want numa or identity)", opt.Kind)
	}
	if err != nil {
		return nil, err
	}
	use := map[int]int{}
	for i, c := range cpus {
		use[hostCPU[i]]++
		p.Assignments = append(p.Assignments, Assignment{
			VCPU: c.Index, ThreadID: c.ThreadID,
			GuestSocket: c.Props.SocketID, GuestNode: c.Props.NodeID,
			HostCPU: hostCPU[i], HostNode: host.NodeOf(hostCPU[i]),
		})
	}
	maxUse := 0
	for _, n := range use {
		maxUse = max(maxUse, n)
	}
	if maxUse > 1 {
		if !opt.AllowOversubscribe {
			// Unreachable by construction; kept as the invariant's guard.
			return nil, setting.Errorf("pin plan: two vCPUs on one host CPU (allow with {AllowOversubscribe})")
		}
		p.Oversubscribed = true
		p.Notes = append(p.Notes, fmt.Sprintf("oversubscribed: %d vCPUs on %d host CPUs (up to %d vCPUs per host CPU)", len(cpus), len(use), maxUse))
	}
	return p, nil
}

func identityPlan(p *Plan, cpus []CPU, all numa.CPUSet, allow bool) ([]int, error) {
	out := make([]int, len(cpus))
	for i, c := range cpus {
		switch {
		case all.Contains(c.Index):
			out[i] = c.Index
		case allow:
			out[i] = all[c.Index%all.Len()]
		default:
			return nil, setting.Errorf("pin plan identity: vCPU %d needs host CPU %d, which is not online (host CPUs %s; use {Kind} numa, a smaller guest, or {AllowOversubscribe})", c.Index, c.Index, all)
		}
	}
	return out, nil
}

// guestGroup is the vCPUs of one guest socket (or node when QEMU reports
// no socket), positions into the sorted cpus slice.
type guestGroup struct {
	key int
	pos []int
}

func groupBySocket(cpus []CPU) []guestGroup {
	idx := map[int]int{}
	var gs []guestGroup
	for i, c := range cpus {
		k := c.Props.SocketID
		if k < 0 {
			k = c.Props.NodeID
		}
		if k < 0 {
			k = 0
		}
		j, ok := idx[k]
		if !ok {
			j = len(gs)
			idx[k] = j
			gs = append(gs, guestGroup{key: k})
		}
		gs[j].pos = append(gs[j].pos, i)
	}
	slices.SortFunc(gs, func(a, b guestGroup) int { return cmp.Compare(a.key, b.key) })
	return gs
}

// HostNodesFor returns the host node each of sockets guest nodes should
// take its memory from (Config.HostNodes): the node the numa plan prefers
// for that socket's vCPUs.
func HostNodesFor(sockets int, host HostTopology) []int {
	if len(host) == 0 || sockets <= 0 {
		return nil
	}
	out := make([]int, sockets)
	for k := range out {
		out[k] = host[preferredNode(k, sockets, len(host))].ID
	}
	return out
}

// preferredNode is where guest socket k of S goes on a host of N nodes:
// socket k on node k while there are nodes enough, so the guest's nodes are
// distinct host nodes and its NUMA effects are real; otherwise consecutive
// sockets share a node in equal blocks (socket k on node k*N/S).
func preferredNode(k, sockets, nodes int) int {
	if sockets <= nodes {
		return k
	}
	return k * nodes / sockets
}

func numaPlan(p *Plan, cpus []CPU, host HostTopology, allow bool) ([]int, error) {
	out := make([]int, len(cpus))
	groups := groupBySocket(cpus)
	total := host.CPUs().Len()
	if len(cpus) > total {
		if !allow {
			return nil, setting.Errorf("pin plan numa: %d vCPUs need %d host CPUs, the host has %d online (use {AllowOversubscribe}, or a smaller guest)", len(cpus), len(cpus), total)
		}
		// Oversubscribed: guest socket k stays on its preferred host node
		// and its vCPUs go round-robin over that node's CPUs.
		next := make([]int, len(host))
		for k, g := range groups {
			n := preferredNode(k, len(groups), len(host))
			for _, i := range g.pos {
				out[i] = host[n].CPUs[next[n]%host[n].CPUs.Len()]
				next[n]++
			}
		}
		return out, nil
	}
	free := make([]numa.CPUSet, len(host))
	for n := range host {
		free[n] = slices.Clone(host[n].CPUs)
	}
	for k, g := range groups {
		// The preferred node first, then the following ones (wrapping).
		fit := -1
		pref := preferredNode(k, len(groups), len(host))
		for d := range free {
			n := (pref + d) % len(free)
			if free[n].Len() >= len(g.pos) {
				fit = n
				break
			}
		}
		if fit >= 0 {
			for j, i := range g.pos {
				out[i] = free[fit][j]
			}
			free[fit] = free[fit][len(g.pos):]
			continue
		}
		// No node has room for the whole socket: fill from the nodes with
		// the most free CPUs first, so it spans as few nodes as possible.
		order := make([]int, len(free))
		for n := range order {
			order[n] = n
		}
		sort.SliceStable(order, func(a, b int) bool { return free[order[a]].Len() > free[order[b]].Len() })
		var used []string
		j := 0
		for _, n := range order {
			if j == len(g.pos) {
				break
			}
			take := min(free[n].Len(), len(g.pos)-j)
			if take == 0 {
				continue
			}
			for k := 0; k < take; k++ {
				out[g.pos[j]] = free[n][k]
				j++
			}
			free[n] = free[n][take:]
			used = append(used, strconv.Itoa(host[n].ID))
		}
		p.Notes = append(p.Notes, fmt.Sprintf("guest socket %d (%d vCPUs) does not fit on one host node; spread over host nodes %s", g.key, len(g.pos), strings.Join(used, ",")))
	}
	return out, nil
}

// WriteTable prints the plan as an aligned table with one row per vCPU,
// then its notes.
func (p *Plan) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "vcpu\tthread-id\tguest-socket\tguest-node\thost-cpu\thost-node")
	for _, a := range p.Assignments {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%d\t%s\n", a.VCPU, a.ThreadID, optInt(a.GuestSocket), optInt(a.GuestNode), a.HostCPU, optInt(a.HostNode))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range p.Notes {
		if _, err := fmt.Fprintf(w, "note: %s\n", n); err != nil {
			return err
		}
	}
	return nil
}

func optInt(v int) string {
	if v < 0 {
		return "-"
	}
	return strconv.Itoa(v)
}
