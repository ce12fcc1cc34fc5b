package experiment

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/syncord/syncord/numa"
)

// Spec is a declarative experiment: kernels x policies x benchmarks x
// points x repetitions, run in one VM layout. Zero fields take the
// defaults named on them.
type Spec struct {
	Name string `toml:"name"`
	// Reproduces says what the experiment reproduces (experiment list).
	Reproduces string `toml:"reproduces"`
	// Duration is each point's measured seconds (default 5).
	Duration int `toml:"duration"`
	// Repetitions of every point (default 1); figures show the median
	// with min/max error bars.
	Repetitions int `toml:"repetitions"`
	// Points are the core counts; default: the layout's sweep points
	// (powers of two below a socket, then socket multiples), as syncord
	// topology gives them in the guest.
	Points     []int                 `toml:"points"`
	VM         VMSpec                `toml:"vm"`
	Kernels    []KernelSpec          `toml:"kernel"`
	Policies   map[string]PolicySpec `toml:"policy"`
	Benchmarks []BenchSpec           `toml:"benchmark"`

	// Dir resolves relative kernel and policy paths: the spec file's
	// folder (the working directory for a built-in spec).
	Dir string `toml:"-"`
	// Source is the spec's text; its digest identifies a results dir.
	Source string `toml:"-"`
}

// VMSpec is the guest layout.
type VMSpec struct {
	Sockets    int    `toml:"sockets" json:"sockets"`           // default 2
	Cores      int    `toml:"cores" json:"cores"`               // per socket, default 2
	MemPerNode int    `toml:"mem_per_node" json:"mem_per_node"` // MiB, default 512
	KVM        bool   `toml:"kvm" json:"kvm"`                   // default TCG
	Pin        string `toml:"pin" json:"pin"`                   // numa (default), identity or none
	// BootTimeout in seconds for the agent to answer (default 300).
	BootTimeout int `toml:"boot_timeout" json:"boot_timeout_s"`
}

// KernelSpec is one kernel and the policies run on it.
type KernelSpec struct {
	// Name labels the kernel in cells, files and legends (default: the
	// path's base name).
	Name string `toml:"name"`
	// Path is "debian" (Debian's current stock kernel, fetched with apt
	// into the cache), a bzImage, a linux-image .deb, a folder holding
	// one (with its linux-headers .deb beside it), or "kernels:BRANCH",
	// the folder BRANCH of $SYNCORD_KERNELS or ../shared/kernels.
	Path string `toml:"path"`
	// Policies run on this kernel, in order; "none" is the baseline
	// (default ["none"]).
	Policies []string `toml:"policies"`
}

// PolicySpec says how a policy is installed through the agent.
type PolicySpec struct {
	// Livepatch is "build" (syncord policy build NAME --livepatch --kdir
	// KDIR on the host against the kernel's headers, then install the
	// built folder), "none" (install the built-in policy's programs
	// only: pinned, not attached), or the host path of a built policy
	// folder in the artifact layout (eBPFGen/, LivePatchGen/), installed
	// as it is. Default "build".
	Livepatch string `toml:"livepatch"`
	// Params are passed as --param k=v.
	Params []string `toml:"params"`
}

// Drivers are the benchmark drivers a spec may name.
var Drivers = []string{"will-it-scale", "fxmark", "leveldb", "metis", "xdir"}

// BenchSpec is one benchmark.
type BenchSpec struct {
	// Name labels the benchmark in cells, files and figures (default:
	// Test, or Driver).
	Name string `toml:"name"`
	// Driver is one of Drivers.
	Driver string `toml:"driver"`
	// Test is the will-it-scale test (lock1) or the FxMark type (MWRL).
	Test string `toml:"test"`
	// Args are appended to the driver's command line.
	Args []string `toml:"args"`
	// Duration and Points override the spec's.
	Duration int   `toml:"duration"`
	Points   []int `toml:"points"`
	// Files is xdir's dst_dirty size (default 100000).
	Files int `toml:"files"`
}

var reName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

//go:embed specs/*.toml
var builtinFS embed.FS

// Builtin is a spec shipped with syncord-host.
type Builtin struct {
	Name       string `json:"name"`
	Reproduces string `json:"reproduces"`
	Spec       *Spec  `json:"-"`
}

// Builtins lists the built-in specs (the paper's figures), by name.
func Builtins() ([]Builtin, error) {
	ents, err := builtinFS.ReadDir("specs")
	if err != nil {
		return nil, err
	}
	var out []Builtin
	for _, e := range ents {
		b, err := builtinFS.ReadFile("specs/" + e.Name())
		if err != nil {
			return nil, err
		}
		s, err := Parse(e.Name(), b, "")
		if err != nil {
			return nil, fmt.Errorf("built-in spec %s: %w", e.Name(), err)
		}
		out = append(out, Builtin{Name: strings.TrimSuffix(e.Name(), ".toml"), Reproduces: s.Reproduces, Spec: s})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Load reads a spec: a built-in's name (fig5) or a TOML file.
func Load(nameOrPath string) (*Spec, error) {
	if !strings.ContainsAny(nameOrPath, "/.") {
		if b, err := builtinFS.ReadFile("specs/" + nameOrPath + ".toml"); err == nil {
			wd, _ := os.Getwd()
			return Parse(nameOrPath, b, wd)
		}
	}
	b, err := os.ReadFile(nameOrPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("spec %s: no such file and no built-in spec of that name (see syncord-host experiment list)", nameOrPath)
		}
		return nil, fmt.Errorf("spec: %w", err)
	}
	abs, _ := filepath.Abs(nameOrPath)
	return Parse(nameOrPath, b, filepath.Dir(abs))
}

// Parse decodes and validates a spec; unknown keys are refused, so a typo
// is not silently ignored.
func Parse(name string, data []byte, dir string) (*Spec, error) {
	var s Spec
	md, err := toml.Decode(string(data), &s)
	if err != nil {
		return nil, fmt.Errorf("spec %s: %w", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		var keys []string
		for _, k := range und {
			keys = append(keys, k.String())
		}
		return nil, fmt.Errorf("spec %s: unknown key(s) %s (see syncord-host help experiment)", name, strings.Join(keys, ", "))
	}
	s.Dir, s.Source = dir, string(data)
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("spec %s: %w", name, err)
	}
	return &s, nil
}

// Digest identifies the spec's text and layout (which the command line
// may override).
func (s *Spec) Digest() string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d %d %d %v", s.Source, s.VM.Sockets, s.VM.Cores, s.VM.MemPerNode, s.VM.KVM)))
	return hex.EncodeToString(h[:8])
}

func (s *Spec) validate() error {
	if s.Duration == 0 {
		s.Duration = 5
	}
	if s.Repetitions == 0 {
		s.Repetitions = 1
	}
	v := &s.VM
	if v.Sockets == 0 {
		v.Sockets = 2
	}
	if v.Cores == 0 {
		v.Cores = 2
	}
	if v.MemPerNode == 0 {
		v.MemPerNode = 512
	}
	if v.Pin == "" {
		v.Pin = "numa"
	}
	if v.BootTimeout == 0 {
		v.BootTimeout = 300
	}
	switch {
	case s.Duration < 0 || s.Duration > 3600:
		return fmt.Errorf("duration %d s is out of range (1..3600)", s.Duration)
	case s.Repetitions < 0 || s.Repetitions > 100:
		return fmt.Errorf("repetitions %d is out of range (1..100)", s.Repetitions)
	case v.Sockets < 1 || v.Cores < 1 || v.Sockets*v.Cores > 4096:
		return fmt.Errorf("vm: %d sockets x %d cores is not a layout QEMU runs", v.Sockets, v.Cores)
	case v.MemPerNode < 64:
		return fmt.Errorf("vm: mem_per_node %d MiB is too small (at least 64)", v.MemPerNode)
	case !slices.Contains([]string{"numa", "identity", "none"}, v.Pin):
		return fmt.Errorf("vm: pin %q is not numa, identity or none", v.Pin)
	case len(s.Kernels) == 0:
		return fmt.Errorf("no [[kernel]] (give at least one: path = \"debian\")")
	case len(s.Benchmarks) == 0:
		return fmt.Errorf("no [[benchmark]] (give at least one: driver = \"will-it-scale\", test = \"lock1\")")
	}
	if err := checkPoints("points", s.Points, v.Sockets*v.Cores); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i := range s.Kernels {
		k := &s.Kernels[i]
		if k.Path == "" {
			return fmt.Errorf("kernel %d: no path (debian, a bzImage, a .deb, a folder, or kernels:BRANCH)", i+1)
		}
		if k.Name == "" {
			k.Name = strings.TrimPrefix(filepath.Base(k.Path), "kernels:")
			k.Name = strings.TrimSuffix(k.Name, ".deb")
		}
		if !reName.MatchString(k.Name) {
			return fmt.Errorf("kernel name %q: use letters, digits and . _ + - only", k.Name)
		}
		if seen["k "+k.Name] {
			return fmt.Errorf("kernel name %q given twice", k.Name)
		}
		seen["k "+k.Name] = true
		if len(k.Policies) == 0 {
			k.Policies = []string{"none"}
		}
		ps := map[string]bool{}
		for _, p := range k.Policies {
			if !reName.MatchString(p) {
				return fmt.Errorf("kernel %s: policy name %q: use letters, digits and . _ + - only", k.Name, p)
			}
			if ps[p] {
				return fmt.Errorf("kernel %s: policy %s given twice", k.Name, p)
			}
			ps[p] = true
		}
	}
	for name, p := range s.Policies {
		if name == "none" {
			return fmt.Errorf("[policy.none]: none is the baseline without a policy and takes no settings")
		}
		if p.Livepatch == "" {
			p.Livepatch = "build"
			s.Policies[name] = p
		}
	}
	for i := range s.Benchmarks {
		b := &s.Benchmarks[i]
		if !slices.Contains(Drivers, b.Driver) {
			return fmt.Errorf("benchmark %d: driver %q is not one of %s", i+1, b.Driver, strings.Join(Drivers, ", "))
		}
		if (b.Driver == "will-it-scale" || b.Driver == "fxmark") && b.Test == "" {
			return fmt.Errorf("benchmark %d: %s needs test (a will-it-scale test such as lock1, or an FxMark type such as MWRL)", i+1, b.Driver)
		}
		if b.Name == "" {
			b.Name = b.Test
			if b.Name == "" {
				b.Name = b.Driver
			}
		}
		if !reName.MatchString(b.Name) {
			return fmt.Errorf("benchmark name %q: use letters, digits and . _ + - only", b.Name)
		}
		if seen["b "+b.Name] {
			return fmt.Errorf("benchmark name %q given twice (name them)", b.Name)
		}
		seen["b "+b.Name] = true
		if b.Duration < 0 || b.Duration > 3600 {
			return fmt.Errorf("benchmark %s: duration %d s is out of range", b.Name, b.Duration)
		}
		if b.Files < 0 {
			return fmt.Errorf("benchmark %s: files %d must be >= 0", b.Name, b.Files)
		}
		if err := checkPoints("benchmark "+b.Name+": points", b.Points, v.Sockets*v.Cores); err != nil {
			return err
		}
	}
	return nil
}

func checkPoints(what string, pts []int, cpus int) error {
	for _, p := range pts {
		if p < 1 || p > 8*cpus {
			return fmt.Errorf("%s: %d is out of range (1..%d, eight tasks per vCPU at most)", what, p, 8*cpus)
		}
	}
	return nil
}

// DurationOf is a benchmark's measured seconds per point.
func (s *Spec) DurationOf(b BenchSpec) int {
	if b.Duration > 0 {
		return b.Duration
	}
	return s.Duration
}

// PointsOf is a benchmark's points: its own, the spec's, or the layout's
// sweep points; xdir needs a bully and a victim, so its points start at 2.
func (s *Spec) PointsOf(b BenchSpec) []int {
	pts := b.Points
	if len(pts) == 0 {
		pts = s.Points
	}
	if len(pts) == 0 {
		pts = numa.SweepPoints(s.VM.Sockets*s.VM.Cores, s.VM.Cores)
	}
	if b.Driver == "xdir" {
		var out []int
		for _, p := range pts {
			if p >= 2 {
				out = append(out, p)
			}
		}
		pts = out
	}
	return pts
}

// Policy returns the install settings of a policy (defaults when the spec
// has no [policy.NAME]).
func (s *Spec) Policy(name string) PolicySpec {
	p, ok := s.Policies[name]
	if !ok || p.Livepatch == "" {
		p.Livepatch = "build"
	}
	return p
}
