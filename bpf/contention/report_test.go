package contention

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/syncord/syncord/kernel"
)

// Addresses as captured on the 6.18 test machine (rename_lock's spinlock
// is at +4 in its seqlock_t); kallsyms lines in the kernel's format.
var fixtureSyms = kernel.ParseKallsyms([]string{
	"0000000000000000 A fixed_percpu_data",
	"ffffffff813b45d0 T try_to_wake_up",
	"ffffffff814ca130 T bpf_trace_run2",
	"ffffffff816eaf40 T vfs_rename",
	"ffffffff816fcc10 T d_move",
	"ffffffff82265800 T __sched_text_start",
	"ffffffff8226e522 T __sched_text_end",
	"ffffffff8226e530 T __lock_text_start",
	"ffffffff8226ec50 T _raw_spin_lock",
	"ffffffff8226f1f0 T __pv_queued_spin_lock_slowpath",
	"ffffffff8226ffb1 T __lock_text_end",
	"ffffffff8300b700 D rename_lock",
	"ffffffff8300b740 d mount_lock",
	"ffffffff83100000 B some_big_table",
})

const (
	renameLock = 0xffffffff8300b704
	heapLock   = 0xffff88812ecf42a8
	bpfProgPC  = 0xffffffffc0000a32 // the BPF program: not in the table
)

func renameStack(dmoveOff uint64) []uint64 {
	return []uint64{bpfProgPC, 0xffffffff814ca233, 0xffffffff8226f2fe, 0xffffffff8226ec8b,
		0xffffffff816fcc10 + dmoveOff, 0xffffffff816ebb39}
}

func fixturePeriod() *Period {
	return &Period{Index: 2, Start: time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC), Duration: 3 * time.Second,
		Final: true, Snapshot: &Snapshot{
			Locks: []Lock{
				{Addr: heapLock, Flags: FlagSpin, Contentions: 685, ConBounces: 368, Waits: 685, WaitMin: 2384, WaitMax: 41107, WaitTotal: 4344067,
					Stacks: []Stack{{ID: 7, Contentions: 685, WaitTotal: 4344067,
						PCs: []uint64{bpfProgPC, 0xffffffff814ca233, 0xffffffff8226f2fe, 0xffffffff8226ec8b, 0xffffffff813b47e8}}}},
				{Addr: renameLock, Flags: FlagSpin, Contentions: 494, ConBounces: 249, Waits: 490, WaitMin: 2114, WaitMax: 43782, WaitTotal: 2678127,
					Stacks: []Stack{
						{ID: 1, Contentions: 400, WaitTotal: 2000000, PCs: renameStack(0x1d)},
						{ID: 2, Contentions: 90, WaitTotal: 600000, PCs: renameStack(0x1d)[:5]}, // same call site
						{ID: 3, Contentions: 4, WaitTotal: 78127, PCs: nil},                     // evicted stack
					}},
				{Addr: 0xffffffff8300b740, Flags: FlagMutex | FlagSpin, Contentions: 3, ConBounces: 1, Waits: 3, WaitMin: 10, WaitMax: 20, WaitTotal: 45},
				{Addr: 0xffffffff83100000 + 8192, Flags: FlagWrite, Contentions: 2, Waits: 0},
			},
			Drops: Drops{StackFailed: 2, UnmatchedEnds: 1},
		}}
}

func TestLockName(t *testing.T) {
	for _, tc := range []struct {
		name     string
		addr     uint64
		wantName string
		wantOff  uint64
		wantOK   bool
	}{
		{"seqlock's spinlock inside rename_lock", renameLock, "rename_lock", 4, true},
		{"exact static lock", 0xffffffff8300b740, "mount_lock", 0, true},
		{"heap lock far above any symbol", heapLock, "", 0, false},
		{"text address is not a lock name", 0xffffffff816fcc2d, "", 0, false},
		{"too far into a bss symbol", 0xffffffff83100000 + 8192, "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, off, ok := LockName(fixtureSyms, tc.addr)
			if n != tc.wantName || off != tc.wantOff || ok != tc.wantOK {
				t.Errorf("LockName(%#x) = %q, %d, %v; want %q, %d, %v", tc.addr, n, off, ok, tc.wantName, tc.wantOff, tc.wantOK)
			}
		})
	}
	if _, _, ok := LockName(nil, renameLock); ok {
		t.Error("LockName without a symbol table named a lock")
	}
}

func TestCallerPC(t *testing.T) {
	for _, tc := range []struct {
		name string
		pcs  []uint64
		want uint64
	}{
		{"skips BPF, tracing and the lock slow path", renameStack(0x1d), 0xffffffff816fcc2d},
		{"interrupt context waker", []uint64{bpfProgPC, 0xffffffff814ca233, 0xffffffff8226ec8b, 0xffffffff813b47e8}, 0xffffffff813b47e8},
		{"only lock frames", []uint64{0xffffffff8226f2fe, 0xffffffff8226ec8b}, 0},
		{"empty", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CallerPC(tc.pcs, fixtureSyms); got != tc.want {
				t.Errorf("CallerPC = %#x, want %#x", got, tc.want)
			}
		})
	}
}

func TestNewReport(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opt       ReportOptions
		wantAddrs []string
		check     func(t *testing.T, r *Report)
	}{
		{name: "sorted by wait total, no symbols", opt: ReportOptions{},
			wantAddrs: []string{"0xffff88812ecf42a8", "0xffffffff8300b704", "0xffffffff8300b740", "0xffffffff83102000"},
			check: func(t *testing.T, r *Report) {
				for _, l := range r.Locks {
					if l.Symbol != "" || l.Callers != nil {
						t.Errorf("%s: symbol %q callers %v without --symbols/--callers", l.Addr, l.Symbol, l.Callers)
					}
				}
			}},
		{name: "top 2 with symbols", opt: ReportOptions{Symbols: true, Top: 2},
			wantAddrs: []string{"0xffff88812ecf42a8", "0xffffffff8300b704"},
			check: func(t *testing.T, r *Report) {
				l := r.Locks[1]
				if l.Symbol != "rename_lock" || l.SymbolOffset != 4 || l.Type != "spinlock" || l.WaitAvgNS != 2678127/490 || l.Waits != 490 {
					t.Errorf("rename_lock row = %+v", l)
				}
			}},
		{name: "lock filter by symbol", opt: ReportOptions{Symbols: true, LockSymbol: "mount_lock"},
			wantAddrs: []string{"0xffffffff8300b740"},
			check: func(t *testing.T, r *Report) {
				if r.Locks[0].Type != "mutex" || r.Locks[0].Symbol != "mount_lock" {
					t.Errorf("mount_lock row = %+v", r.Locks[0])
				}
			}},
		{name: "callers merged per call site, evicted stacks unknown", opt: ReportOptions{Callers: 5, LockSymbol: "rename_lock"},
			wantAddrs: []string{"0xffffffff8300b704"},
			check: func(t *testing.T, r *Report) {
				want := []Caller{
					{Symbol: "d_move+0x1d", Addr: "0xffffffff816fcc2d", Contentions: 490, WaitTotalNS: 2600000},
					{Symbol: "[unknown]", Contentions: 4, WaitTotalNS: 78127},
				}
				if !reflect.DeepEqual(r.Locks[0].Callers, want) {
					t.Errorf("callers = %+v, want %+v", r.Locks[0].Callers, want)
				}
			}},
		{name: "top 1 caller", opt: ReportOptions{Callers: 1, Top: 1},
			wantAddrs: []string{"0xffff88812ecf42a8"},
			check: func(t *testing.T, r *Report) {
				if c := r.Locks[0].Callers; len(c) != 1 || c[0].Symbol != "try_to_wake_up+0x218" {
					t.Errorf("callers = %+v", c)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReport(fixturePeriod(), fixtureSyms, tc.opt)
			var got []string
			for _, l := range r.Locks {
				got = append(got, l.Addr)
			}
			if !reflect.DeepEqual(got, tc.wantAddrs) {
				t.Fatalf("locks = %v, want %v", got, tc.wantAddrs)
			}
			tc.check(t, r)
		})
	}
}

// The JSON document is an interface: its field names are documented in
// doc.go and must not change by accident.
func TestReportJSONFields(t *testing.T) {
	r := NewReport(fixturePeriod(), fixtureSyms, ReportOptions{Symbols: true, Callers: 2, Kernel: "6.1.0-13-amd64"})
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 1 || !strings.HasSuffix(buf.String(), "}\n") {
		t.Fatalf("want one JSON object on one line, got %q", buf.String())
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	keys := func(m map[string]any) string {
		var k []string
		for n := range m {
			k = append(k, n)
		}
		sort.Strings(k)
		return strings.Join(k, ",")
	}
	if got, want := keys(doc), "dropped,duration_ns,final,interval,kernel,locks,start"; got != want {
		t.Errorf("report fields = %s, want %s", got, want)
	}
	if got, want := keys(doc["dropped"].(map[string]any)), "caller_map_full,lock_map_full,lost_waits,nest_too_deep,stack_failed,task_map_full,unmatched_ends"; got != want {
		t.Errorf("dropped fields = %s, want %s", got, want)
	}
	lock := doc["locks"].([]any)[1].(map[string]any)
	if got, want := keys(lock), "addr,callers,con_bounces,contentions,flags,symbol,symbol_offset,type,wait_avg_ns,wait_max_ns,wait_min_ns,wait_total_ns,waits"; got != want {
		t.Errorf("lock fields = %s, want %s", got, want)
	}
	if got, want := keys(lock["callers"].([]any)[0].(map[string]any)), "addr,contentions,symbol,wait_total_ns"; got != want {
		t.Errorf("caller fields = %s, want %s", got, want)
	}
	if lock["addr"] != "0xffffffff8300b704" || lock["symbol"] != "rename_lock" || doc["duration_ns"] != 3e9 {
		t.Errorf("values: addr %v symbol %v duration %v", lock["addr"], lock["symbol"], doc["duration_ns"])
	}
}

func TestWriteTable(t *testing.T) {
	r := NewReport(fixturePeriod(), fixtureSyms, ReportOptions{Symbols: true, Callers: 1, Top: 2})
	var buf bytes.Buffer
	if err := r.WriteTable(&buf, true); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	want := "  0xffffffff8300b704             494             249               -               -       2114      43782    2678127          -          -          - rename_lock+0x4"
	if lines[4] != want {
		t.Errorf("rename_lock row:\n got %q\nwant %q", lines[4], want)
	}
	if !strings.Contains(buf.String(), "callers of spinlock rename_lock+0x4 (0xffffffff8300b704):\n") ||
		!strings.Contains(buf.String(), "            490         2600000  d_move+0x1d\n") {
		t.Errorf("callers section missing:\n%s", buf.String())
	}
}
