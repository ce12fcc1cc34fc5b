package vm

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/syncord/syncord/internal/setting"
	"github.com/syncord/syncord/numa"
)

// ErrNoCPUFreq is wrapped by AMP errors on a machine (or CPU) without
// cpufreq; it is numa.ErrNoCPUFreq.
var ErrNoCPUFreq = numa.ErrNoCPUFreq

// ParseFreq parses a frequency into kHz, the unit of the cpufreq files:
// "2400000" and "2400000kHz" are kHz, "2400MHz" and "2.4GHz" convert.
func ParseFreq(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	mult := 1.0
	lower := strings.ToLower(t)
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"khz", 1}, {"mhz", 1e3}, {"ghz", 1e6}} {
		if strings.HasSuffix(lower, u.suffix) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("frequency %q: want a positive number of kHz, or MHz/GHz with the unit (2.4GHz)", s)
	}
	khz := math.Round(v * mult)
	if khz < 1 || khz > 1e9 {
		return 0, fmt.Errorf("frequency %q is out of range (1 kHz .. 1 THz)", s)
	}
	return uint64(khz), nil
}

// AMPSetting is the cpufreq range one CPU gets.
type AMPSetting struct {
	CPU    int    `json:"cpu"`
	Role   string `json:"role"` // "fast", "slow" or "restore"
	MinKHz uint64 `json:"scaling_min_khz"`
	MaxKHz uint64 `json:"scaling_max_khz"`
	// Writes are the sysfs writes in the order they are made (the order
	// numa.FS.SetCPUFreqMinMax uses: the kernel must never see min > max).
	Writes []AMPWrite `json:"writes"`
}

// AMPWrite is one write of a cpufreq attribute.
type AMPWrite struct {
	Path  string `json:"path"`
	Value uint64 `json:"value_khz"`
}

// AMPOptions are the two frequencies of the emulated asymmetric machine.
type AMPOptions struct {
	FastKHz, SlowKHz uint64
	// CoresPerSocket decides the fast half (cpu % cps < cps/2, numa.IsFast,
	// the rule the workload drivers place by); 0 means the number of
	// online CPUs in CPU 0's socket.
	CoresPerSocket int
}

// PlanAMP returns the setting of every online CPU of top for AMP emulation
// (SYNCORD-ABI.md section 5): min = max = fast on the first half of each
// socket, slow on the rest. It refuses when any online CPU has no cpufreq,
// and when a frequency lies outside a CPU's cpuinfo range.
func PlanAMP(fs *numa.FS, top *numa.Topology, opt AMPOptions) ([]AMPSetting, error) {
	if opt.FastKHz == 0 || opt.SlowKHz == 0 {
		return nil, fmt.Errorf("amp: give both the fast and the slow frequency")
	}
	if opt.SlowKHz > opt.FastKHz {
		return nil, fmt.Errorf("amp: slow frequency %d kHz is above the fast one %d kHz", opt.SlowKHz, opt.FastKHz)
	}
	cps := opt.CoresPerSocket
	if cps < 0 {
		return nil, fmt.Errorf("amp: cores per socket must be > 0, got %d", cps)
	}
	if cps == 0 {
		cps = coresPerSocket(top)
	}
	if cps == 0 {
		return nil, setting.Errorf("amp: cannot tell the cores per socket from %s (give {CoresPerSocket})", fs.Root())
	}
	cpus, err := freqCPUs(fs, top)
	if err != nil {
		return nil, err
	}
	var out []AMPSetting
	for _, c := range cpus {
		f := numa.RoleOf(c.ID, cps)
		khz := opt.SlowKHz
		if f == numa.Fast {
			khz = opt.FastKHz
		}
		if err := inRange(c, khz); err != nil {
			return nil, fmt.Errorf("amp: %w", err)
		}
		out = append(out, ampSetting(fs, c, f.String(), khz, khz))
	}
	return out, nil
}

// PlanAMPRestore returns the setting of every online CPU that undoes AMP
// emulation: max = fast and min = slow, as the artifact's restore did.
// A zero FastKHz or SlowKHz means the CPU's own cpuinfo_max_freq or
// cpuinfo_min_freq, its full range.
func PlanAMPRestore(fs *numa.FS, top *numa.Topology, opt AMPOptions) ([]AMPSetting, error) {
	if opt.FastKHz != 0 && opt.SlowKHz != 0 && opt.SlowKHz > opt.FastKHz {
		return nil, fmt.Errorf("amp restore: slow frequency %d kHz is above the fast one %d kHz", opt.SlowKHz, opt.FastKHz)
	}
	cpus, err := freqCPUs(fs, top)
	if err != nil {
		return nil, err
	}
	var out []AMPSetting
	for _, c := range cpus {
		lo, hi := opt.SlowKHz, opt.FastKHz
		if lo == 0 {
			lo = c.Freq.CPUInfoMin
		}
		if hi == 0 {
			hi = c.Freq.CPUInfoMax
		}
		for _, v := range []uint64{lo, hi} {
			if err := inRange(c, v); err != nil {
				return nil, fmt.Errorf("amp restore: %w", err)
			}
		}
		if lo > hi {
			return nil, fmt.Errorf("amp restore: cpu %d: min %d kHz above max %d kHz", c.ID, lo, hi)
		}
		out = append(out, ampSetting(fs, c, "restore", lo, hi))
	}
	return out, nil
}

// ApplyAMP makes the writes of settings through numa.FS.SetCPUFreqMinMax,
// CPU by CPU, and stops at the first error.
func ApplyAMP(fs *numa.FS, settings []AMPSetting) error {
	for _, s := range settings {
		if err := fs.SetCPUFreqMinMax(s.CPU, s.MinKHz, s.MaxKHz); err != nil {
			return fmt.Errorf("amp: %w", err)
		}
	}
	return nil
}

// WriteAMPPlan prints each write as "PATH VALUE" (kHz), in order.
func WriteAMPPlan(w io.Writer, settings []AMPSetting) error {
	for _, s := range settings {
		for _, wr := range s.Writes {
			if _, err := fmt.Fprintf(w, "cpu%d %-7s write %s %d\n", s.CPU, s.Role, wr.Path, wr.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

func ampSetting(fs *numa.FS, c numa.CPU, role string, lo, hi uint64) AMPSetting {
	dir := fs.Root() + "/devices/system/cpu/cpu" + strconv.Itoa(c.ID) + "/cpufreq/"
	s := AMPSetting{CPU: c.ID, Role: role, MinKHz: lo, MaxKHz: hi}
	minW := AMPWrite{dir + "scaling_min_freq", lo}
	maxW := AMPWrite{dir + "scaling_max_freq", hi}
	if lo > c.Freq.ScalingMax {
		s.Writes = []AMPWrite{maxW, minW}
	} else {
		s.Writes = []AMPWrite{minW, maxW}
	}
	return s
}

func inRange(c numa.CPU, khz uint64) error {
	f := c.Freq
	if f.CPUInfoMin != 0 && khz < f.CPUInfoMin || f.CPUInfoMax != 0 && khz > f.CPUInfoMax {
		return &FreqRangeError{CPU: c.ID, KHz: khz, Min: f.CPUInfoMin, Max: f.CPUInfoMax}
	}
	return nil
}

// FreqRangeError is a frequency outside what a CPU's cpufreq driver
// accepts (cpuinfo_min_freq, cpuinfo_max_freq).
type FreqRangeError struct {
	CPU           int
	KHz, Min, Max uint64
}

func (e *FreqRangeError) Error() string {
	return fmt.Sprintf("%d kHz is outside cpu %d's range %d-%d kHz (cpuinfo_min_freq, cpuinfo_max_freq)", e.KHz, e.CPU, e.Min, e.Max)
}

// freqCPUs returns the online CPUs of top, all of which must have cpufreq.
func freqCPUs(fs *numa.FS, top *numa.Topology) ([]numa.CPU, error) {
	var cpus []numa.CPU
	var missing []int
	for _, c := range top.CPUs {
		if !c.Online {
			continue
		}
		if c.Freq == nil {
			missing = append(missing, c.ID)
			continue
		}
		cpus = append(cpus, c)
	}
	switch {
	case len(cpus) == 0 && len(missing) == 0:
		return nil, fmt.Errorf("amp: %s lists no online CPUs", fs.Root())
	case len(cpus) == 0:
		return nil, fmt.Errorf("amp: %w on this machine: no %s/devices/system/cpu/cpuN/cpufreq (needs CONFIG_CPU_FREQ and a cpufreq driver; VMs and containers usually have none, so emulate AMP on the host that runs the VM)", ErrNoCPUFreq, fs.Root())
	case len(missing) > 0:
		return nil, fmt.Errorf("amp: %w for CPUs %s (the others have it); refusing a partial AMP setup", ErrNoCPUFreq, numa.NewCPUSet(missing...))
	}
	return cpus, nil
}

// coresPerSocket counts the online CPUs in the socket of the first online
// CPU; 0 when the topology does not say.
func coresPerSocket(top *numa.Topology) int {
	sock := -1
	n := 0
	for _, c := range top.CPUs {
		if !c.Online || c.Socket < 0 {
			continue
		}
		if sock < 0 {
			sock = c.Socket
		}
		if c.Socket == sock {
			n++
		}
	}
	return n
}
