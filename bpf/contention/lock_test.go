package contention

import (
	"errors"
	"testing"

	"github.com/syncord/syncord/kernel"
)

func TestParseLockAddr(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   uint64
		isAddr bool
	}{
		{"0xffffffff8300b704", 0xffffffff8300b704, true},
		{"ffffffff8300b704", 0xffffffff8300b704, true},
		{"0x10", 0x10, true},
		{"rename_lock", 0, false},
		{"dead", 0, false}, // short hex-looking word: a symbol name
		{"", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := ParseLockAddr(tc.in)
			if got != tc.want || ok != tc.isAddr {
				t.Errorf("ParseLockAddr(%q) = %#x, %v; want %#x, %v", tc.in, got, ok, tc.want, tc.isAddr)
			}
		})
	}
}

// TestLockLabel: the SynCord hooks see rename_lock's spinlock at
// rename_lock+0x4 (seqlock_t: seqcount, then the lock); it is named after
// its object, while text addresses and far offsets are not.
func TestLockLabel(t *testing.T) {
	syms := kernel.ParseKallsyms([]string{
		"ffffffff812304f0 T d_move",
		"ffffffff82208580 D rename_lock",
		"ffffffff82208580 u rename_lock\t[livepatch_concord_lockstat]",
		"ffffffff82208600 d other",
	})
	for _, c := range []struct {
		addr uint64
		want string
	}{
		{0xffffffff82208580, "rename_lock"},
		{0xffffffff82208584, "rename_lock+0x4"},
		{0xffffffff822085c0, ""},
		{0xffffffff812304f4, ""},
		{0xffffffff812304f0, "d_move"},
		{0x1000, ""},
	} {
		if got := LockLabel(syms, c.addr); got != c.want {
			t.Errorf("LockLabel(%#x) = %q, want %q", c.addr, got, c.want)
		}
	}
}

// TestResolveLock: an address filters that address and needs no symbols;
// a symbol filters the 4096 bytes from it and names the lock after it; a
// symbol kallsyms does not list is ErrNoLockSymbol.
func TestResolveLock(t *testing.T) {
	syms := kernel.ParseKallsyms([]string{"ffffffff82208580 D rename_lock"})
	f, err := ResolveLock("0xffffffff82208584", nil)
	if err != nil || f != (LockFilter{Lo: 0xffffffff82208584, Hi: 0xffffffff82208585}) || NeedsSymbols("0xffffffff82208584") {
		t.Fatalf("address: %+v, %v", f, err)
	}
	f, err = ResolveLock("rename_lock", syms)
	if err != nil || f != (LockFilter{Lo: 0xffffffff82208580, Hi: 0xffffffff82208580 + 4096, Symbol: "rename_lock"}) || !NeedsSymbols("rename_lock") {
		t.Fatalf("symbol: %+v, %v", f, err)
	}
	if _, err := ResolveLock("no_such_lock", syms); !errors.Is(err, ErrNoLockSymbol) {
		t.Fatalf("unknown symbol: %v", err)
	}
	if NeedsSymbols("") {
		t.Fatal("no lock needs symbols")
	}
}
