package kmod

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/syncord/syncord/internal/pseudofs"
)

// State is a loaded module's state as /proc/modules shows it.
type State string

// The states of struct module (MODULE_STATE_*), as printed by /proc/modules.
const (
	Live      State = "Live"
	Loading   State = "Loading"
	Unloading State = "Unloading"
)

// Module is one line of /proc/modules.
type Module struct {
	Name     string   `json:"name"`
	Size     uint64   `json:"size"`
	Refcount int      `json:"refcount"` // -1 when the kernel cannot unload it
	Users    []string `json:"users,omitempty"`
	State    State    `json:"state"`
	Taints   string   `json:"taints,omitempty"` // e.g. "OE", "K" for livepatch
}

// Proc reads module state under a procfs root ("/proc" on a live system).
type Proc struct {
	root pseudofs.FS
}

// NewProc returns a reader of the procfs mount point proc ("" means
// "/proc"; pseudofs.Roots.Proc is checked).
func NewProc(proc pseudofs.FS) *Proc {
	if proc == "" {
		proc = pseudofs.DefaultProcMountPoint
	}
	return &Proc{root: proc}
}

// maxProcModules bounds the one read of /proc/modules.
const maxProcModules = 4 << 20

// Modules reads <proc>/modules.
func (p *Proc) Modules() ([]Module, error) {
	path := p.root.Path("modules")
	data, err := pseudofs.Read(path, maxProcModules)
	if err != nil {
		return nil, fmt.Errorf("read loaded modules: %w", err)
	}
	mods, err := parseModules(data)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return mods, nil
}

// Module returns the loaded module name ("-" and "_" are the same) from
// <proc>/modules, and whether it is loaded.
func (p *Proc) Module(name string) (Module, bool, error) {
	mods, err := p.Modules()
	if err != nil {
		return Module{}, false, err
	}
	want := Normalize(name)
	for _, m := range mods {
		if m.Name == want {
			return m, true, nil
		}
	}
	return Module{}, false, nil
}

// Normalize returns the kernel's spelling of a module name: KBUILD_MODNAME
// turns "-" into "_".
func Normalize(name string) string { return strings.ReplaceAll(name, "-", "_") }

// parseModules parses /proc/modules lines:
//
//	name size refcount users state address [(taints)]
//
// users is "-" or a comma-terminated list; refcount is "-" for modules
// built without CONFIG_MODULE_UNLOAD support for them.
func parseModules(data []byte) ([]Module, error) {
	var mods []Module
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		f := strings.Fields(text)
		if len(f) < 5 {
			return nil, fmt.Errorf("line %d: %d fields, want at least 5: %q", line, len(f), text)
		}
		m := Module{Name: f[0], State: State(f[4])}
		size, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: size %q: %w", line, f[1], err)
		}
		m.Size = size
		if f[2] == "-" {
			m.Refcount = -1
		} else {
			rc, err := strconv.Atoi(f[2])
			if err != nil {
				return nil, fmt.Errorf("line %d: refcount %q: %w", line, f[2], err)
			}
			m.Refcount = rc
		}
		if f[3] != "-" {
			for _, u := range strings.Split(f[3], ",") {
				if u != "" {
					m.Users = append(m.Users, u)
				}
			}
		}
		switch m.State {
		case Live, Loading, Unloading:
		default:
			return nil, fmt.Errorf("line %d: unknown module state %q", line, f[4])
		}
		if last := f[len(f)-1]; len(f) >= 7 && strings.HasPrefix(last, "(") && strings.HasSuffix(last, ")") {
			m.Taints = strings.Trim(last, "()")
		}
		mods = append(mods, m)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return mods, nil
}
