package kernel

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"

	"golang.org/x/sys/unix"
)

// ReadKernelLog returns the kernel's log buffer with syslog(2)
// SYSLOG_ACTION_READ_ALL, as dmesg reads it (needs CAP_SYSLOG, or
// kernel.dmesg_restrict=0).
func ReadKernelLog() ([]byte, error) {
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_SIZE_BUFFER, nil)
	if err != nil {
		return nil, fmt.Errorf("syslog(SYSLOG_ACTION_SIZE_BUFFER): %w", err)
	}
	if n <= 0 || n > 64<<20 {
		n = 1 << 20
	}
	buf := make([]byte, n)
	m, err := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	if err != nil {
		return nil, fmt.Errorf("read the kernel log: %w (needs CAP_SYSLOG or kernel.dmesg_restrict=0)", err)
	}
	return buf[:m], nil
}

var (
	tscRefinedRE  = regexp.MustCompile(`tsc: Refined TSC clocksource calibration: ([0-9]+(?:\.[0-9]+)?) MHz`)
	tscDetectedRE = regexp.MustCompile(`tsc: Detected ([0-9]+(?:\.[0-9]+)?) MHz (?:processor|TSC)`)
)

// TSCFromLog finds the TSC frequency the x86 kernel calibrated at boot in
// its log: the last "tsc: Refined TSC clocksource calibration: X MHz"
// (the final, most precise figure), else the last "tsc: Detected X MHz
// processor" (or "... MHz TSC"). It returns the frequency in Hz and the
// line it came from (from "tsc:" on); ok is false when the log holds neither (a wrapped
// log buffer, or not x86).
func TSCFromLog(log []byte) (hz float64, line string, ok bool) {
	for _, re := range []*regexp.Regexp{tscRefinedRE, tscDetectedRE} {
		all := re.FindAllSubmatchIndex(log, -1)
		if len(all) == 0 {
			continue
		}
		m := all[len(all)-1]
		mhz, err := strconv.ParseFloat(string(log[m[2]:m[3]]), 64)
		if err != nil || mhz <= 0 {
			continue
		}
		start := m[0] // from "tsc:", without the log level and time stamp
		end := m[1]
		if i := bytes.IndexByte(log[m[1]:], '\n'); i >= 0 {
			end = m[1] + i
		}
		return mhz * 1e6, string(bytes.TrimSpace(log[start:end])), true
	}
	return 0, "", false
}
