package kernel

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/syncord/syncord/internal/pseudofs"
)

// SynCordSymbols are kernel symbols that exist only on SynCord kernels
// (SYNCORD-ABI.md section 1); any one of them in /proc/kallsyms marks one.
// The first two are functions, listed also without CONFIG_KALLSYMS_ALL;
// the others are variables, listed only with it.
var SynCordSymbols = []string{
	"bpf_queued_spin_lock",
	"bpf_queued_spin_unlock",
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
	// KallsymsAll is true when /proc/kallsyms lists variables
	// (CONFIG_KALLSYMS_ALL); branch detection does not need it.
	KallsymsAll bool `json:"kallsyms_all"`
	// Branch is the SynCord branch (stock-syncord, shfllock-syncord,
	// cna-syncord) of a SynCord kernel, "" when unknown.
	Branch Branch `json:"branch,omitempty"`
	// BranchFrom says how Branch was found: the kallsyms evidence
	// ("kallsyms: function bpf_back_off") or "release" (the symbols did
	// not decide, or kallsyms was unreadable, and uname -r names it).
	BranchFrom string `json:"branch_from,omitempty"`
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
	proc, sys pseudofs.FS
}

// NewFS returns an FS reading roots (checked by pseudofs.NewRoots; an
// empty root means the default).
func NewFS(roots pseudofs.Roots) FS {
	if roots.Proc == "" {
		roots.Proc = pseudofs.DefaultProcMountPoint
	}
	if roots.Sys == "" {
		roots.Sys = pseudofs.DefaultSysMountPoint
	}
	return FS{proc: roots.Proc, sys: roots.Sys}
}

// NewDefaultFS reads /proc and /sys.
func NewDefaultFS() FS { return NewFS(pseudofs.DefaultRoots()) }

// Release reads /proc/sys/kernel/osrelease: the release as uname -r
// prints it.
func (fs FS) Release() (string, error) {
	rel, err := fs.proc.Read("sys/kernel/osrelease", 4096)
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
	if _, err := os.Stat(fs.sys.Path("kernel/btf/vmlinux")); err == nil {
		info.BTF = true
	}
	found, all, err := fs.findSymbols(append(append([]string(nil), SynCordSymbols...), branchSymbols...))
	switch {
	case err == nil:
		info.Kallsyms = true
		info.KallsymsAll = all
		for _, s := range SynCordSymbols {
			if _, ok := found[s]; ok {
				info.SynCordSymbol, info.SynCord = s, true
				break
			}
		}
	case errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission):
		// No kallsyms (CONFIG_KALLSYMS=n or not permitted): unknown.
	default:
		return nil, err
	}
	if info.SynCord {
		if b, why := branchFromSymbols(found); b != "" {
			info.Branch, info.BranchFrom = b, "kallsyms: "+why
		}
	}
	if info.Branch == "" && (info.SynCord || !info.Kallsyms) && info.SynCordName {
		if b := branchFromRelease(info.Release); b != "" {
			info.Branch, info.BranchFrom = b, "release"
		}
	}
	return info, nil
}

// findSymbols scans /proc/kallsyms for names and returns those present
// with their type letters, and whether it lists any variable (a kernel
// with CONFIG_KALLSYMS_ALL).
func (fs FS) findSymbols(names []string) (map[string]byte, bool, error) {
	path := fs.proc.Path("kallsyms")
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	found := map[string]byte{}
	all := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		_, name, typ, ok := parseKallsymsLine(sc.Bytes())
		if !ok {
			continue
		}
		all = all || isData(typ)
		if want[string(name)] {
			if _, dup := found[string(name)]; !dup {
				found[string(name)] = typ
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, false, fmt.Errorf("read %s: %w", path, err)
	}
	return found, all, nil
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
