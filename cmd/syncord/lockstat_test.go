package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/syncord/syncord/bpf"
	"github.com/syncord/syncord/internal/testutil"
	"github.com/syncord/syncord/kernel"
)

// lockstatBPFFS mounts a private bpffs, pins a lockstat-layout hash map
// with n entries of known values and returns the pin path and the values.
func lockstatBPFFS(tb testing.TB, n int) (string, map[uint64][11]uint64) {
	tb.Helper()
	testutil.RequireBPF(tb)
	dir := testutil.PrivateBPFFS(tb)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "hash_map", Type: ebpf.Hash, KeySize: 8, ValueSize: bpf.LockStatValueSize, MaxEntries: 10000})
	if err != nil {
		tb.Fatal(err)
	}
	defer m.Close()
	vals := map[uint64][11]uint64{}
	for i := 0; i < n; i++ {
		addr := uint64(0xffff888003a00000) + uint64(i)*0x40
		u := uint64(i)
		v := [11]uint64{u % 2, 7 * u, 3 * u, 100 + u, 90000 + u, 123456789 + u, 11 * u, 5 * u, 20 + u, 4000 + u, 987654321 + u}
		if err := m.Put(addr, v); err != nil {
			tb.Fatal(err)
		}
		vals[addr] = v
	}
	path := filepath.Join(dir, "hash_map")
	if err := m.Pin(path); err != nil {
		tb.Fatal(err)
	}
	return path, vals
}

// cTable renders rows with the artifact reader's printf formats, written out
// independently of bpf.WriteLockstatTable.
func cTable(addrs []uint64, vals map[uint64][11]uint64) string {
	var b strings.Builder
	rule := strings.Repeat("=", 150) + "\n"
	b.WriteString(rule)
	fmt.Fprintf(&b, "%20s ", "lock addr")
	fmt.Fprintf(&b, "%15s %15s %15s %15s ", "contentions", "con-bounces", "acquisition", "acq-bounces")
	fmt.Fprintf(&b, "%10s %10s %10s %10s %10s %10s \n", "wait-min", "wait-max", "wait-tot", "hold-min", "hold-max", "hold-tot")
	b.WriteString(rule)
	for _, a := range addrs {
		v := vals[a]
		// "%20p %15lu %15lu %15lu %15lu %10lu %10lu %10lu %10lu %10lu %10lu\n"
		fmt.Fprintf(&b, "%20s %15d %15d %15d %15d %10d %10d %10d %10d %10d %10d\n",
			fmt.Sprintf("0x%x", a), v[1], v[2], v[6], v[7], v[3], v[4], v[5], v[8], v[9], v[10])
	}
	return b.String()
}

func TestLockstatTable(t *testing.T) {
	path, vals := lockstatBPFFS(t, 300)
	out, errs, code := runSyncord(t, "lockstat", "--map", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	// Default order is the order the artifact's reader walked the map in:
	// BPF_MAP_GET_NEXT_KEY from the start (read here with cilium's
	// iterator, while syncord uses batch lookups).
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var (
		k     uint64
		v     [11]uint64
		order []uint64
	)
	for it := m.Iterate(); it.Next(&k, &v); {
		order = append(order, k)
	}
	m.Close()
	if len(order) != len(vals) {
		t.Fatalf("iterated %d keys", len(order))
	}
	if want := cTable(order, vals); out != want {
		t.Fatalf("default output differs from the artifact's table in map order:\n%s\nwant:\n%s", head(out), head(want))
	}
	addrs := make([]uint64, 0, len(vals))
	for a := range vals {
		addrs = append(addrs, a)
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i] < addrs[j] })
	want := cTable(addrs, vals)

	out, _, code = runSyncord(t, "lockstat", "--map", path, "--sort", "addr")
	if code != 0 || out != want {
		t.Fatalf("--sort addr: exit %d, output differs:\n%s\nwant:\n%s", code, head(out), head(want))
	}

	// --top 5 sorts by contentions: the five largest indexes.
	out, _, code = runSyncord(t, "lockstat", "--map", path, "--top", "5")
	top := []uint64{addrs[299], addrs[298], addrs[297], addrs[296], addrs[295]}
	if code != 0 || out != cTable(top, vals) {
		t.Fatalf("--top 5:\n%s", out)
	}

	out, _, code = runSyncord(t, "lockstat", "--map", path, "--json", "--sort", "hold_total", "--top", "2")
	var js struct {
		Map     string         `json:"map"`
		Batched bool           `json:"batched"`
		Locks   []bpf.LockStat `json:"locks"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &js) != nil || len(js.Locks) != 2 || js.Locks[0].Addr != addrs[299] || js.Locks[0].HoldTotal != 987654321+299 || !js.Batched {
		t.Fatalf("--json: %s", out)
	}

	for name, args := range map[string][]string{
		"bad sort":     {"lockstat", "--map", path, "--sort", "nope"},
		"negative top": {"lockstat", "--map", path, "--top", "-1"},
		"extra arg":    {"lockstat", "x"},
	} {
		if _, _, code := runSyncord(t, args...); code != 2 {
			t.Errorf("%s: exit %d, want 2", name, code)
		}
	}
	if _, errs, code := runSyncord(t, "lockstat", "--map", path+"-missing"); code != 1 || !strings.Contains(errs, "policy install lockstat") {
		t.Errorf("missing map: %d %s", code, errs)
	}
}

// TestLockstatSymbols puts rename_lock's address from /proc/kallsyms in the
// map: --symbols names it, other rows get no name.
func TestLockstatSymbols(t *testing.T) {
	path, vals := lockstatBPFFS(t, 3)
	syms, err := kernel.NewDefaultFS().Kallsyms()
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	// rename_lock is listed with CONFIG_KALLSYMS_ALL; without it any
	// symbol shows the naming works.
	name := "rename_lock"
	addr, ok := syms.Address(name)
	if !ok {
		name = "schedule"
		if addr, ok = syms.Address(name); !ok {
			t.Skip("skipping: neither rename_lock nor schedule in /proc/kallsyms")
		}
	}
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	v := [11]uint64{0, 42, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	if err := m.Put(addr, v); err != nil {
		t.Fatal(err)
	}
	vals[addr] = v
	out, errs, code := runSyncord(t, "lockstat", "--map", path, "--symbols", "--top", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := strings.Split(cTable([]uint64{addr}, vals), "\n")[3] + " " + name
	if len(lines) != 4 || lines[3] != want || !strings.HasSuffix(lines[1], " symbol") {
		t.Fatalf("--symbols:\n%s\nwant row:\n%s", out, want)
	}
	out, _, _ = runSyncord(t, "lockstat", "--map", path, "--symbols", "--json", "--sort", "addr")
	if strings.Count(out, `"symbol":"`+name+`"`) != 1 {
		t.Fatalf("--json --symbols: %s", out)
	}
}

func head(s string) string {
	l := strings.SplitAfter(s, "\n")
	return strings.Join(l[:min(6, len(l))], "")
}

// BenchmarkLockstatVsBpftool times, in one run on the same 10,000-entry
// pinned map, the syncord binary printing `syncord lockstat` and
// `bpftool map dump pinned` (both as processes, output discarded), and
// reports both medians and their ratio (syncord/bpftool).
func BenchmarkLockstatVsBpftool(b *testing.B) {
	bpftool, err := exec.LookPath("bpftool")
	if err != nil {
		b.Skip("skipping: bpftool not installed (apt-get install bpftool)")
	}
	path, _ := lockstatBPFFS(b, 10000)
	bin := filepath.Join(b.TempDir(), "syncord")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	run := func(name string, args ...string) time.Duration {
		cmd := exec.Command(name, args...)
		cmd.Stdout = io.Discard
		var e bytes.Buffer
		cmd.Stderr = &e
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("%s: %v %s", name, err, e.String())
		}
		return time.Since(start)
	}
	var ours, theirs []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ours = append(ours, run(bin, "lockstat", "--map", path))
		theirs = append(theirs, run(bpftool, "map", "dump", "pinned", path))
	}
	b.StopTimer()
	med := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	mo, mt := med(ours), med(theirs)
	b.ReportMetric(float64(mo.Microseconds()), "syncord-µs")
	b.ReportMetric(float64(mt.Microseconds()), "bpftool-µs")
	b.ReportMetric(float64(mo)/float64(mt), "ratio")
}

// BenchmarkLockstatInProcess is the read and format alone, as the agent
// runs it.
func BenchmarkLockstatInProcess(b *testing.B) {
	path, _ := lockstatBPFFS(b, 10000)
	env := &Env{Stdout: io.Discard, Stderr: io.Discard}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if code := Run(context.Background(), env, []string{"lockstat", "--map", path}); code != 0 {
			b.Fatal("exit", code)
		}
	}
}
