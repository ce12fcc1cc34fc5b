package kernel

import (
	"bufio"
	"fmt"
	"os"
	"sort"
)

// Symbol is one /proc/kallsyms entry.
type Symbol struct {
	Addr   uint64
	Name   string
	Type   byte   // nm-style type letter: T text, D/d data, B/b bss, ...
	Module string // "" for vmlinux
}

// Symbols is a kallsyms table sorted by address.
type Symbols struct {
	syms   []Symbol
	byName map[string]int
}

// Kallsyms reads /proc/kallsyms. Addresses read as zero without
// CAP_SYSLOG (kptr_restrict); that is an error here, since every lookup
// would then be wrong.
func (fs FS) Kallsyms() (*Symbols, error) {
	path := fs.proc.Path("kallsyms")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w (needs CONFIG_KALLSYMS)", path, err)
	}
	defer f.Close()
	s := &Symbols{byName: make(map[string]int)}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var nonzero bool
	for sc.Scan() {
		line := sc.Bytes()
		addr, name, typ, ok := parseKallsymsLine(line)
		if !ok || undefined(typ) {
			continue
		}
		sym := Symbol{Addr: addr, Name: string(name), Type: typ}
		if i := indexByte(line, '['); i >= 0 {
			if j := indexByte(line[i:], ']'); j > 0 {
				sym.Module = string(line[i+1 : i+j])
			}
		}
		nonzero = nonzero || addr != 0
		s.syms = append(s.syms, sym)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(s.syms) > 0 && !nonzero {
		return nil, fmt.Errorf("read %s: all addresses are zero (needs CAP_SYSLOG, or set kernel.kptr_restrict=0)", path)
	}
	sort.SliceStable(s.syms, func(i, j int) bool { return s.syms[i].Addr < s.syms[j].Addr })
	for i, sym := range s.syms {
		if _, dup := s.byName[sym.Name]; !dup {
			s.byName[sym.Name] = i
		}
	}
	return s, nil
}

// undefined reports a module's reference to a symbol it does not define
// ("u rename_lock [livepatch_concord_lockstat]", at the definition's
// address): not a symbol of its own, and it would hide the definition.
func undefined(typ byte) bool { return typ == 'u' || typ == 'U' }

func indexByte(b []byte, c byte) int {
	for i := range b {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// ParseKallsyms builds a table from kallsyms text (for tests and fixtures).
func ParseKallsyms(lines []string) *Symbols {
	s := &Symbols{byName: make(map[string]int)}
	for _, l := range lines {
		if addr, name, typ, ok := parseKallsymsLine([]byte(l)); ok && !undefined(typ) {
			s.syms = append(s.syms, Symbol{Addr: addr, Name: string(name), Type: typ})
		}
	}
	sort.SliceStable(s.syms, func(i, j int) bool { return s.syms[i].Addr < s.syms[j].Addr })
	for i, sym := range s.syms {
		if _, dup := s.byName[sym.Name]; !dup {
			s.byName[sym.Name] = i
		}
	}
	return s
}

// Len is the number of symbols.
func (s *Symbols) Len() int { return len(s.syms) }

// Address returns the address of the named symbol.
func (s *Symbols) Address(name string) (uint64, bool) {
	i, ok := s.byName[name]
	if !ok {
		return 0, false
	}
	return s.syms[i].Addr, true
}

// Lookup returns the symbol that addr falls in and the offset into it. For
// data symbols (locks are global variables) an exact match is the usual
// case; offset > 0 means addr lies inside a larger object or function.
func (s *Symbols) Lookup(addr uint64) (Symbol, uint64, bool) {
	i := sort.Search(len(s.syms), func(i int) bool { return s.syms[i].Addr > addr }) - 1
	if i < 0 {
		return Symbol{}, 0, false
	}
	return s.syms[i], addr - s.syms[i].Addr, true
}

// Name formats addr as "sym" or "sym+0x10", or "" when it is below every
// symbol. Exact says whether offset 0 is required (true for naming a lock:
// an address inside a function or a dynamically allocated lock has no name).
func (s *Symbols) Name(addr uint64, exact bool) string {
	sym, off, ok := s.Lookup(addr)
	if !ok || (exact && off != 0) {
		return ""
	}
	if off == 0 {
		return sym.Name
	}
	return fmt.Sprintf("%s+0x%x", sym.Name, off)
}
