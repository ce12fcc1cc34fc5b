package bpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// cFormat is the reference reader's printf, spelled out with Go's fmt
// (which matches C for these verbs) to check the hand-rolled fast path.
func cFormat(rows []LockStat) string {
	var b strings.Builder
	b.WriteString(strings.Repeat("=", 150) + "\n")
	fmt.Fprintf(&b, "%20s ", "lock addr")
	fmt.Fprintf(&b, "%15s %15s %15s %15s ", "contentions", "con-bounces", "acquisition", "acq-bounces")
	fmt.Fprintf(&b, "%10s %10s %10s %10s %10s %10s \n", "wait-min", "wait-max", "wait-tot", "hold-min", "hold-max", "hold-tot")
	b.WriteString(strings.Repeat("=", 150) + "\n")
	for _, r := range rows {
		p := "(nil)"
		if r.Addr != 0 {
			p = fmt.Sprintf("%#x", r.Addr)
		}
		fmt.Fprintf(&b, "%20s %15d %15d %15d %15d %10d %10d %10d %10d %10d %10d\n", p,
			r.Contentions, r.ConBounces, r.Acquisitions, r.AcqBounces,
			r.WaitMin, r.WaitMax, r.WaitTotal, r.HoldMin, r.HoldMax, r.HoldTotal)
	}
	return b.String()
}

func TestWriteLockstatTable(t *testing.T) {
	rows := []LockStat{
		{Addr: 0xffffffff82a0b040, Contentions: 12, ConBounces: 3, WaitMin: 100, WaitMax: 5000, WaitTotal: 9000,
			Acquisitions: 123456789012, AcqBounces: 7, HoldMin: 10, HoldMax: 20, HoldTotal: 12345678901},
		{Addr: 0, Contentions: 1},
	}
	var got bytes.Buffer
	if err := WriteLockstatTable(&got, rows, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	if want := cFormat(rows); got.String() != want {
		t.Fatalf("table differs\n got:\n%s\nwant:\n%s", got.String(), want)
	}
	// One literal row, so a change of both implementations cannot pass.
	wantRow := "  0xffffffff82a0b040              12               3    123456789012               7        100       5000       9000         10         20 12345678901\n"
	if !strings.Contains(got.String(), wantRow) {
		t.Fatalf("row not found:\n%q\nin\n%s", wantRow, got.String())
	}
	if !strings.Contains(got.String(), "\n               (nil)               1 ") {
		t.Fatal("nil address not printed as (nil)")
	}
}

func TestWriteLockstatTableContentionOnly(t *testing.T) {
	rows := []LockStat{{Addr: 0xffffffff82a0b040, Symbol: "rename_lock", Contentions: 5, ConBounces: 2, WaitMin: 1, WaitMax: 9, WaitTotal: 20}}
	var got bytes.Buffer
	if err := WriteLockstatTable(&got, rows, TableOptions{ContentionOnly: true, Symbols: true}); err != nil {
		t.Fatal(err)
	}
	want := "  0xffffffff82a0b040               5               2               -               -          1          9         20          -          -          - rename_lock\n"
	lines := strings.Split(got.String(), "\n")
	if lines[3]+"\n" != want {
		t.Fatalf("got  %q\nwant %q", lines[3]+"\n", want)
	}
	if !strings.HasSuffix(lines[1], "hold-tot symbol") {
		t.Fatalf("header without symbol column: %q", lines[1])
	}
}

func TestDecodeLockStat(t *testing.T) {
	v := make([]byte, LockStatValueSize)
	for i := 0; i < 11; i++ {
		binary.LittleEndian.PutUint64(v[i*8:], uint64(i+1)*1000)
	}
	s, err := DecodeLockStat(0x10, v)
	if err != nil {
		t.Fatal(err)
	}
	want := LockStat{Addr: 0x10, PrevCPU: 1000, Contentions: 2000, ConBounces: 3000, WaitMin: 4000, WaitMax: 5000,
		WaitTotal: 6000, Acquisitions: 7000, AcqBounces: 8000, HoldMin: 9000, HoldMax: 10000, HoldTotal: 11000}
	if s != want {
		t.Fatalf("got %+v\nwant %+v", s, want)
	}
	if _, err := DecodeLockStat(0, v[:80]); err == nil {
		t.Fatal("short value accepted")
	}
}

func TestSortLockStats(t *testing.T) {
	rows := []LockStat{{Addr: 3, WaitTotal: 5}, {Addr: 1, WaitTotal: 9}, {Addr: 2, WaitTotal: 5}}
	if err := SortLockStats(rows, "wait_total"); err != nil {
		t.Fatal(err)
	}
	if rows[0].Addr != 1 || rows[1].Addr != 2 || rows[2].Addr != 3 {
		t.Fatalf("order %v", rows)
	}
	if err := SortLockStats(rows, "bogus"); err == nil || !strings.Contains(err.Error(), "wait_total") {
		t.Fatalf("bad field error: %v", err)
	}
}

func BenchmarkWriteLockstatTable10k(b *testing.B) {
	rows := make([]LockStat, 10000)
	for i := range rows {
		rows[i] = LockStat{Addr: 0xffff888000000000 + uint64(i)*64, Contentions: uint64(i), WaitTotal: uint64(i) * 100}
	}
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		WriteLockstatTable(&buf, rows, TableOptions{})
	}
}
