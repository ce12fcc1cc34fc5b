package contention

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/syncord/syncord/kernel"
)

// ParseLockAddr parses a lock given as an address: "0xffffffff8300b704"
// or "ffffffff8300b704". A short word that happens to be hex ("dead") is
// a symbol name, not an address.
func ParseLockAddr(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "0x"), 16, 64)
	if err != nil || (!strings.HasPrefix(s, "0x") && len(s) < 8) {
		return 0, false
	}
	return v, true
}

// ErrNoLockSymbol says a lock symbol is not in kallsyms.
var ErrNoLockSymbol = errors.New("not in /proc/kallsyms (kernels without CONFIG_KALLSYMS_ALL list no data symbols; give the lock's address instead)")

// LockFilter is the lock a profile is limited to: the address range
// Options.LockLo/LockHi filter in the kernel, and the symbol
// ReportOptions.LockSymbol names it by.
type LockFilter struct {
	Lo, Hi uint64
	Symbol string
}

// ResolveLock turns a lock given as SYMBOL|ADDR into a filter. An address
// is that one address; a symbol is the range [symbol, symbol+4096), since
// the lock may lie inside the object the symbol names (rename_lock's
// spinlock is at +4), and the report keeps the symbol. syms may be nil for
// an address (see NeedsSymbols).
func ResolveLock(spec string, syms *kernel.Symbols) (LockFilter, error) {
	if a, ok := ParseLockAddr(spec); ok {
		return LockFilter{Lo: a, Hi: a + 1}, nil
	}
	var a uint64
	ok := false
	if syms != nil {
		a, ok = syms.Address(spec)
	}
	if !ok {
		return LockFilter{}, fmt.Errorf("lock symbol %q is %w", spec, ErrNoLockSymbol)
	}
	return LockFilter{Lo: a, Hi: a + maxLockOffset, Symbol: spec}, nil
}

// NeedsSymbols reports whether ResolveLock needs kallsyms for spec (a
// symbol, not an address).
func NeedsSymbols(spec string) bool {
	_, isAddr := ParseLockAddr(spec)
	return spec != "" && !isAddr
}

// lockSlack is how far into a global data object a lock may lie and still
// be named after it by LockLabel: rename_lock is a seqlock_t whose queued
// spinlock, the address the SynCord hooks see, is at rename_lock+0x4.
const lockSlack = 64

// LockLabel names a lock address for the SynCord lockstat table: "sym"
// for a global lock, "sym+0xN" for a lock inside a global data object
// (within 64 bytes), "" otherwise (a dynamically allocated lock, or an
// address inside a function).
func LockLabel(syms *kernel.Symbols, addr uint64) string {
	sym, off, ok := syms.Lookup(addr)
	if !ok {
		return ""
	}
	if off == 0 {
		return sym.Name
	}
	switch sym.Type {
	case 'd', 'D', 'b', 'B':
		if off < lockSlack {
			return fmt.Sprintf("%s+0x%x", sym.Name, off)
		}
	}
	return ""
}
