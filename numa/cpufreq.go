package numa

import (
	"errors"
	"fmt"
	"os"
	"strconv"
)

// errNoCPUFreq is returned by CPUFreq for a CPU without cpuN/cpufreq.
var errNoCPUFreq = errors.New("no cpufreq")

// ErrNoCPUFreq is wrapped by the errors of the cpufreq writers when a CPU
// has no cpufreq directory (compare with errors.Is).
var ErrNoCPUFreq = errors.New("cpufreq not available")

// CPUFreq reads /sys/devices/system/cpu/cpuN/cpufreq/{scaling_driver,
// scaling_min_freq,scaling_max_freq,scaling_cur_freq,cpuinfo_min_freq,
// cpuinfo_max_freq,scaling_available_frequencies}. A CPU without cpufreq
// gives (nil, nil).
func (fs *FS) CPUFreq(cpu int) (*CPUFreq, error) {
	f, err := fs.cpuFreq(cpu)
	if err == errNoCPUFreq {
		return nil, nil
	}
	return f, err
}

func (fs *FS) cpuFreq(cpu int) (*CPUFreq, error) {
	dir := cpuFreqDir(cpu) + "/"
	drv, err := readParsed(fs, dir+"scaling_driver", parseWord)
	if isNotExist(err) {
		return nil, errNoCPUFreq
	}
	if err != nil {
		return nil, err
	}
	f := &CPUFreq{Driver: drv}
	for _, v := range []struct {
		name string
		dst  *uint64
	}{
		{"scaling_min_freq", &f.ScalingMin},
		{"scaling_max_freq", &f.ScalingMax},
		{"cpuinfo_min_freq", &f.CPUInfoMin},
		{"cpuinfo_max_freq", &f.CPUInfoMax},
	} {
		if *v.dst, err = readParsed(fs, dir+v.name, parseKHz); err != nil {
			return nil, err
		}
	}
	if f.ScalingCur, err = readParsed(fs, dir+"scaling_cur_freq", parseKHz); err != nil && !isNotExist(err) {
		return nil, err
	}
	if f.Available, err = readParsed(fs, dir+"scaling_available_frequencies", parseKHzList); err != nil && !isNotExist(err) {
		return nil, err
	}
	return f, nil
}

func cpuFreqDir(cpu int) string { return cpuDir + "/cpu" + strconv.Itoa(cpu) + "/cpufreq" }

// SetCPUFreqMinMax sets the scaling range of cpu to [minKHz, maxKHz] by
// writing /sys/devices/system/cpu/cpuN/cpufreq/scaling_{min,max}_freq under
// the FS root. The two writes are ordered so the kernel never sees min >
// max: when the new minimum is above the current maximum, the maximum is
// written first. Needs root on a live system.
func (fs *FS) SetCPUFreqMinMax(cpu int, minKHz, maxKHz uint64) error {
	if minKHz == 0 || maxKHz == 0 || minKHz > maxKHz {
		return fmt.Errorf("set cpufreq of cpu %d: bad range %d-%d kHz (want 0 < min <= max)", cpu, minKHz, maxKHz)
	}
	dir := cpuFreqDir(cpu)
	if _, err := os.Stat(fs.path(dir)); err != nil {
		if isNotExist(err) {
			return fmt.Errorf("%w for cpu %d (no %s; needs CONFIG_CPU_FREQ and a cpufreq driver)", ErrNoCPUFreq, cpu, fs.path(dir))
		}
		return fmt.Errorf("set cpufreq of cpu %d: %w", cpu, err)
	}
	curMax, err := readParsed(fs, dir+"/scaling_max_freq", parseKHz)
	if err != nil {
		return fmt.Errorf("set cpufreq of cpu %d: %w", cpu, err)
	}
	first, second := fs.path(dir+"/scaling_min_freq"), fs.path(dir+"/scaling_max_freq")
	firstV, secondV := minKHz, maxKHz
	if minKHz > curMax {
		first, second = second, first
		firstV, secondV = secondV, firstV
	}
	if err := writeAttr(first, firstV); err != nil {
		return fmt.Errorf("set cpufreq of cpu %d: %w", cpu, err)
	}
	if err := writeAttr(second, secondV); err != nil {
		return fmt.Errorf("set cpufreq of cpu %d: %w", cpu, err)
	}
	return nil
}

// writeAttr writes v to an existing sysfs attribute (never creates one).
func writeAttr(path string, v uint64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		if os.IsPermission(err) {
			return fmt.Errorf("%w (needs root)", err)
		}
		return err
	}
	if _, err := f.Write([]byte(strconv.FormatUint(v, 10) + "\n")); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
