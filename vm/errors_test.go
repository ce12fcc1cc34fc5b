package vm

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestErrorsWrap: vm's errors wrap their cause with %w, so callers test
// them with errors.Is and errors.As, and keep their text.
func TestErrorsWrap(t *testing.T) {
	// qmp.go: a refused dial keeps the errno.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "tcp:" + l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := DialQMP(ctx, addr); !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "is QEMU running") {
		t.Errorf("DialQMP(closed port) = %v; want ECONNREFUSED wrapped, with the advice", err)
	}
	// qmp.go and config.go: a refused address is an *AddrError, a remote
	// host ErrNotLoopback.
	if _, err := DialQMP(ctx, "tcp:192.0.2.1:5555"); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("DialQMP(remote) = %v; want ErrNotLoopback", err)
	}
	d := Config{Kernel: "/k", Initrd: "/i", RunDir: "/r"}.WithDefaults()
	d.QMP = "tcp:127.0.0.1:notaport"
	var ae *AddrError
	if err := d.Validate(); !errors.As(err, &ae) || ae.Addr != d.QMP || !strings.HasPrefix(err.Error(), "vm config: QMP address") {
		t.Errorf("Validate(bad QMP) = %v; want a vm config error wrapping *AddrError", err)
	}
	// pin.go: a missing sysfs keeps fs.ErrNotExist.
	if _, err := ReadHostTopology(filepath.Join(t.TempDir(), "nosys")); !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "read host topology: ") {
		t.Errorf("ReadHostTopology(missing) = %v; want fs.ErrNotExist wrapped", err)
	}
	// amp.go: restore outside the cpufreq range is a *FreqRangeError with
	// the text it had.
	fsys, top := readTop(t, copyFixture(t, "synth-2x4-cpufreq"))
	_, err = PlanAMPRestore(fsys, top, AMPOptions{FastKHz: 3000000, SlowKHz: 1500000})
	var fe *FreqRangeError
	if !errors.As(err, &fe) || fe.KHz != 3000000 || !strings.HasPrefix(err.Error(), "amp restore: 3000000 kHz is outside cpu 0's range") {
		t.Errorf("PlanAMPRestore(out of range) = %v; want *FreqRangeError, text kept", err)
	}
	if _, err = PlanAMP(fsys, top, AMPOptions{FastKHz: 3000000, SlowKHz: 1500000}); !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), "amp: 3000000 kHz") {
		t.Errorf("PlanAMP(out of range) = %v; want *FreqRangeError, text kept", err)
	}
}
