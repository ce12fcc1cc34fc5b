package kernel

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/syncord/syncord/internal/pseudofs"
)

// SynCordSymbols are kernel symbols that exist only on SynCord kernels
// (SYNCORD-ABI.md section 1); any one of them in /proc/kallsyms marks one.
var SynCordSymbols = []string{
	"num_policy",
	"bpf_prog_lock_acquired",
	"bpf_prog_lock_to_release",
	"bpf_prog_lock_to_enter_slowpath",
	"bpf_prog_should_reorder",
}

// Info is what Probe found out about a kernel.
type Info struct {
	// Release is /proc/sys/kernel/osrelease, as uname -r prints it.
	Release string `json:"release"`
	// SynCord is true when kallsyms holds a SynCord-only symbol.
	SynCord bool `json:"syncord"`
	// SynCordSymbol is the symbol that proved it.
	SynCordSymbol string `json:"syncord_symbol,omitempty"`
	// SynCordName is true when the release ends in -syncord or -syncord+.
	SynCordName bool `json:"syncord_name"`
	// BTF is true when /sys/kernel/btf/vmlinux exists.
	BTF bool `json:"btf"`
	// Kallsyms is false when /proc/kallsyms could not be read; SynCord
	// is then unknown and reported false.
	Kallsyms bool `json:"kallsyms"`
}

// Kind names the kernel for status output: "syncord" or "stock".
func (i *Info) Kind() string {
	if i.SynCord {
		return "syncord"
	}
	return "stock"
}

// FS reads kernel facts below a procfs and a sysfs root.
type FS struct {
	proc, sys string
}

// NewFS returns an FS reading procRoot (normally /proc) and sysRoot
// (normally /sys).
func NewFS(procRoot, sysRoot string) FS { return FS{proc: procRoot, sys: sysRoot} }

// NewDefaultFS reads /proc and /sys.
func NewDefaultFS() FS { return NewFS("/proc", "/sys") }

// Release reads /proc/sys/kernel/osrelease: the release as uname -r
// prints it.
func (fs FS) Release() (string, error) {
	rel, err := pseudofs.Read(filepath.Join(fs.proc, "sys/kernel/osrelease"), 4096)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(rel)), nil
}

// Probe reads /proc/sys/kernel/osrelease, scans /proc/kallsyms for the
// SynCord symbols and checks /sys/kernel/btf/vmlinux.
func (fs FS) Probe() (*Info, error) {
	rel, err := fs.Release()
	if err != nil {
		return nil, err
	}
	info := &Info{Release: rel}
	info.SynCordName = strings.HasSuffix(strings.TrimSuffix(info.Release, "+"), "-syncord")
	if _, err := os.Stat(filepath.Join(fs.sys, "kernel/btf/vmlinux")); err == nil {
		info.BTF = true
	}
	sym, err := fs.findSymbol(SynCordSymbols)
	switch {
	case err == nil:
		info.Kallsyms = true
		info.SynCordSymbol = sym
		info.SynCord = sym != ""
	case errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission):
		// No kallsyms (CONFIG_KALLSYMS=n or not permitted): unknown.
	default:
		return nil, err
	}
	return info, nil
}

// findSymbol returns the first of names present in /proc/kallsyms, or "".
func (fs FS) findSymbol(names []string) (string, error) {
	path := filepath.Join(fs.proc, "kallsyms")
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		_, name, _, ok := parseKallsymsLine(sc.Bytes())
		if ok && want[string(name)] {
			return string(name), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return "", nil
}

// parseKallsymsLine splits "ffffffff82a0b040 D rename_lock [mod]".
func parseKallsymsLine(line []byte) (addr uint64, name []byte, typ byte, ok bool) {
	f1 := bytes.IndexByte(line, ' ')
	if f1 <= 0 || len(line) < f1+4 || line[f1+2] != ' ' {
		return 0, nil, 0, false
	}
	for _, c := range line[:f1] {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, nil, 0, false
		}
		addr = addr<<4 | uint64(v)
	}
	typ = line[f1+1]
	name = line[f1+3:]
	if i := bytes.IndexAny(name, " \t"); i >= 0 {
		name = name[:i]
	}
	return addr, name, typ, len(name) > 0
}
