package bpf

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// LockStat is one lock's row in the SynCord lockstat map: key u64 lock
// address, value 11 u64 in this order (SYNCORD-ABI.md section 2). Times
// are nanoseconds.
type LockStat struct {
	Addr         uint64 `json:"addr"`
	Symbol       string `json:"symbol,omitempty"`
	PrevCPU      uint64 `json:"prev_cpu"`
	Contentions  uint64 `json:"contentions"`
	ConBounces   uint64 `json:"con_bounces"`
	WaitMin      uint64 `json:"wait_min_ns"`
	WaitMax      uint64 `json:"wait_max_ns"`
	WaitTotal    uint64 `json:"wait_total_ns"`
	Acquisitions uint64 `json:"acquisitions"`
	AcqBounces   uint64 `json:"acq_bounces"`
	HoldMin      uint64 `json:"hold_min_ns"`
	HoldMax      uint64 `json:"hold_max_ns"`
	HoldTotal    uint64 `json:"hold_total_ns"`
}

// LockStatValueSize is the size in bytes of the map value (11 u64).
const LockStatValueSize = 11 * 8

// DecodeLockStat fills the value fields of s from a map value in the
// kernel's byte order (little endian on every SynCord target).
func DecodeLockStat(addr uint64, v []byte) (LockStat, error) {
	if len(v) != LockStatValueSize {
		return LockStat{}, fmt.Errorf("lockstat value is %d bytes, want %d (11 u64)", len(v), LockStatValueSize)
	}
	var f [11]uint64
	for i := range f {
		b := v[i*8 : i*8+8]
		f[i] = uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
	}
	return LockStat{Addr: addr, PrevCPU: f[0], Contentions: f[1], ConBounces: f[2],
		WaitMin: f[3], WaitMax: f[4], WaitTotal: f[5], Acquisitions: f[6],
		AcqBounces: f[7], HoldMin: f[8], HoldMax: f[9], HoldTotal: f[10]}, nil
}

// TableOptions changes how WriteLockstatTable prints.
type TableOptions struct {
	// ContentionOnly prints "-" in the acquisition, acq-bounces and hold
	// columns: the contention tracepoints see no acquisitions.
	ContentionOnly bool
	// Symbols adds a trailing column with the kallsyms name of the lock,
	// where it has one. Off, the output is byte-for-byte the artifact's.
	Symbols bool
}

var tableRule = strings.Repeat("=", 150)

// WriteLockstatTable prints rows as the artifact's lockstat reader does:
//
//	150 '=' / "%20s " lock addr, "%15s " x4, "%10s " x6 / 150 '=' /
//	"%20p %15lu %15lu %15lu %15lu %10lu %10lu %10lu %10lu %10lu %10lu\n" per lock
//
// Rows are printed in the order given.
func WriteLockstatTable(w io.Writer, rows []LockStat, opt TableOptions) error {
	bw := bufio.NewWriterSize(w, 64*1024)
	bw.WriteString(tableRule)
	bw.WriteByte('\n')
	fmt.Fprintf(bw, "%20s ", "lock addr")
	for _, h := range []string{"contentions", "con-bounces", "acquisition", "acq-bounces"} {
		fmt.Fprintf(bw, "%15s ", h)
	}
	for _, h := range []string{"wait-min", "wait-max", "wait-tot", "hold-min", "hold-max", "hold-tot"} {
		fmt.Fprintf(bw, "%10s ", h)
	}
	if opt.Symbols {
		bw.WriteString("symbol")
	}
	bw.WriteByte('\n')
	bw.WriteString(tableRule)
	bw.WriteByte('\n')
	var buf []byte
	for i := range rows {
		buf = appendRow(buf[:0], &rows[i], opt)
		bw.Write(buf)
	}
	return bw.Flush()
}

func appendRow(b []byte, r *LockStat, opt TableOptions) []byte {
	b = appendPad(b, cPointer(r.Addr), 20)
	b = append(b, ' ')
	num := func(v uint64, width int, dash bool) {
		if dash {
			b = appendPad(b, "-", width)
		} else {
			b = appendPadNum(b, v, width)
		}
	}
	co := opt.ContentionOnly
	num(r.Contentions, 15, false)
	b = append(b, ' ')
	num(r.ConBounces, 15, false)
	b = append(b, ' ')
	num(r.Acquisitions, 15, co)
	b = append(b, ' ')
	num(r.AcqBounces, 15, co)
	b = append(b, ' ')
	num(r.WaitMin, 10, false)
	b = append(b, ' ')
	num(r.WaitMax, 10, false)
	b = append(b, ' ')
	num(r.WaitTotal, 10, false)
	b = append(b, ' ')
	num(r.HoldMin, 10, co)
	b = append(b, ' ')
	num(r.HoldMax, 10, co)
	b = append(b, ' ')
	num(r.HoldTotal, 10, co)
	if opt.Symbols && r.Symbol != "" {
		b = append(b, ' ')
		b = append(b, r.Symbol...)
	}
	return append(b, '\n')
}

// cPointer formats like glibc's %p: "0x" and lower-case hex, "(nil)" for 0.
func cPointer(v uint64) string {
	if v == 0 {
		return "(nil)"
	}
	return "0x" + strconv.FormatUint(v, 16)
}

func appendPad(b []byte, s string, width int) []byte {
	for i := len(s); i < width; i++ {
		b = append(b, ' ')
	}
	return append(b, s...)
}

func appendPadNum(b []byte, v uint64, width int) []byte {
	var tmp [20]byte
	s := strconv.AppendUint(tmp[:0], v, 10)
	for i := len(s); i < width; i++ {
		b = append(b, ' ')
	}
	return append(b, s...)
}

// LockStatSortFields are the names SortLockStats accepts.
var LockStatSortFields = []string{"addr", "contentions", "con_bounces", "wait_min", "wait_max",
	"wait_total", "acquisitions", "acq_bounces", "hold_min", "hold_max", "hold_total"}

// SortLockStats sorts rows by field, largest first (addr: ascending); ties
// are broken by address so output is stable.
func SortLockStats(rows []LockStat, field string) error {
	key := func(r *LockStat) uint64 { return 0 }
	switch field {
	case "addr":
		sort.Slice(rows, func(i, j int) bool { return rows[i].Addr < rows[j].Addr })
		return nil
	case "contentions":
		key = func(r *LockStat) uint64 { return r.Contentions }
	case "con_bounces":
		key = func(r *LockStat) uint64 { return r.ConBounces }
	case "wait_min":
		key = func(r *LockStat) uint64 { return r.WaitMin }
	case "wait_max":
		key = func(r *LockStat) uint64 { return r.WaitMax }
	case "wait_total":
		key = func(r *LockStat) uint64 { return r.WaitTotal }
	case "acquisitions":
		key = func(r *LockStat) uint64 { return r.Acquisitions }
	case "acq_bounces":
		key = func(r *LockStat) uint64 { return r.AcqBounces }
	case "hold_min":
		key = func(r *LockStat) uint64 { return r.HoldMin }
	case "hold_max":
		key = func(r *LockStat) uint64 { return r.HoldMax }
	case "hold_total":
		key = func(r *LockStat) uint64 { return r.HoldTotal }
	default:
		return fmt.Errorf("unknown sort field %q (one of %s)", field, strings.Join(LockStatSortFields, ", "))
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := key(&rows[i]), key(&rows[j])
		if a != b {
			return a > b
		}
		return rows[i].Addr < rows[j].Addr
	})
	return nil
}
