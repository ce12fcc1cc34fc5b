package experiment

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const smallSpec = `
name = "small"
duration = 1
points = [1, 4]

[vm]
sockets = 2
cores = 2

[[kernel]]
path = "debian"

[[kernel]]
name = "stock-syncord"
path = "kernels:stock-syncord"
policies = ["none", "lockstat"]

[policy.lockstat]
livepatch = "none"

[[benchmark]]
driver = "will-it-scale"
test = "lock1"

[[benchmark]]
driver = "fxmark"
test = "MWRL"
`

func mustParse(t *testing.T, src string) *Spec {
	t.Helper()
	s, err := Parse("t.toml", []byte(src), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseDefaultsAndCells(t *testing.T) {
	s := mustParse(t, smallSpec)
	if s.Repetitions != 1 || s.VM.MemPerNode != 512 || s.VM.Pin != "numa" || s.Kernels[0].Name != "debian" || !slices.Equal(s.Kernels[0].Policies, []string{"none"}) {
		t.Errorf("defaults not applied: %+v", s)
	}
	cs := s.Cells()
	var keys []string
	n := 0
	for _, c := range cs {
		keys = append(keys, c.Key())
		n += len(c.Runs())
	}
	want := []string{"debian-none-lock1", "debian-none-MWRL", "stock-syncord-none-lock1", "stock-syncord-none-MWRL", "stock-syncord-lockstat-lock1", "stock-syncord-lockstat-MWRL"}
	if !slices.Equal(keys, want) || n != 12 {
		t.Errorf("cells %v (%d runs), want %v (12 runs)", keys, n, want)
	}
	if got := strings.Join(cs[0].Runs()[1].Args(), " "); got != "bench sweep will-it-scale lock1 --points 4 --duration 1" {
		t.Errorf("lock1 run: %q", got)
	}
	if got := strings.Join(cs[1].Runs()[0].Args(), " "); got != "bench fxmark --type MWRL --ncore 1 --duration 1 --root /tmp" {
		t.Errorf("MWRL run: %q", got)
	}
	if got := strings.Join(s.installArgs("lockstat", ""), " "); got != "policy install lockstat" {
		t.Errorf("install with livepatch none: %q", got)
	}
}

func TestDriversArgs(t *testing.T) {
	s := mustParse(t, `
duration = 3
repetitions = 2
[vm]
sockets = 2
cores = 4
[[kernel]]
path = "debian"
[[benchmark]]
driver = "xdir"
files = 1000
[[benchmark]]
driver = "metis"
args = ["-s", "64"]
[[benchmark]]
driver = "leveldb"
duration = 2
points = [2]
`)
	cs := s.Cells()
	// xdir's points start at 2: the layout's 1,2,4,8 become 2,4,8.
	if !slices.Equal(cs[0].Points, []int{2, 4, 8}) || len(cs[0].Runs()) != 6 {
		t.Errorf("xdir points %v, runs %d", cs[0].Points, len(cs[0].Runs()))
	}
	if got := strings.Join(cs[0].Runs()[1].Args(), " "); got != "bench xdir run /tmp/xdir/src_empty /tmp/xdir/dst_1000_files /tmp/xdir/dst_empty 3 2 2" {
		t.Errorf("xdir run: %q", got)
	}
	if got := strings.Join(SetupArgs(cs[0].Bench), " "); got != "bench xdir prepare --dir /tmp/xdir -n 1000" {
		t.Errorf("xdir setup: %q", got)
	}
	if got := strings.Join(cs[1].Runs()[0].Args(), " "); got != "bench metis wrmem -p 1 -s 64" {
		t.Errorf("metis run: %q", got)
	}
	if got := strings.Join(cs[2].Runs()[0].Args(), " "); got != "bench leveldb readrandom --threads 2 --duration 2 --db /tmp/leveldb" {
		t.Errorf("leveldb run: %q", got)
	}
}

func TestParseRefuses(t *testing.T) {
	base := "[[kernel]]\npath = \"debian\"\n[[benchmark]]\ndriver = \"will-it-scale\"\ntest = \"lock1\"\n"
	for _, tc := range []struct{ src, msg string }{
		{"durations = 3\n" + base, "unknown key(s) durations"},
		{base + "repeats = 3\n", "unknown key(s) benchmark.repeats"},
		{base + "[vm]\npin = \"sideways\"\n", `pin "sideways"`},
		{base + "[[benchmark]]\ndriver = \"sysbench\"\n", `driver "sysbench" is not one of`},
		{base + "[[benchmark]]\ndriver = \"fxmark\"\n", "needs test"},
		{base + "points = [0]\n", "points: 0 is out of range"},
		{"[[benchmark]]\ndriver = \"metis\"\n", "no [[kernel]]"},
		{"[[kernel]]\npath = \"debian\"\n", "no [[benchmark]]"},
		{base + "[[kernel]]\npath = \"debian\"\n", `kernel name "debian" given twice`},
		{base + "[policy.none]\nlivepatch = \"none\"\n", "none is the baseline"},
		{"[[kernel]]\npath = \"debian\"\npolicies = [\"../x\"]\n" + base[strings.Index(base, "[[benchmark]]"):], "use letters"},
		{"name = \n", "spec t.toml"},
	} {
		_, err := Parse("t.toml", []byte(tc.src), "")
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: err = %v, want it to say %q", tc.src, err, tc.msg)
		}
	}
}

func TestBuiltins(t *testing.T) {
	bs, err := Builtins()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range bs {
		names = append(names, b.Name)
		if b.Reproduces == "" || !strings.HasPrefix(b.Reproduces, "Fig. ") {
			t.Errorf("%s: reproduces %q", b.Name, b.Reproduces)
		}
		for _, k := range b.Spec.Kernels {
			if !strings.HasPrefix(k.Path, "kernels:") {
				t.Errorf("%s: kernel %s is not one of the SynCord kernels", b.Name, k.Path)
			}
		}
	}
	if !slices.Equal(names, []string{"fig12", "fig13", "fig5", "fig7", "fig9"}) {
		t.Errorf("built-ins %v", names)
	}
	// Scaled to a layout: the points follow the sockets and cores.
	s, err := Load("fig13")
	if err != nil {
		t.Fatal(err)
	}
	s.VM.Sockets, s.VM.Cores = 8, 28
	if pts := s.Cells()[0].Points; !slices.Equal(pts, []int{1, 2, 4, 8, 16, 28, 56, 84, 112, 140, 168, 196, 224}) {
		t.Errorf("fig13 on 8x28: points %v", pts)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s.toml")
	os.WriteFile(p, []byte(smallSpec), 0o644)
	s, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if s.Dir != dir {
		t.Errorf("spec dir %q, want %q (relative kernel paths resolve from it)", s.Dir, dir)
	}
	if _, err := Load(filepath.Join(dir, "nope.toml")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing spec: %v", err)
	}
	if _, err := Load("fig99"); err == nil || !strings.Contains(err.Error(), "no built-in spec") {
		t.Errorf("unknown built-in: %v", err)
	}
}
