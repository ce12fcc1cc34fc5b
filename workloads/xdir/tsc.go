package xdir

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/syncord/syncord/kernel"
)

// TSCFreq is a TSC frequency and where it came from.
type TSCFreq struct {
	Hz     float64
	Source string
}

// TSCFrequency returns the TSC frequency to turn syscall 436's cycles into
// ns: the kernel's own calibration from its log (kernel.TSCFromLog: the
// figure the kernel's TSC clocksource uses), else a measurement of RDTSC
// against CLOCK_MONOTONIC_RAW over 200 ms. /proc/cpuinfo's "cpu MHz" is
// not used: it is the current core clock, which moves with frequency
// scaling, while the TSC ticks at a constant rate.
func TSCFrequency() (TSCFreq, error) {
	var logErr error
	if log, err := kernel.ReadKernelLog(); err == nil {
		if hz, line, ok := kernel.TSCFromLog(log); ok {
			return TSCFreq{Hz: hz, Source: "kernel log: " + line}, nil
		}
		logErr = errors.New("no tsc calibration line in the kernel log (wrapped?)")
	} else {
		logErr = err
	}
	hz, err := measureTSC(200 * time.Millisecond)
	if err != nil {
		return TSCFreq{}, fmt.Errorf("tsc frequency: %v; %w", logErr, err)
	}
	return TSCFreq{Hz: hz, Source: fmt.Sprintf("measured: RDTSC against CLOCK_MONOTONIC_RAW over 200 ms (%v)", logErr)}, nil
}

// measureTSC counts TSC ticks against CLOCK_MONOTONIC_RAW over d.
func measureTSC(d time.Duration) (float64, error) {
	if !haveRDTSC {
		return 0, errors.New("no RDTSC on this architecture")
	}
	var t0, t1 unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC_RAW, &t0); err != nil {
		return 0, err
	}
	c0 := rdtsc()
	time.Sleep(d)
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC_RAW, &t1); err != nil {
		return 0, err
	}
	c1 := rdtsc()
	ns := t1.Nano() - t0.Nano()
	if ns <= 0 || c1 <= c0 {
		return 0, fmt.Errorf("measure tsc: %d ticks in %d ns", c1-c0, ns)
	}
	return float64(c1-c0) * 1e9 / float64(ns), nil
}
