package xdir

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/syncord/syncord/workloads"
)

func TestJainFairness(t *testing.T) {
	for _, tc := range []struct {
		name string
		b, v float64
		want float64
	}{
		{"equal", 5, 5, 1},
		{"one group only", 10, 0, 0.5},
		{"three to one", 3, 1, 16.0 / 20},
		{"scale free", 3000, 1000, 16.0 / 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := JainFairness(tc.b, tc.v); math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("JainFairness(%v, %v) = %v, want %v", tc.b, tc.v, got, tc.want)
			}
		})
	}
	if !math.IsNaN(JainFairness(0, 0)) {
		t.Error("JainFairness(0, 0) is not NaN like the artifact's 0.0/0.0")
	}
}

func TestXDirWriteText(t *testing.T) {
	ns := 120.0
	r := &Result{
		Tasks: []Task{
			{ID: 0, LockHold: 300, LockHoldNs: &ns, Runs: 10},
			{ID: 1, LockHold: 100, Runs: 30},
			{ID: 2, LockHold: 500, Runs: 12},
		},
		Seconds: 2, Hold: HoldSyscall, HoldUnit: UnitCycles, TSCHz: 2.5e9,
	}
	r.Fairness = JainFairness(400, 100)
	r.OpsPerSec, r.BullyOpsPerSec, r.VictimOps = 26, 11, 15
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := "[b] task 0: lock_hold=300, runs=10\n" +
		"[b] task 2: lock_hold=500, runs=12\n" +
		"[v] task 1: lock_hold=100, runs=30\n" +
		"fairness=0.735294\n" +
		"Ops/sec: 26.000000\n" +
		"Bully  Ops/sec: 11.000000\n" +
		"Victim Ops/sec: 15.000000\n"
	if b.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", b.String(), want)
	}
	js, err := json.Marshal(r)
	if err != nil || !bytes.Contains(js, []byte(`"fairness":0.73529`)) || !bytes.Contains(js, []byte(`"lock_hold":300,"lock_hold_ns":120,`)) ||
		!bytes.Contains(js, []byte(`"lock_hold":100,"lock_hold_ns":null,`)) || !bytes.Contains(js, []byte(`"lock_hold_unit":"tsc_cycles","tsc_hz":2500000000`)) {
		t.Errorf("JSON: %s, %v", js, err)
	}
	r.Fairness, r.VictimMeanHold, r.VictimMeanHoldNs = math.NaN(), math.Inf(1), math.NaN()
	if js, err = json.Marshal(r); err != nil || !bytes.Contains(js, []byte(`"fairness":null`)) || !bytes.Contains(js, []byte(`"victim_mean_lock_hold":null`)) ||
		!bytes.Contains(js, []byte(`"victim_mean_lock_hold_ns":null`)) {
		t.Errorf("JSON with NaN: %s, %v", js, err)
	}
	if got := cFloat(math.NaN()); got != "-nan" {
		t.Errorf("cFloat(NaN) = %q", got)
	}
}

func TestParseExt4Superblock(t *testing.T) {
	mk := func(magic uint16, compat uint32) []byte {
		sb := make([]byte, 1024)
		binary.LittleEndian.PutUint16(sb[0x38:], magic)
		binary.LittleEndian.PutUint32(sb[0x5C:], compat)
		return sb
	}
	for _, tc := range []struct {
		name             string
		sb               []byte
		dirIndex, wantOK bool
	}{
		{"dir_index on (mkfs default compat 0x3c)", mk(0xEF53, 0x3c), true, true},
		{"dir_index off", mk(0xEF53, 0x1c), false, true},
		{"only dir_index", mk(0xEF53, 0x20), true, true},
		{"not ext4", mk(0x4d44, 0x20), false, false},
		{"short", make([]byte, 10), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			di, ok := ParseExt4Superblock(tc.sb)
			if di != tc.dirIndex || ok != tc.wantOK {
				t.Errorf("got (%v, %v), want (%v, %v)", di, ok, tc.dirIndex, tc.wantOK)
			}
		})
	}
}

func TestParseMountInfo(t *testing.T) {
	const mi = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
30 22 0:25 / /tmp rw,nosuid shared:12 - tmpfs tmpfs rw,size=1024k
41 22 254:0 / /mnt/my\040disk rw,relatime - ext4 /dev/vda rw
42 41 7:3 / /mnt/my\040disk/inner rw master:3 propagate_from:2 - ext2 /dev/loop3 rw
`
	ms, err := xdirParseMountInfo([]byte(mi))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 4 {
		t.Fatalf("parsed %d mounts, want 4", len(ms))
	}
	for _, tc := range []struct {
		name, path, mp, fstype, src string
	}{
		{"root", "/home/x", "/", "ext4", "/dev/sda1"},
		{"tmpfs", "/tmp/a/b", "/tmp", "tmpfs", "tmpfs"},
		{"prefix is not a parent", "/tmpx", "/", "ext4", "/dev/sda1"},
		{"escaped space", "/mnt/my disk/d", "/mnt/my disk", "ext4", "/dev/vda"},
		{"nested with optional fields", "/mnt/my disk/inner", "/mnt/my disk/inner", "ext2", "/dev/loop3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, ok := xdirMountOf(ms, tc.path)
			if !ok || m.Mountpoint != tc.mp || m.FSType != tc.fstype || m.Source != tc.src {
				t.Errorf("xdirMountOf(%q) = %+v, %v", tc.path, m, ok)
			}
		})
	}
	if _, err := xdirParseMountInfo([]byte("1 2 3\n")); err == nil {
		t.Error("malformed line accepted")
	}
}

func FuzzParseMountInfo(f *testing.F) {
	f.Add([]byte("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"))
	f.Add([]byte("41 22 254:0 / /a\\040b rw - ext4 /dev/vda rw\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := xdirParseMountInfo(b)
		if err == nil {
			for _, m := range ms {
				xdirMountOf(ms, m.Mountpoint)
			}
		}
	})
}

func TestXDirPrepareTopUpTrim(t *testing.T) {
	dir := t.TempDir()
	count := func(n int) int {
		es, err := os.ReadDir(filepath.Join(dir, "dst_"+strconv.Itoa(n)+"_files"))
		if err != nil {
			t.Fatal(err)
		}
		files := 0
		for _, e := range es {
			if e.Name() == Marker {
				continue
			}
			if len(e.Name()) != 36 || !e.Type().IsRegular() {
				t.Fatalf("unexpected entry %q", e.Name())
			}
			files++
		}
		return files
	}
	r, err := Prepare("/proc", dir, 50)
	if err != nil {
		t.Fatal(err)
	}
	if r.Created != 50 || count(50) != 50 {
		t.Fatalf("first prepare: created %d, have %d", r.Created, count(50))
	}
	// A file the workload left in src_empty is removed; the dirty dir is
	// kept and topped up or trimmed.
	os.WriteFile(filepath.Join(dir, "src_empty", "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGhIj"), nil, 0o644)
	if r, err = Prepare("/proc", dir, 50); err != nil || r.Created != 0 || r.Removed != 0 {
		t.Fatalf("idempotent prepare: %+v, %v", r, err)
	}
	if es, _ := os.ReadDir(filepath.Join(dir, "src_empty")); len(es) != 0 {
		t.Errorf("src_empty not emptied: %v", es)
	}
	// Top-up and trim work on a directory named for another count too
	// (a renamed one), so exercise them by moving the directory.
	os.Rename(filepath.Join(dir, "dst_50_files"), filepath.Join(dir, "dst_80_files"))
	if r, err = Prepare("/proc", dir, 80); err != nil || r.Created != 30 || count(80) != 80 {
		t.Fatalf("top-up: %+v, %v", r, err)
	}
	os.Rename(filepath.Join(dir, "dst_80_files"), filepath.Join(dir, "dst_20_files"))
	if r, err = Prepare("/proc", dir, 20); err != nil || r.Removed != 60 || count(20) != 20 {
		t.Fatalf("trim: %+v, %v", r, err)
	}
	if r.FS.MountPoint == "" || r.FS.FSType == "" {
		t.Errorf("no filesystem info: %+v", r.FS)
	}
}

// TestXDirPrepareRemovesOnlyOurs puts files syncord did not make into the
// three directories and a symbolic link in place of one: prepare refuses,
// and nothing outside what it made is removed or followed.
func TestXDirPrepareRemovesOnlyOurs(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	victim := filepath.Join(outside, "thesis.tex")
	if err := os.WriteFile(victim, []byte("years of work"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Also a file with one of our names outside: a link must not lead to it.
	ourName := filepath.Join(outside, "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGhIj")
	os.WriteFile(ourName, nil, 0o644)
	intact := func() {
		t.Helper()
		if b, err := os.ReadFile(victim); err != nil || string(b) != "years of work" {
			t.Fatalf("%s touched: %q, %v", victim, b, err)
		}
		if _, err := os.Stat(ourName); err != nil {
			t.Fatalf("%s removed through a link: %v", ourName, err)
		}
	}
	// dst_0_files -> outside: the trim to 0 files must not follow it.
	if err := os.Symlink(outside, filepath.Join(dir, "dst_0_files")); err != nil {
		t.Fatal(err)
	}
	if _, err := Prepare("/proc", dir, 0); err == nil || !strings.Contains(err.Error(), "dst_0_files is a symbolic link") {
		t.Fatalf("prepare over a link: %v, want refused", err)
	}
	intact()
	// src_empty -> outside likewise.
	os.Remove(filepath.Join(dir, "dst_0_files"))
	os.Remove(filepath.Join(dir, "src_empty")) // made by the first prepare
	if err := os.Symlink(outside, filepath.Join(dir, "src_empty")); err != nil {
		t.Fatal(err)
	}
	if _, err := Prepare("/proc", dir, 0); err == nil || !strings.Contains(err.Error(), "src_empty is a symbolic link") {
		t.Fatalf("prepare over a src_empty link: %v, want refused", err)
	}
	intact()
	os.Remove(filepath.Join(dir, "src_empty"))

	// A user's file in a dst_N_files syncord made: kept, prepare refuses.
	if _, err := Prepare("/proc", dir, 5); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(dir, "dst_5_files", "thesis.tex")
	os.WriteFile(mine, []byte("x"), 0o644)
	os.Rename(filepath.Join(dir, "dst_5_files"), filepath.Join(dir, "dst_2_files"))
	if _, err := Prepare("/proc", dir, 2); err == nil || !strings.Contains(err.Error(), `holds "thesis.tex", which syncord did not make`) {
		t.Fatalf("prepare beside a user's file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "dst_2_files", "thesis.tex")); err != nil {
		t.Fatalf("user's file removed: %v", err)
	}
	// A directory syncord did not make (no marker) is never trimmed.
	plain := filepath.Join(dir, "dst_1_files")
	os.Mkdir(plain, 0o755)
	for _, nm := range []string{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"} {
		os.WriteFile(filepath.Join(plain, nm), nil, 0o644)
	}
	if _, err := Prepare("/proc", dir, 1); err == nil || !strings.Contains(err.Error(), "syncord did not make it (no "+Marker) {
		t.Fatalf("trim of a directory without the marker: %v", err)
	}
	if es, _ := os.ReadDir(plain); len(es) != 2 {
		t.Fatalf("unmarked directory trimmed: %v", es)
	}
}

var xdirOutRE = regexp.MustCompile(`\A(\[b\] task \d*[02468]: lock_hold=\d+, runs=\d+\n)+(\[v\] task \d*[13579]: lock_hold=\d+, runs=\d+\n)+fairness=\d+\.\d{6}\nOps/sec: \d+\.\d{6}\nBully  Ops/sec: \d+\.\d{6}\nVictim Ops/sec: \d+\.\d{6}\n\z`)

func TestXDirRunShort(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs for one second (drop -short)")
	}
	dir := t.TempDir()
	p, err := Prepare("/proc", dir, 200)
	if err != nil {
		t.Fatal(err)
	}
	n := 2
	if c := workloads.UsableCPUs(); c < 2 {
		t.Skipf("skipping: needs 2 CPUs for 2 pinned tasks, have %d", c)
	}
	res, err := Run(context.Background(), Config{
		Src: p.Src, DstDirty: p.DstDirty, Dst: p.Dst,
		Duration: time.Second, Bullies: n / 2, Victims: n / 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Hold != HoldDuration || res.HoldUnit != UnitNs || res.TSCHz != 0 {
		t.Errorf("hold source %q unit %q tsc %v on a test host, want the rename duration in ns", res.Hold, res.HoldUnit, res.TSCHz)
	}
	for _, tk := range res.Tasks {
		if tk.Runs <= 0 || tk.LockHold == 0 {
			t.Errorf("task %d made no progress: %+v", tk.ID, tk)
		}
		if tk.LockHoldNs == nil || *tk.LockHoldNs != float64(tk.LockHold) {
			t.Errorf("task %d: lock_hold_ns %v, want lock_hold %d (already ns)", tk.ID, tk.LockHoldNs, tk.LockHold)
		}
	}
	if !(res.Fairness > 0 && res.Fairness <= 1) {
		t.Errorf("fairness %v outside (0, 1]", res.Fairness)
	}
	var b bytes.Buffer
	res.WriteText(&b)
	if !xdirOutRE.Match(b.Bytes()) {
		t.Errorf("output does not match the artifact format:\n%s", b.String())
	}
	// The loop leaves nothing behind.
	for _, d := range []string{p.Src, p.Dst} {
		if es, _ := os.ReadDir(d); len(es) != 0 {
			t.Errorf("%s not empty after the run: %d entries", d, len(es))
		}
	}
	if es, _ := os.ReadDir(p.DstDirty); len(es) != 200+1 {
		t.Errorf("%s has %d entries after the run, want 200 and %s", p.DstDirty, len(es), Marker)
	}
}

func TestMakeXDirImageSuperblock(t *testing.T) {
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("skipping: mkfs.ext4 not found (apt-get install e2fsprogs)")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "xdir.img")
	if err := MakeImage(context.Background(), img, 32<<20); err != nil {
		t.Fatal(err)
	}
	if err := MakeImage(context.Background(), img, 32<<20); err == nil {
		t.Error("MakeImage overwrote an existing file")
	}
	sb, err := xdirReadAt(img, 1024, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if di, ok := ParseExt4Superblock(sb); !ok || di {
		t.Errorf("our image: dir_index=%v ext4=%v, want off and ext4", di, ok)
	}
	// FSInfoOf follows mountinfo to the device and reads its superblock:
	// a private procfs root whose mountinfo names the image as the source
	// of an ext4 mount on the directory.
	proc := filepath.Join(dir, "proc")
	os.MkdirAll(filepath.Join(proc, "self"), 0o755)
	mi := "1 0 8:1 / / rw - tmpfs none rw\n2 1 7:0 / " + dir + " rw shared:1 - ext4 " + img + " rw\n"
	os.WriteFile(filepath.Join(proc, "self/mountinfo"), []byte(mi), 0o644)
	info, err := FSInfoOf(proc, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Ext4 || !info.Superblock || info.DirIndex || !info.Suitable() || info.MountPoint != dir || info.Note != "" {
		t.Errorf("FSInfoOf over our image: %+v", info)
	}
	if info, _ := FSInfoOf(proc, "/"); info.Ext4 || info.Suitable() || !strings.Contains(info.Note, "not ext4") {
		t.Errorf("FSInfoOf of a tmpfs: %+v", info)
	}

	// Populated from a prepared directory: the files are in the image.
	src := filepath.Join(dir, "root")
	if _, err := Prepare("/proc", src, 300); err != nil {
		t.Fatal(err)
	}
	pop := filepath.Join(dir, "pop.img")
	if err := MakeImageFrom(context.Background(), pop, 32<<20, src); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("debugfs", "-R", "ls -l /dst_300_files", pop).CombinedOutput(); err == nil {
		if n := strings.Count(string(out), "\n"); n < 300 {
			t.Errorf("debugfs lists %d lines in dst_300_files, want >= 300:\n%s", n, out)
		}
	} else {
		t.Logf("debugfs unavailable (%v): population not checked", err)
	}
	// A default mkfs.ext4 image has dir_index on: the parser reads the bit
	// mkfs sets, not a constant.
	def := filepath.Join(dir, "default.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", def, "16M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	sb, err = xdirReadAt(def, 1024, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if di, ok := ParseExt4Superblock(sb); !ok || !di {
		t.Errorf("default image: dir_index=%v ext4=%v, want on and ext4", di, ok)
	}
	mi = "2 1 7:0 / " + dir + " rw - ext4 " + def + " rw\n"
	os.WriteFile(filepath.Join(proc, "self/mountinfo"), []byte(mi), 0o644)
	if info, err := FSInfoOf(proc, dir); err != nil || !info.DirIndex || info.Suitable() || !strings.Contains(info.Note, "dir_index is on") {
		t.Errorf("FSInfoOf over a default image: %+v, %v", info, err)
	}
}

func FuzzParseExt4Superblock(f *testing.F) {
	sb := make([]byte, 1024)
	binary.LittleEndian.PutUint16(sb[0x38:], 0xEF53)
	f.Add(sb)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		di, ok := ParseExt4Superblock(b)
		if di && !ok {
			t.Fatal("dir_index reported without an ext4 magic")
		}
	})
}

func TestXDirRunRefusesMissingCPU(t *testing.T) {
	dir := t.TempDir()
	p, err := Prepare("/proc", dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	n := workloads.UsableCPUs() + 1 // one task more than CPUs: task n-1 has no CPU n-1
	_, err = Run(context.Background(), Config{Src: p.Src, DstDirty: p.DstDirty, Dst: p.Dst,
		Duration: time.Second, Bullies: (n + 1) / 2, Victims: n / 2})
	if err == nil || !strings.Contains(err.Error(), "run fewer tasks") {
		t.Errorf("Run with %d tasks: %v", n, err)
	}
	if es, _ := os.ReadDir(p.Src); len(es) != 0 {
		t.Errorf("refused run left files in %s", p.Src)
	}
}
