package bpf

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/syncord/syncord/internal/testutil"
	"github.com/syncord/syncord/kernel"
)

func listDir(tb testing.TB, dir string) []string {
	tb.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		// Kernels with CONFIG_BPF_PRELOAD put these in every new bpffs.
		if e.Name() == "maps.debug" || e.Name() == "progs.debug" {
			continue
		}
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// openFDs counts this process's open file descriptors.
func openFDs(tb testing.TB) int {
	tb.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Fatal(err)
	}
	return len(ents)
}

func stockPolicy(tb testing.TB) *Policy {
	tb.Helper()
	m, err := ReadManifest(stockpol)
	if err != nil {
		tb.Fatal(err)
	}
	return m.Policy(stockpol, nil)
}

func TestEnsureBPFFS(t *testing.T) {
	dir := testutil.PrivateBPFFS(t)
	if ok, err := IsBPFFS(dir); err != nil || !ok {
		t.Fatalf("IsBPFFS after mount = %v, %v", ok, err)
	}
	if mounted, err := EnsureBPFFS(dir); err != nil || mounted {
		t.Fatalf("second EnsureBPFFS = %v, %v; want no new mount", mounted, err)
	}
	if ok, err := IsBPFFS(t.TempDir()); err != nil || ok {
		t.Fatalf("IsBPFFS(tmpdir) = %v, %v", ok, err)
	}
}

func TestPinAndUnpin(t *testing.T) {
	dir := testutil.PrivateBPFFS(t)
	fds := openFDs(t)
	l, err := LoadPolicy(stockPolicy(t), LoadOptions{})
	if err != nil {
		t.Fatalf("%+v", err)
	}
	paths, err := l.Pin(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"hash_map", "stockpol_lock_acquired", "stockpol_lock_to_release", "stockpol_to_enter_slow_path"}
	if got := listDir(t, dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("pins %v, want %v", got, want)
	}
	if !reflect.DeepEqual(paths, l.Policy.PinPaths(dir)) {
		t.Fatalf("Pin returned %v, PinPaths %v", paths, l.Policy.PinPaths(dir))
	}
	// The pinned objects are the loaded ones.
	m, err := ebpf.LoadPinnedMap(filepath.Join(dir, "hash_map"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.ValueSize() != LockStatValueSize || m.MaxEntries() != 10000 {
		t.Errorf("pinned map %v", m)
	}
	m.Close()
	p, err := ebpf.LoadPinnedProgram(filepath.Join(dir, "stockpol_lock_acquired"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Type() != ebpf.SocketFilter {
		t.Errorf("pinned program type %v", p.Type())
	}
	p.Close()
	l.Close()
	l.Close() // idempotent
	if got := openFDs(t); got != fds {
		t.Errorf("leaked file descriptors: %d open, %d before", got, fds)
	}
	// Pins outlive the descriptors.
	if got := listDir(t, dir); len(got) != 4 {
		t.Fatalf("pins after Close: %v", got)
	}
	if err := Unpin(paths); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, dir); len(got) != 0 {
		t.Fatalf("left after Unpin: %v", got)
	}
	if err := Unpin(paths); err != nil {
		t.Fatalf("second Unpin: %v", err)
	}
}

// TestPinRefusesAndRollsBack: an existing file at the third pin makes Pin
// fail; the two pins it made are removed and the foreign file stays.
func TestPinRefusesAndRollsBack(t *testing.T) {
	dir := testutil.PrivateBPFFS(t)
	first, err := LoadPolicy(stockPolicy(t), LoadOptions{})
	if err != nil {
		t.Fatalf("%+v", err)
	}
	defer first.Close()
	// Occupy the last program pin with a foreign object.
	foreign := filepath.Join(dir, "stockpol_to_enter_slow_path")
	if err := first.Programs["stockpol_lock_acquired"].Pin(foreign); err != nil {
		t.Fatal(err)
	}
	_, err = first.Pin(dir)
	if !errors.Is(err, ErrPinExists) {
		t.Fatalf("Pin over an existing pin: %v", err)
	}
	if got := listDir(t, dir); !reflect.DeepEqual(got, []string{"stockpol_to_enter_slow_path"}) {
		t.Fatalf("after failed Pin: %v (want only the foreign pin)", got)
	}
	if err := Unpin([]string{foreign}); err != nil {
		t.Fatal(err)
	}
	// Pinning outside a bpffs fails and leaves nothing.
	plain := t.TempDir()
	if _, err := first.Pin(plain); err == nil {
		t.Fatal("Pin into a plain directory succeeded")
	}
	if got := listDir(t, plain); len(got) != 0 {
		t.Fatalf("left in plain dir: %v", got)
	}
}

// TestLockPolicyRefusedOnStockKernel loads the built-in lockstat on this
// (stock) kernel: the probe must say it is not a SynCord kernel, and the
// bpffs stays empty.
func TestLockPolicyRefusedOnStockKernel(t *testing.T) {
	dir := testutil.PrivateBPFFS(t)
	info, err := kernel.NewDefaultFS().Probe()
	if err != nil {
		t.Fatal(err)
	}
	if info.SynCord {
		t.Skipf("skipping: %s is a SynCord kernel", info.Release)
	}
	for _, name := range BuiltinNames() {
		b, _ := LookupBuiltin(name)
		l, err := LoadPolicy(b.Policy(nil), LoadOptions{})
		if err == nil {
			l.Pin(dir)
			l.Close()
			t.Fatalf("%s loaded on stock kernel %s", name, info.Release)
		}
		if !errors.Is(err, ErrNotSynCordKernel) || !strings.Contains(err.Error(), "-syncord") || !strings.Contains(err.Error(), info.Release) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if got := listDir(t, dir); len(got) != 0 {
		t.Fatalf("bpffs not empty: %v", got)
	}
}

// TestType26ReachesKernel forces the SynCord path on this stock kernel: the
// artifact-shaped object's lock_* programs go to the kernel as type 26 (on
// upstream kernels BPF_PROG_TYPE_TRACING, which wants a btf_id), and the
// rejection comes back as a wrapped *ebpf.VerifierError.
func TestType26ReachesKernel(t *testing.T) {
	testutil.RequireBPF(t)
	p, err := PolicyFromSource(artpolSrc, artpolObj)
	if err != nil {
		t.Fatal(err)
	}
	fds := openFDs(t)
	_, err = LoadPolicy(p, LoadOptions{Kernel: &kernel.Info{Release: "pretend-syncord", SynCord: true}})
	if err == nil {
		t.Fatal("type 26 loaded on a stock kernel")
	}
	var ve *ebpf.VerifierError
	if !errors.As(err, &ve) {
		t.Fatalf("not a VerifierError: %v", err)
	}
	if !strings.Contains(VerifierLog(err), "btf_id") {
		t.Errorf("log %q lacks the tracing btf_id complaint", VerifierLog(err))
	}
	if got := openFDs(t); got != fds {
		t.Errorf("leaked file descriptors: %d open, %d before", got, fds)
	}
}

func TestVerifierLog(t *testing.T) {
	testutil.RequireBPF(t)
	m, err := ReadManifest(stockbad)
	if err != nil {
		t.Fatal(err)
	}
	_, err = LoadPolicy(m.Policy(stockbad, nil), LoadOptions{})
	var ve *ebpf.VerifierError
	if !errors.As(err, &ve) {
		t.Fatalf("want a VerifierError, got %v", err)
	}
	log := VerifierLog(err)
	if !strings.Contains(log, "map_value_or_null") {
		t.Errorf("verifier log lacks the reason:\n%s", log)
	}
	if !strings.Contains(err.Error(), "verifier rejected") {
		t.Errorf("error %v", err)
	}
	if VerifierLog(errors.New("x")) != "" {
		t.Error("VerifierLog of a plain error")
	}
}

// fillLockstat creates a lockstat-layout hash map with n entries of known
// values (derived from the index) and returns it.
func fillLockstat(tb testing.TB, n int) (*ebpf.Map, []LockStat) {
	tb.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "hash_map", Type: ebpf.Hash, KeySize: 8, ValueSize: LockStatValueSize, MaxEntries: 10000})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	var rows []LockStat
	for i := 0; i < n; i++ {
		addr := uint64(0xffffffff82a0b040) + uint64(i)*64
		u := uint64(i)
		v := lockstatValue{u % 2, u * 3, u, 100 + u, 1000 + u, 5000 + u*7, u * 11, u * 2, 10 + u, 200 + u, 3000 + u*13}
		if err := m.Put(addr, v); err != nil {
			tb.Fatal(err)
		}
		rows = append(rows, fromValue(addr, &v))
	}
	return m, rows
}

func TestReadLockStats(t *testing.T) {
	dir := testutil.PrivateBPFFS(t)
	m, want := fillLockstat(t, 1000)
	path := filepath.Join(dir, "hash_map")
	if err := m.Pin(path); err != nil {
		t.Fatal(err)
	}
	defer Unpin([]string{path})
	got, batched, err := ReadLockStats(m)
	if err != nil {
		t.Fatal(err)
	}
	if !batched {
		t.Error("batch lookup not used on a 6.x kernel")
	}
	it, err := readIterate(m)
	if err != nil {
		t.Fatal(err)
	}
	sortRows := func(r []LockStat) { sort.Slice(r, func(i, j int) bool { return r[i].Addr < r[j].Addr }) }
	pinned, err := ReadLockstatPinned(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, rows := range map[string][]LockStat{"batch": got, "iterate": it, "pinned": pinned} {
		sortRows(rows)
		if !reflect.DeepEqual(rows, want) {
			t.Errorf("%s: read %d rows, not the %d written", name, len(rows), len(want))
		}
	}
	// A map of another layout is refused.
	other, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	op := filepath.Join(dir, "other")
	if err := other.Pin(op); err != nil {
		t.Fatal(err)
	}
	defer Unpin([]string{op})
	if _, err := OpenLockstatMap(op); err == nil || !strings.Contains(err.Error(), "want 8/88") {
		t.Fatalf("wrong layout accepted: %v", err)
	}
	if _, err := OpenLockstatMap(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "policy install lockstat") {
		t.Fatalf("missing map: %v", err)
	}
}

// BenchmarkLoadPin loads and pins (then unpins and closes) the stock-loadable
// stand-in of lockstat: same three programs, same map (hash, 8/88, 10000).
// The real lockstat (type 26) cannot load on this stock kernel.
func BenchmarkLoadPin(b *testing.B) {
	dir := testutil.PrivateBPFFS(b)
	p := stockPolicy(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l, err := LoadPolicy(p, LoadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		paths, err := l.Pin(dir)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		Unpin(paths)
		l.Close()
		b.StartTimer()
	}
}

// TestPinnedRunStats reads bpf_prog_info's run counters through a pin. It
// never turns kernel.bpf_stats_enabled on (a host setting): the e2e tests
// prove counting inside a VM; here the counters read and a map pin is
// refused.
func TestPinnedRunStats(t *testing.T) {
	dir := testutil.PrivateBPFFS(t)
	l, err := LoadPolicy(stockPolicy(t), LoadOptions{})
	if err != nil {
		t.Fatalf("%+v", err)
	}
	defer l.Close()
	paths, err := l.Pin(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer Unpin(paths)
	fds := openFDs(t)
	st, err := PinnedRunStats(filepath.Join(dir, "stockpol_lock_acquired"))
	if err != nil {
		t.Fatal(err)
	}
	if on, _ := kernel.NewDefaultFS().BPFStatsEnabled(); !on && (st.RunCount != 0 || st.RunTime != 0) {
		t.Errorf("never-run program with stats off: %+v, want zeros", st)
	}
	if _, err := PinnedRunStats(filepath.Join(dir, "hash_map")); err == nil || !strings.Contains(err.Error(), "hash_map") {
		t.Errorf("run stats of a map pin: %v, want an error naming it", err)
	}
	if got := openFDs(t); got != fds {
		t.Errorf("leaked file descriptors: %d open, %d before", got, fds)
	}
}
