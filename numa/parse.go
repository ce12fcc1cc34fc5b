package numa

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// parseCPUListFile parses a cpulist/nodelist attribute ("0-3,8\n").
func parseCPUListFile(b []byte) (CPUSet, error) {
	return ParseCPUList(string(b))
}

// parseInt parses a one-number attribute such as core_id or
// physical_package_id ("3\n"; -1 is valid for an unknown package).
func parseInt(b []byte) (int, error) {
	s := trimLine(b)
	if s == "" {
		return 0, errors.New("empty value, want an integer")
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("bad integer %q", s)
	}
	return n, nil
}

// parseKHz parses a cpufreq frequency attribute in kHz ("2400000\n").
func parseKHz(b []byte) (uint64, error) {
	s := trimLine(b)
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad frequency %q, want kHz", s)
	}
	return n, nil
}

// parseKHzList parses scaling_available_frequencies ("2400000 2000000 \n").
func parseKHzList(b []byte) ([]uint64, error) {
	fields := strings.Fields(string(b))
	out := make([]uint64, 0, len(fields))
	for _, f := range fields {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad frequency %q, want kHz", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseWord parses a one-word attribute such as scaling_driver.
func parseWord(b []byte) (string, error) {
	s := trimLine(b)
	if s == "" || strings.ContainsAny(s, " \t\n") {
		return "", fmt.Errorf("bad value %q, want one word", s)
	}
	return s, nil
}

// parseDistances parses a node's distance row ("10 21 21 21\n").
func parseDistances(b []byte) ([]int, error) {
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return nil, errors.New("empty distance row")
	}
	out := make([]int, len(fields))
	for i, f := range fields {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad distance %q", f)
		}
		out[i] = n
	}
	return out, nil
}

// parseMemTotal returns the MemTotal of a nodeN/meminfo file in bytes
// ("Node 0 MemTotal:        4941600 kB").
func parseMemTotal(b []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		_, rest, ok := strings.Cut(line, "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("bad MemTotal line %q, want \"Node N MemTotal: <n> kB\"", line)
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil || kb > (1<<64-1)/1024 {
			return 0, fmt.Errorf("bad MemTotal value %q", f[0])
		}
		return kb * 1024, nil
	}
	return 0, errors.New("no MemTotal line")
}
