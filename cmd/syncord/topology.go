package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/syncord/syncord/internal/cli"
	"github.com/syncord/syncord/numa"
)

const topologyHelp = `
Print the CPU and NUMA topology read from sysfs: online and possible CPUs,
nodes with their CPUs and memory, sockets, cores per socket, SMT, the
fast/slow halves of every node (AMP emulation), the sweep points and the
runtest.py header. --json prints it as one object for scripts.

--capture DIR copies the sysfs files the reader uses into DIR as a test
fixture (DIR "-" prints them as JSON); --sys-root reads another sysfs
tree (a fixture) instead of /sys.
`

func init() {
	register(cli.Command{Name: "topology", Summary: "show CPU and NUMA topology (sockets, nodes, fast/slow halves)", Mutating: false,
		Run: runTopology})
}

func runTopology(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "topology", "topology [--json] [--sys-root DIR] [--capture DIR|-]", topologyHelp)
	asJSON := fs.Bool("json", false, "print JSON")
	rf := addRootFlags(fs, []string{"root"}, nil)
	capture := fs.String("capture", "", "copy the sysfs files read into `DIR` (\"-\": JSON on stdout) and exit")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		cli.ShortUsage(fs)
		return errUsage
	}
	roots, err := rf.roots(env)
	if err != nil {
		return err
	}
	sys := numa.New(roots.Sys)
	if *capture != "" {
		if *capture == "-" {
			snap, err := sys.Snapshot()
			if err != nil {
				return err
			}
			return snap.WriteJSON(env.Stdout)
		}
		dir, err := resolvePath(env, kindBench, "--capture", *capture)
		if err != nil {
			return err
		}
		return sys.Capture(dir)
	}
	top, err := sys.Topology()
	if err != nil {
		return err
	}
	rep := top.Report()
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printTopology(env.Stdout, rep)
	return nil
}

func printTopology(w io.Writer, r *numa.Report) {
	var offline []string
	for _, c := range r.CPUs {
		if !c.Online {
			node := "unknown node"
			if c.Node >= 0 {
				node = "node " + strconv.Itoa(c.Node)
			}
			offline = append(offline, fmt.Sprintf("%d (%s)", c.ID, node))
		}
	}
	fmt.Fprintf(w, "CPUs:        %d online (%s), %d present, %d possible\n", r.Online.Len(), r.Online, r.Present.Len(), r.Possible.Len())
	if len(offline) > 0 {
		fmt.Fprintf(w, "offline:     %s\n", strings.Join(offline, ", "))
	}
	numaNote := ""
	if !r.NUMA {
		numaNote = " (no /sys/devices/system/node: kernel without NUMA, one node)"
	}
	fmt.Fprintf(w, "nodes:       %d%s\n", len(r.Nodes), numaNote)
	fmt.Fprintf(w, "sockets:     %d, %d cores per socket, SMT %s\n", r.Sockets, r.CoresPerSocket, onOff(r.SMT))
	for _, n := range r.Nodes {
		mem := "memory unknown"
		if n.MemTotal > 0 {
			mem = fmt.Sprintf("%.1f GiB", float64(n.MemTotal)/(1<<30))
		}
		fmt.Fprintf(w, "  node %-3d   cpus %-12s %-10s fast %-10s slow %-10s distances %s\n",
			n.ID, orNone(n.CPUs), mem, orNone(n.Fast), orNone(n.Slow), joinInts(n.Distances, " "))
	}
	fmt.Fprintf(w, "sweep:       %s\n", joinInts(r.SweepPoints, ","))
	fmt.Fprintf(w, "runtest:     %s\n", r.Runtest)
	fmt.Fprintf(w, "cpufreq:     %s\n", cpufreqSummary(r.CPUs))
}

func cpufreqSummary(cpus []numa.CPUReport) string {
	var n int
	drivers := map[string]bool{}
	var lo, hi uint64
	for _, c := range cpus {
		if c.Freq == nil {
			continue
		}
		n++
		drivers[c.Freq.Driver] = true
		if lo == 0 || c.Freq.CPUInfoMin < lo {
			lo = c.Freq.CPUInfoMin
		}
		hi = max(hi, c.Freq.CPUInfoMax)
	}
	if n == 0 {
		return "none (no cpuN/cpufreq)"
	}
	names := make([]string, 0, len(drivers))
	for d := range drivers {
		names = append(names, d)
	}
	return fmt.Sprintf("%s on %d CPUs, %.2f-%.2f GHz", strings.Join(names, ","), n, float64(lo)/1e6, float64(hi)/1e6)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func orNone(s numa.CPUSet) string {
	if s.Len() == 0 {
		return "-"
	}
	return s.String()
}

func joinInts(v []int, sep string) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, sep)
}
