package experiment

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/syncord/syncord/internal/setting"
)

// Manifest is DIR/manifest.json: what ran, where, with what, and when.
type Manifest struct {
	Spec       string `json:"spec"`
	SpecDigest string `json:"spec_digest"`
	SpecFile   string `json:"spec_file"`
	Reproduces string `json:"reproduces,omitempty"`
	Layout     VMSpec `json:"vm"`
	// Complete is true when every run of the spec is there.
	Complete bool `json:"complete"`
	// Sessions are the invocations of experiment run on this dir (a
	// resumed run adds one).
	Sessions []Session                `json:"sessions"`
	Kernels  map[string]*KernelRecord `json:"kernels"`
	Cells    []CellRecord             `json:"cells"`
	Runs     []RunRecord              `json:"runs"`
	Figures  []string                 `json:"figures,omitempty"`
}

// Session is one invocation.
type Session struct {
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended"`
	Host     HostInfo  `json:"host"`
	Revision string    `json:"syncord_revision"`
	// Runs is how many runs this session made (the others were done).
	Runs  int    `json:"runs"`
	Error string `json:"error,omitempty"`
}

// HostInfo describes the host.
type HostInfo struct {
	CPUModel string `json:"cpu_model"`
	CPUs     int    `json:"cpus"`
	Kernel   string `json:"kernel"`
	QEMU     string `json:"qemu_version"`
}

// KernelRecord is one kernel's guest.
type KernelRecord struct {
	Path         string          `json:"path"`
	Release      string          `json:"release"`
	Vmlinuz      string          `json:"vmlinuz"`
	GuestVersion string          `json:"guest_syncord_version,omitempty"`
	Boots        int             `json:"boots"`
	BootSeconds  float64         `json:"last_boot_s,omitempty"`
	Pin          string          `json:"pinning,omitempty"`
	QEMU         []string        `json:"qemu_command,omitempty"`
	Commands     [][]string      `json:"host_commands,omitempty"`
	Topology     json.RawMessage `json:"guest_topology,omitempty"`
}

// CellRecord is a complete cell.
type CellRecord struct {
	Kernel    string `json:"kernel"`
	Policy    string `json:"policy"`
	Benchmark string `json:"benchmark"`
	CSV       string `json:"csv"`
}

// RunRecord is one run: the command, its raw output and its times.
type RunRecord struct {
	Kernel    string    `json:"kernel"`
	Policy    string    `json:"policy"`
	Benchmark string    `json:"benchmark"`
	Point     int       `json:"point"`
	Rep       int       `json:"rep"`
	Command   []string  `json:"command"`
	Raw       string    `json:"raw"`
	Started   time.Time `json:"started"`
	Seconds   float64   `json:"seconds"`
	// CommandSeconds is the command's own time in the guest (agent
	// accepted to exit); OverheadSeconds the rest of Seconds.
	CommandSeconds  float64 `json:"command_s"`
	OverheadSeconds float64 `json:"overhead_s"`
}

// ReadManifest reads DIR/manifest.json.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("experiment: %s: %w", filepath.Join(dir, ManifestFile), err)
	}
	return &m, nil
}

// openManifest reads the results dir's manifest, refusing one of another
// spec, or starts a new one.
func openManifest(dir string, s *Spec) (*Manifest, error) {
	m, err := ReadManifest(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		ents, _ := os.ReadDir(dir)
		if len(ents) > 0 {
			return nil, setting.Errorf("experiment: %s is not empty and has no %s: not a results dir (give a new or empty {Out})", dir, ManifestFile)
		}
		m = &Manifest{}
	case err != nil:
		return nil, err
	case m.SpecDigest != s.Digest():
		return nil, setting.Errorf("experiment: %s holds results of spec %s (digest %s), not of this one (digest %s): %w; give another {Out}, or rerun with the spec in %s",
			dir, m.Spec, m.SpecDigest, s.Digest(), errOtherSpec, filepath.Join(dir, SpecFile))
	}
	m.Spec, m.SpecDigest, m.SpecFile, m.Reproduces, m.Layout = s.Name, s.Digest(), SpecFile, s.Reproduces, s.VM
	if m.Kernels == nil {
		m.Kernels = map[string]*KernelRecord{}
	}
	return m, nil
}

func (m *Manifest) kernel(name string) *KernelRecord {
	k := m.Kernels[name]
	if k == nil {
		k = &KernelRecord{}
		m.Kernels[name] = k
	}
	return k
}

func (m *Manifest) addRun(r RunRecord) {
	m.Runs = append(m.Runs, r)
}

func (m *Manifest) cellDone(c *Cell, csv string) {
	for _, x := range m.Cells {
		if x.Kernel == c.Kernel.Name && x.Policy == c.Policy && x.Benchmark == c.Bench.Name {
			return
		}
	}
	m.Cells = append(m.Cells, CellRecord{Kernel: c.Kernel.Name, Policy: c.Policy, Benchmark: c.Bench.Name, CSV: csv})
}

func (m *Manifest) write(dir string) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, ManifestFile), append(b, '\n'))
}

// hostInfo reads the host's CPU model (/proc/cpuinfo), CPU count, kernel
// release and QEMU version (qemu --version).
func hostInfo(qemu string) HostInfo {
	h := HostInfo{CPUs: runtime.NumCPU()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				h.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	if qemu == "" {
		qemu = "qemu-system-x86_64"
	}
	if out, err := exec.Command(qemu, "--version").Output(); err == nil {
		h.QEMU = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	return h
}
