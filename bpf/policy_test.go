package bpf

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/syncord/syncord/kernel"
)

const (
	artpolSrc = "testdata/artpol"
	artpolObj = "testdata/output/artpol/eBPFGen/artpol_kern.o"
	stockpol  = "testdata/output/stockpol/eBPFGen"
	stockbad  = "testdata/output/stockbad/eBPFGen"
)

// abiTable is the SynCord helper table of SYNCORD-ABI.md section 1.
var abiTable = map[string]int64{
	"back_off": 1, "map_lookup_elem": 2, "map_update_elem": 3, "map_delete_elem": 4,
	"probe_read": 5, "ktime_get_ns": 6, "trace_printk": 7, "get_prandom_u32": 8,
	"get_smp_processor_id": 9, "tail_call": 13, "get_current_pid_tgid": 15,
	"get_current_uid_gid": 16, "get_current_comm": 17, "get_numa_node_id": 43,
}

func TestManifestRoundTrip(t *testing.T) {
	m := &Manifest{
		Name: "amp", Object: "amp_kern.o", Description: "d",
		Programs: []Program{{Section: "lock_qspinlock_contended", Function: "f", Pin: "amp_cont_lock", Hook: "lock_to_enter_slowpath"}},
		Map:      &MapPin{Name: "hash_map", Symbol: "my_map"},
		Params:   []Param{{Name: "patience", Default: 22000000, Help: "h"}, {Name: "cores_per_socket", Default: 28, From: "cores_per_socket"}},
	}
	b, err := MarshalManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	want := *m
	want.Params = []Param{m.Params[1], m.Params[0]} // sorted by name
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, &want)
	}
	dir := t.TempDir()
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	got2, err := ReadManifest(dir)
	if err != nil || !reflect.DeepEqual(got2, &want) {
		t.Fatalf("ReadManifest = %+v, %v", got2, err)
	}
	if pp := got.Policy(dir, nil).PinPaths("/sys/fs/bpf"); !reflect.DeepEqual(pp, []string{"/sys/fs/bpf/amp_cont_lock", "/sys/fs/bpf/hash_map"}) {
		t.Fatalf("PinPaths = %v", pp)
	}

	bad := map[string]string{
		"unknown field":  `{"name":"x","object":"x.o","programs":[{"section":"lock_a","pin":"a"}],"extra":1}`,
		"no object":      `{"name":"x","programs":[{"section":"lock_a","pin":"a"}]}`,
		"no programs":    `{"name":"x","object":"x.o","programs":[]}`,
		"pin with slash": `{"name":"x","object":"x.o","programs":[{"section":"lock_a","pin":"../a"}]}`,
		"pin twice":      `{"name":"x","object":"x.o","programs":[{"section":"lock_a","pin":"a"},{"section":"lock_b","pin":"a"}]}`,
		"map pin clash":  `{"name":"x","object":"x.o","programs":[{"section":"lock_a","pin":"hash_map"}],"map":{"name":"hash_map"}}`,
		"param twice":    `{"name":"x","object":"x.o","programs":[{"section":"lock_a","pin":"a"}],"params":[{"name":"p","default":1},{"name":"p","default":2}]}`,
	}
	for name, js := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseManifest([]byte(js)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pol")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestSourceCheck(t *testing.T) {
	const voidProg = "SEC(\"lock_qspinlock_contended\")\nint custom_lock_contended(struct __lock_policy_args *args)\n{\n\treturn 0;\n}\n"
	const cmpProg = "SEC(\"lock_qspinlock_cmp\")\nbool custom_cmp_func(struct __lock_policy_args *args)\n{\n\treturn 1;\n}\n"
	cases := []struct {
		name  string
		files map[string]string
		stock bool
		err   string // "" = passes
		hooks map[string]string
	}{
		{name: "artifact style", files: map[string]string{"a.pfile": voidProg, "b.pfile": cmpProg, "p.h": "", "p.map": ""},
			hooks: map[string]string{"a": "lock_to_enter_slowpath", "b": "should_reorder"}},
		{name: "no pfile", files: map[string]string{"p.h": ""}, err: "no .pfile"},
		{name: "two maps", files: map[string]string{"a.pfile": voidProg, "x.map": "", "y.map": ""}, err: "2 .map files"},
		{name: "two headers", files: map[string]string{"a.pfile": voidProg, "x.h": "", "y.h": ""}, err: "2 .h files"},
		{name: "not lock section", files: map[string]string{"a.pfile": strings.Replace(voidProg, "lock_qspinlock_contended", "kprobe/foo", 1)}, err: "does not start with lock_"},
		{name: "stock allowed", stock: true, files: map[string]string{"a.pfile": strings.Replace(voidProg, "lock_qspinlock_contended", "socket/x", 1)}},
		{name: "two programs in one pfile", files: map[string]string{"a.pfile": voidProg + cmpProg}, err: "exactly one program"},
		{name: "no SEC", files: map[string]string{"a.pfile": "int f(void) { return 0; }"}, err: "no SEC"},
		{name: "SEC only in comment", files: map[string]string{"a.pfile": "// SEC(\"lock_x\")\nint f(void) { return 0; }"}, err: "no SEC"},
		{name: "bool on void hook", files: map[string]string{"a.pfile": strings.Replace(voidProg, "int custom", "bool custom", 1)}, err: "hook lock_to_enter_slowpath returns void"},
		{name: "void return", files: map[string]string{"a.pfile": strings.Replace(voidProg, "int custom", "void custom", 1)}, err: "must return a value"},
		{name: "void on bool hook", files: map[string]string{"a.pfile": strings.Replace(cmpProg, "bool custom", "void custom", 1)}, err: "returns void but hook should_reorder returns bool"},
		{name: "pointer return", files: map[string]string{"a.pfile": strings.Replace(cmpProg, "bool custom", "int *custom", 1)}, err: "returns int *"},
		{name: "unknown hook", files: map[string]string{"a.pfile": "SEC(\"lock_qspinlock_frob\")\nint frob(struct __lock_policy_args *a) { return 0; }"}, err: "cannot tell which hook"},
		{name: "hook tag", files: map[string]string{"a.pfile": "/* syncord:hook skip_reorder */\nSEC(\"lock_qspinlock_frob\")\nbool frob(struct __lock_policy_args *a) { return 0; }"},
			hooks: map[string]string{"a": "skip_reorder"}},
		{name: "bad hook tag", files: map[string]string{"a.pfile": "/* syncord:hook frobnicate */\nSEC(\"lock_qspinlock_frob\")\nint frob(struct __lock_policy_args *a) { return 0; }"}, err: "unknown hook \"frobnicate\""},
		{name: "same function twice", files: map[string]string{"a.pfile": voidProg, "b.pfile": voidProg}, err: "already defined"},
		{name: "shared section, hooks from names", files: map[string]string{
			"a.pfile": strings.Replace(voidProg, "lock_qspinlock_contended\")\nint custom_lock_contended", "lock_qspinlock\")\nint custom_to_enter_slow_path", 1),
			"b.pfile": strings.Replace(voidProg, "lock_qspinlock_contended\")\nint custom_lock_contended", "lock_qspinlock\")\nint custom_lock_acquired", 1),
			"c.pfile": strings.Replace(voidProg, "lock_qspinlock_contended\")\nint custom_lock_contended", "lock_qspinlock\")\nint custom_lock_to_release", 1)},
			hooks: map[string]string{"a": "lock_to_enter_slowpath", "b": "lock_acquired", "c": "lock_to_release"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src, err := ParseSource(writeDir(t, c.files))
			if err == nil {
				err = src.Check(c.stock)
			}
			if c.err == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				for _, pf := range src.PFiles {
					if want, ok := c.hooks[pf.Pin]; ok && pf.Hook != want {
						t.Errorf("%s: hook %q, want %q", pf.Pin, pf.Hook, want)
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("error %v, want one containing %q", err, c.err)
			}
		})
	}
}

func TestGenerateC(t *testing.T) {
	src, err := ParseSource(artpolSrc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := GenerateC(src, 224)
	if err != nil {
		t.Fatal(err)
	}
	s := string(c)
	for _, want := range []string{"#include \"syncord_helpers.h\"", "per_cpu_data[224]", "SEC(\"maps\") hash_map", "custom_cmp_func", "SEC(\"license\")"} {
		if !strings.Contains(s, want) {
			t.Errorf("generated C lacks %q", want)
		}
	}
	if strings.Contains(s, "${NCPU}") || strings.Contains(s, "lock_policy_args.h") {
		t.Error("${NCPU} left, or default context included although the policy has a header")
	}
	// Order: header, map, pfiles sorted by name.
	if i, j := strings.Index(s, "art_cmp.pfile"), strings.Index(s, "art_to_enter_slow_path.pfile"); i < 0 || j < i {
		t.Error("pfiles not in name order")
	}
}

// TestBuiltinsUpToDate rebuilds every built-in policy with the clang here
// and compares with the committed objects and manifests.
func TestBuiltinsUpToDate(t *testing.T) {
	if _, err := ClangPath(""); err != nil {
		t.Skipf("skipping: %v", err)
	}
	bs, err := Builtins()
	if err != nil {
		t.Fatal(err)
	}
	if got := BuiltinNames(); !reflect.DeepEqual(got, []string{"amp", "bravo", "lockstat", "numa-grouping", "numa-grouping-cna", "numa-scl", "scl"}) {
		t.Fatalf("built-ins %v", got)
	}
	out := t.TempDir()
	for _, b := range bs {
		res, err := Build(t.Context(), filepath.Join("policies", b.Manifest.Name), out, BuildOptions{NCPU: 1, Description: b.Manifest.Description, Target: b.Manifest.Target, Branches: b.Policy(nil).Branches})
		if err != nil {
			t.Fatalf("%s: %v", b.Manifest.Name, err)
		}
		obj, _ := os.ReadFile(res.Object)
		if !bytes.Equal(obj, b.Object) {
			// Another clang may lay the ELF out differently; only the
			// programs and maps must be the same.
			if d := specDiff(t, obj, b.Object); d != "" {
				t.Errorf("%s: committed object differs from a fresh build in %s (run go generate ./bpf/)", b.Manifest.Name, d)
			} else {
				t.Logf("%s: object bytes differ from a fresh build but programs and maps are the same (another clang?)", b.Manifest.Name)
			}
		}
		if !reflect.DeepEqual(res.Manifest, b.Manifest) {
			t.Errorf("%s: manifest differs:\n got %+v\nwant %+v", b.Manifest.Name, b.Manifest, res.Manifest)
		}
	}
}

// TestBuiltinABI is the contract test: the committed objects call only
// helpers of the SynCord table, with the ids it gives, pin what the ABI
// table says, and carry no BTF.
func TestBuiltinABI(t *testing.T) {
	valid := map[int64]bool{}
	for _, id := range abiTable {
		valid[id] = true
	}
	want := map[string]struct {
		pins    []string
		helpers []string
		hasMap  bool
		params  []string
	}{
		"lockstat":          {[]string{"lockstat_lock_acquired", "lockstat_lock_to_release", "lockstat_to_enter_slow_path"}, []string{"map_lookup_elem", "map_update_elem", "ktime_get_ns", "get_smp_processor_id"}, true, nil},
		"numa-grouping":     {[]string{"numa-grouping"}, nil, false, nil},
		"numa-grouping-cna": {[]string{"numa-grouping-cna"}, nil, false, nil},
		"amp":               {[]string{"amp_cont_lock"}, []string{"get_smp_processor_id", "back_off"}, false, []string{"cores_per_socket", "patience"}},
		"scl":               {[]string{"scl_acqed_lock", "scl_cmp", "scl_cont_lock", "scl_release_lock"}, []string{"ktime_get_ns", "back_off"}, false, []string{"max_backoff"}},
		"numa-scl":          {[]string{"scl_acqed_lock", "scl_cmp", "scl_cont_lock", "scl_release_lock"}, []string{"ktime_get_ns", "back_off"}, false, []string{"max_backoff"}},
		"bravo":             {[]string{"bravo_acqed_lock", "bravo_bypass_acq_lock", "bravo_bypass_release_lock"}, []string{"get_current_pid_tgid", "ktime_get_ns"}, false, []string{"inhibit_ns"}},
	}
	bs, err := Builtins()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		name := b.Manifest.Name
		w, ok := want[name]
		if !ok {
			t.Errorf("unexpected built-in %s", name)
			continue
		}
		spec, err := LoadSpec(b.Policy(nil))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if spec.Types != nil {
			t.Errorf("%s: object carries BTF; SynCord kernels have none (compile without -g)", name)
		}
		var pins []string
		calls := map[int64]bool{}
		for _, pr := range b.Manifest.Programs {
			pins = append(pins, pr.Pin)
			if _, ok := LookupHook(pr.Hook); !ok {
				t.Errorf("%s/%s: hook %q", name, pr.Pin, pr.Hook)
			}
			ps := spec.Programs[pr.Function]
			if ps.Type != LockPolicyProgramType {
				t.Errorf("%s/%s: type %v, want 26", name, pr.Pin, ps.Type)
			}
			for _, ins := range ps.Instructions {
				if ins.IsBuiltinCall() {
					calls[ins.Constant] = true
					if !valid[ins.Constant] {
						t.Errorf("%s/%s: call %d is not in the SynCord helper table", name, pr.Pin, ins.Constant)
					}
				}
				if ins.OpCode.JumpOp() == asm.Call && ins.Src == asm.PseudoKfuncCall {
					t.Errorf("%s/%s: kfunc call", name, pr.Pin)
				}
			}
		}
		sort.Strings(pins)
		if !reflect.DeepEqual(pins, w.pins) {
			t.Errorf("%s: pins %v, want %v", name, pins, w.pins)
		}
		wantCalls := map[int64]bool{}
		for _, h := range w.helpers {
			wantCalls[abiTable[h]] = true
		}
		if !reflect.DeepEqual(calls, wantCalls) {
			t.Errorf("%s: helper ids %v, want %v (%v)", name, keys(calls), keys(wantCalls), w.helpers)
		}
		if (b.Manifest.Map != nil) != w.hasMap {
			t.Errorf("%s: map %v", name, b.Manifest.Map)
		}
		if w.hasMap {
			ms := spec.Maps["hash_map"]
			if ms.Type != ebpf.Hash || ms.KeySize != 8 || ms.ValueSize != LockStatValueSize || ms.MaxEntries != 10000 {
				t.Errorf("%s: map %+v, want hash 8/88/10000", name, ms)
			}
		}
		var params []string
		for _, p := range b.Manifest.Params {
			params = append(params, p.Name)
		}
		if !reflect.DeepEqual(params, w.params) {
			t.Errorf("%s: params %v, want %v", name, params, w.params)
		}
	}
}

// specDiff names the first program or map that differs between two objects.
func specDiff(t *testing.T, a, b []byte) string {
	sa, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for name, pa := range sa.Programs {
		pb, ok := sb.Programs[name]
		if !ok || pa.SectionName != pb.SectionName || fmt.Sprint(pa.Instructions) != fmt.Sprint(pb.Instructions) {
			return "program " + name
		}
	}
	for name, ma := range sa.Maps {
		mb, ok := sb.Maps[name]
		if !ok || ma.Type != mb.Type || ma.KeySize != mb.KeySize || ma.ValueSize != mb.ValueSize || ma.MaxEntries != mb.MaxEntries {
			return "map " + name
		}
	}
	if len(sa.Programs) != len(sb.Programs) || len(sa.Maps) != len(sb.Maps) {
		return "the number of programs or maps"
	}
	return ""
}

func keys(m map[int64]bool) []int64 {
	var out []int64
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// TestArtifactObject loads the spec of an object shaped like the artifact's
// output: legacy 7-field map, no BTF, lock_* sections, no manifest.
func TestArtifactObject(t *testing.T) {
	p, err := PolicyFromSource(artpolSrc, artpolObj)
	if err != nil {
		t.Fatal(err)
	}
	wantProgs := []Program{
		{Section: "lock_qspinlock_cmp", Function: "custom_cmp_func", Pin: "art_cmp", Hook: "should_reorder"},
		{Section: "lock_qspinlock", Function: "custom_lock_acquired", Pin: "art_lock_acquired", Hook: "lock_acquired"},
		{Section: "lock_qspinlock", Function: "custom_to_enter_slow_path", Pin: "art_to_enter_slow_path", Hook: "lock_to_enter_slowpath"},
	}
	if !reflect.DeepEqual(p.Programs, wantProgs) {
		t.Fatalf("programs %+v", p.Programs)
	}
	if p.Map == nil || p.Map.Name != "hash_map" {
		t.Fatalf("map %+v", p.Map)
	}
	spec, err := LoadSpec(p)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Types != nil {
		t.Error("artifact-shaped object has BTF")
	}
	for _, ps := range spec.Programs {
		if ps.Type != LockPolicyProgramType {
			t.Errorf("%s: type %v", ps.Name, ps.Type)
		}
	}
	ms := spec.Maps["hash_map"]
	if ms.Type != ebpf.Hash || ms.KeySize != 8 || ms.ValueSize != 88 || ms.MaxEntries != 10000 || ms.Extra == nil || ms.Extra.Len() != 8 {
		t.Fatalf("legacy map spec %+v", ms)
	}
	// Pick a program by section when the function is unknown.
	p.Programs = []Program{{Section: "lock_qspinlock_cmp", Pin: "x"}}
	if _, err := LoadSpec(p); err != nil {
		t.Fatal(err)
	}
	// Two programs share lock_qspinlock, as in the artifact's lockstat:
	// the section alone is ambiguous.
	p.Programs = []Program{{Section: "lock_qspinlock", Pin: "x"}}
	if _, err := LoadSpec(p); err == nil || !strings.Contains(err.Error(), "several programs") {
		t.Fatalf("ambiguous section: %v", err)
	}
	p.Programs = []Program{{Section: "lock_nope", Pin: "x"}}
	if _, err := LoadSpec(p); err == nil || !strings.Contains(err.Error(), "no program in section") {
		t.Fatalf("missing section: %v", err)
	}
}

func TestCheckKernel(t *testing.T) {
	lock, _ := LookupBuiltin("lockstat")
	stock := &kernel.Info{Release: "6.18.44", Kallsyms: true}
	err := CheckKernel(lock.Policy(nil), stock)
	if !errors.Is(err, ErrNotSynCordKernel) || !errors.Is(err, ebpf.ErrNotSupported) {
		t.Fatalf("stock kernel: %v", err)
	}
	for _, s := range []string{"6.18.44", "-syncord", "num_policy", "boot a SynCord kernel"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("message lacks %q: %v", s, err)
		}
	}
	if err := CheckKernel(lock.Policy(nil), &kernel.Info{Release: "5.4.0-shfllock-syncord+", SynCord: true, Kallsyms: true}); err != nil {
		t.Fatal(err)
	}
	if err := CheckKernel(lock.Policy(nil), &kernel.Info{Release: "5.4.0-cna-syncord", SynCordName: true}); err != nil {
		t.Fatalf("unreadable kallsyms, -syncord release: %v", err)
	}
	if err := CheckKernel(lock.Policy(nil), &kernel.Info{Release: "5.4.0-cna-syncord", SynCordName: true, Kallsyms: true}); !errors.Is(err, ErrNotSynCordKernel) {
		t.Fatalf("-syncord name without the symbols: %v", err)
	}
	if err := CheckKernel(lock.Policy(nil), &kernel.Info{Release: "6.1.0"}); err == nil || !strings.Contains(err.Error(), "unreadable") {
		t.Fatalf("unreadable kallsyms, stock release: %v", err)
	}
	m, err := ReadManifest(stockpol)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckKernel(m.Policy(stockpol, nil), stock); err != nil {
		t.Fatalf("stock policy refused: %v", err)
	}
}

func TestParams(t *testing.T) {
	amp, err := LookupBuiltin("amp")
	if err != nil {
		t.Fatal(err)
	}
	if got := amp.Manifest.ParamDefaults(); !reflect.DeepEqual(got, map[string]uint64{"cores_per_socket": 28, "patience": 22000000}) {
		t.Fatalf("defaults %v", got)
	}
	spec, err := LoadSpec(amp.Policy(map[string]uint64{"cores_per_socket": 2}))
	if err != nil {
		t.Fatal(err)
	}
	var v uint64
	if err := spec.Variables["cores_per_socket"].Get(&v); err != nil || v != 2 {
		t.Fatalf("cores_per_socket = %d, %v", v, err)
	}
	if err := spec.Variables["patience"].Get(&v); err != nil || v != 22000000 {
		t.Fatalf("patience = %d, %v", v, err)
	}
	if _, err := LoadSpec(amp.Policy(map[string]uint64{"nope": 1})); err == nil || !strings.Contains(err.Error(), "cores_per_socket, patience") {
		t.Fatalf("unknown param: %v", err)
	}

	pcases := []struct {
		name string
		in   []string
		want map[string]uint64
		err  bool
	}{
		{"decimal", []string{"patience=22000000"}, map[string]uint64{"patience": 22000000}, false},
		{"underscores and hex", []string{"a=22_000_000", "b=0x10"}, map[string]uint64{"a": 22000000, "b": 16}, false},
		{"spaces", []string{" a = 1 "}, map[string]uint64{"a": 1}, false},
		{"no value", []string{"a"}, nil, true},
		{"negative", []string{"a=-1"}, nil, true},
		{"empty name", []string{"=1"}, nil, true},
		{"twice", []string{"a=1", "a=2"}, nil, true},
	}
	for _, c := range pcases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseParams(c.in)
			if (err != nil) != c.err || (!c.err && !reflect.DeepEqual(got, c.want)) {
				t.Fatalf("ParseParams(%q) = %v, %v", c.in, got, err)
			}
		})
	}
}

func TestOpenPolicy(t *testing.T) {
	cases := []struct {
		name, arg, obj string
		wantName       string
		wantPin        string
		err            string
	}{
		{name: "builtin", arg: "amp", wantName: "amp", wantPin: "amp_cont_lock"},
		{name: "unknown builtin", arg: "nope", err: "no built-in policy"},
		{name: "eBPFGen dir", arg: stockpol, wantName: "stockpol", wantPin: "stockpol_lock_acquired"},
		{name: "output/<p> dir", arg: "testdata/output/stockpol", wantName: "stockpol", wantPin: "stockpol_lock_acquired"},
		{name: "source with object", arg: artpolSrc, obj: artpolObj, wantName: "artpol", wantPin: "art_cmp"},
		{name: "source without object", arg: artpolSrc, err: "without a compiled object"},
		{name: "empty dir", arg: t.TempDir(), err: "no manifest.json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := OpenPolicy(c.arg, c.obj, map[string]uint64{})
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != c.wantName || p.Programs[0].Pin != c.wantPin {
				t.Fatalf("got %s %+v", p.Name, p.Programs)
			}
		})
	}
}
