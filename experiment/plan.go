package experiment

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Cell is one (kernel, policy, benchmark) of a spec: a sweep of points,
// each repeated, in one VM with the policy installed.
type Cell struct {
	Kernel   KernelSpec `json:"-"`
	Policy   string     `json:"policy"`
	Bench    BenchSpec  `json:"-"`
	Points   []int      `json:"points"`
	Duration int        `json:"duration_s"`
	Reps     int        `json:"repetitions"`
}

// Key names the cell's files: kernel-policy-benchmark.
func (c *Cell) Key() string { return c.Kernel.Name + "-" + c.Policy + "-" + c.Bench.Name }

// Run is one point of one repetition of a cell.
type Run struct {
	Cell  *Cell
	Point int
	Rep   int // 1-based
}

// Cells lists the spec's cells in run order: kernel by kernel (one VM
// each), policy by policy (one install each), benchmark by benchmark.
func (s *Spec) Cells() []*Cell {
	var cs []*Cell
	for _, k := range s.Kernels {
		for _, p := range k.Policies {
			for _, b := range s.Benchmarks {
				cs = append(cs, &Cell{Kernel: k, Policy: p, Bench: b, Points: s.PointsOf(b), Duration: s.DurationOf(b), Reps: s.Repetitions})
			}
		}
	}
	return cs
}

// Runs lists the cell's runs: repetitions outermost, so a cut-short run
// still has every point of its first repetitions.
func (c *Cell) Runs() []Run {
	var rs []Run
	for r := 1; r <= c.Reps; r++ {
		for _, p := range c.Points {
			rs = append(rs, Run{Cell: c, Point: p, Rep: r})
		}
	}
	return rs
}

// Guest paths the benchmarks work in (under the agent's default bench
// root, /tmp).
const (
	guestFxRoot   = "/tmp"
	guestXDirDir  = "/tmp/xdir"
	guestLevelDB  = "/tmp/leveldb"
	defaultXFiles = 100000
)

// Args is the syncord command line (without "syncord") of a run.
func (r Run) Args() []string {
	b, n, d := r.Cell.Bench, strconv.Itoa(r.Point), strconv.Itoa(r.Cell.Duration)
	var a []string
	switch b.Driver {
	case "will-it-scale":
		a = []string{"bench", "sweep", "will-it-scale", b.Test, "--points", n, "--duration", d}
	case "fxmark":
		a = []string{"bench", "fxmark", "--type", b.Test, "--ncore", n, "--duration", d, "--root", guestFxRoot}
	case "leveldb":
		a = []string{"bench", "leveldb", "readrandom", "--threads", n, "--duration", d, "--db", guestLevelDB}
	case "metis":
		a = []string{"bench", "metis", "wrmem", "-p", n}
	case "xdir":
		files := xdirFiles(b)
		bullies, victims := (r.Point+1)/2, r.Point/2
		a = []string{"bench", "xdir", "run", guestXDirDir + "/src_empty", fmt.Sprintf("%s/dst_%d_files", guestXDirDir, files),
			guestXDirDir + "/dst_empty", d, strconv.Itoa(bullies), strconv.Itoa(victims)}
	}
	return append(a, b.Args...)
}

func xdirFiles(b BenchSpec) int {
	if b.Files > 0 {
		return b.Files
	}
	return defaultXFiles
}

// SetupArgs is the command run once per VM before a benchmark's first
// point, or nil.
func SetupArgs(b BenchSpec) []string {
	if b.Driver == "xdir" {
		return []string{"bench", "xdir", "prepare", "--dir", guestXDirDir, "-n", strconv.Itoa(xdirFiles(b))}
	}
	return nil
}

// Unit of a benchmark's total, as the figures label it.
func Unit(driver string) string {
	switch driver {
	case "fxmark":
		return "M works/s"
	case "metis":
		return "ms"
	}
	return "ops/s"
}

// Estimated times used by plan (TCG on a small host; KVM is faster).
const (
	estBoot       = 15 * time.Second
	estInstall    = 5 * time.Second
	estBuild      = 30 * time.Second // policy build --livepatch (kbuild)
	estOverhead   = time.Second
	wisWarmupSecs = 6 // will-it-scale's 5 warmup samples and the first measured one
)

// Estimate is a run's expected time.
func (r Run) Estimate() time.Duration {
	d := time.Duration(r.Cell.Duration) * time.Second
	switch r.Cell.Bench.Driver {
	case "will-it-scale":
		d += wisWarmupSecs * time.Second
	case "leveldb":
		d += 10 * time.Second // fillseq of a million keys
	case "metis":
		d = 20 * time.Second
	case "xdir", "fxmark":
		d += time.Second
	}
	return d + estOverhead
}

// PlanEntry is one line of a plan.
type PlanEntry struct {
	Step     string        `json:"step"` // boot, build, install, setup, run, uninstall
	Kernel   string        `json:"kernel"`
	Policy   string        `json:"policy,omitempty"`
	Bench    string        `json:"benchmark,omitempty"`
	Point    int           `json:"point,omitempty"`
	Rep      int           `json:"rep,omitempty"`
	Command  []string      `json:"command,omitempty"`
	Estimate time.Duration `json:"estimate_ns"`
	Done     bool          `json:"done,omitempty"`
}

// Plan lists every step of the spec with an estimated time. done, when
// not nil, marks the runs a results dir already has (they are skipped).
func (s *Spec) Plan(done func(Run) bool) []PlanEntry {
	var out []PlanEntry
	for _, k := range s.Kernels {
		kcells := []*Cell{}
		for _, c := range s.Cells() {
			if c.Kernel.Name == k.Name {
				kcells = append(kcells, c)
			}
		}
		todo := func(cs []*Cell) bool {
			for _, c := range cs {
				for _, r := range c.Runs() {
					if done == nil || !done(r) {
						return true
					}
				}
			}
			return false
		}
		out = append(out, PlanEntry{Step: "boot", Kernel: k.Name, Command: []string{"syncord-host", "vm", "--kernel", k.Path}, Estimate: estBoot, Done: !todo(kcells)})
		setup := map[string]bool{}
		for _, p := range k.Policies {
			var pcells []*Cell
			for _, c := range kcells {
				if c.Policy == p {
					pcells = append(pcells, c)
				}
			}
			if p != "none" {
				if s.Policy(p).Livepatch == "build" {
					out = append(out, PlanEntry{Step: "build", Kernel: k.Name, Policy: p, Command: []string{"syncord", "policy", "build", p, "--livepatch", "--kdir", "<" + k.Name + " headers>"}, Estimate: estBuild, Done: !todo(pcells)})
				}
				out = append(out, PlanEntry{Step: "install", Kernel: k.Name, Policy: p, Command: s.installArgs(p, ""), Estimate: estInstall, Done: !todo(pcells)})
			}
			for _, c := range pcells {
				if a := SetupArgs(c.Bench); a != nil && !setup[c.Bench.Name] {
					setup[c.Bench.Name] = true
					out = append(out, PlanEntry{Step: "setup", Kernel: k.Name, Bench: c.Bench.Name, Command: a, Estimate: 30 * time.Second, Done: !todo([]*Cell{c})})
				}
				for _, r := range c.Runs() {
					out = append(out, PlanEntry{Step: "run", Kernel: k.Name, Policy: p, Bench: c.Bench.Name, Point: r.Point, Rep: r.Rep,
						Command: r.Args(), Estimate: r.Estimate(), Done: done != nil && done(r)})
				}
			}
			if p != "none" {
				out = append(out, PlanEntry{Step: "uninstall", Kernel: k.Name, Policy: p, Command: []string{"policy", "uninstall", p}, Estimate: estInstall, Done: !todo(pcells)})
			}
		}
	}
	return out
}

// installArgs is the guest command that installs policy p; guestDir is
// where a built or given policy folder lies in the guest ("" in plans).
func (s *Spec) installArgs(p, guestDir string) []string {
	ps := s.Policy(p)
	a := []string{"policy", "install"}
	switch {
	case ps.Livepatch == "none":
		a = append(a, p)
	case guestDir != "":
		a = append(a, guestDir)
	default:
		a = append(a, guestPolicyRoot+"/"+p)
	}
	for _, kv := range ps.Params {
		a = append(a, "--param", kv)
	}
	return a
}

// WritePlan prints a plan as a table with the total estimate.
func WritePlan(w io.Writer, s *Spec, plan []PlanEntry) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "STEP\tKERNEL\tPOLICY\tBENCHMARK\tPOINT\tREP\tEST\tCOMMAND\n")
	var total, left time.Duration
	runs, runsLeft := 0, 0
	for _, e := range plan {
		total += e.Estimate
		pt, rep := "", ""
		if e.Step == "run" {
			runs++
			pt, rep = strconv.Itoa(e.Point), strconv.Itoa(e.Rep)
		}
		step := e.Step
		if e.Done {
			step += " (done)"
		} else {
			left += e.Estimate
			if e.Step == "run" {
				runsLeft++
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", step, e.Kernel, e.Policy, e.Bench, pt, rep, e.Estimate.Round(time.Second), strings.Join(e.Command, " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%s: %d runs in %d cells on a %dx%d VM, about %s in all; %d runs (about %s) left to do\n",
		s.Name, runs, len(s.Cells()), s.VM.Sockets, s.VM.Cores, total.Round(time.Second), runsLeft, left.Round(time.Second))
	return err
}
