package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/syncord/syncord/workloads/xdir"
)

var (
	xdirTaskRE     = regexp.MustCompile(`(?m)^\[([bv])\] task (\d+): lock_hold=(\d+), runs=(\d+)$`)
	xdirSummaryRE  = regexp.MustCompile(`(?m)\Afairness=(\d+\.\d{6})\nOps/sec: (\d+\.\d{6})\nBully  Ops/sec: (\d+\.\d{6})\nVictim Ops/sec: (\d+\.\d{6})\n\z`)
	metisRE        = regexp.MustCompile(`\AStarting mapreduce\nFinished mapreduce\nRuntime in milliseconds \[4 cores\]\n\tSample:\t(\d+)\tMap:\t(\d+)\tReduce:\t(\d+)\tMerge:\t(\d+)\tSum:\t(\d+)\tReal:\t(\d+)\t\nNumber of Tasks\n\tSample:\t(\d+)\tMap:\t(\d+)\tReduce:\t(\d+)\t\n\nwordreverseindex: results \(TOP 3 from (\d+) keys, (\d+) words\):\n((?: {12}[A-Z]{3} - \d+\n){3})\z`)
	leveldbFoundRE = regexp.MustCompile(`\((\d+) of (\d+) found\)`)
	leveldbRE      = regexp.MustCompile(`\A((?:per-thread stat : +\d+\.\d{3} micros/op; \(\d+ of \d+ found\)\nreadrandom   : +\d+\.\d{3} \( +\d+ / \d+\.\d{3}\) ops/s\n){3})#num_threads, fast, slow, tot ops/s\n4, (\d+\.\d{3}), (\d+\.\d{3}), (\d+\.\d{3})\n\z`)
)

// TestWorkloadsII boots a 2x2 guest with an ext4 image made on the host
// without dir_index (virtio disk /dev/vda) and runs the three drivers of
// issue 7 there: a 20,000-file xdir run with 2 bullies and 2 victims for
// 3 s on the mounted image, metis wrmem with a small input, and leveldb
// readrandom with a small database.
func TestWorkloadsII(t *testing.T) {
	skipUnlessEnabled(t)
	// The 20,000 files are made on the host and put into the image by
	// mkfs.ext4 -d: without dir_index every create scans the directory,
	// minutes of emulated CPU in the guest. The guest's prepare then finds
	// them (its create path is unit-tested in workloads).
	tmp := t.TempDir()
	root := filepath.Join(tmp, "root")
	if _, err := xdir.Prepare("/proc", root, 20000); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(tmp, "xdir.img")
	if err := xdir.MakeImageFrom(context.Background(), img, 256<<20, root); err != nil {
		t.Fatal(err)
	}
	vm := Boot(t, Config{Sockets: 2, Cores: 2, MemPerNodeMB: 512, Modules: []string{"ext4", "crc32c_generic"}, Disks: []string{img}})
	vm.MustRun(t, "mkdir -p /mnt/xdir && mount -t ext4 /dev/vda /mnt/xdir")
	t.Cleanup(func() { vm.Run(t, "umount /mnt/xdir") })

	t.Run("xdir", func(t *testing.T) {
		out := vm.MustRun(t, "syncord bench xdir prepare --dir /mnt/xdir -n 20000 --json")
		var prep struct {
			Files, Created int
			DstDirty       string `json:"dst_dirty"`
			Suitable       bool
			FS             xdir.FSInfo `json:"filesystem"`
		}
		if err := json.Unmarshal([]byte(out), &prep); err != nil {
			t.Fatalf("prepare --json: %v\n%s", err, out)
		}
		if prep.Files != 20000 || prep.Created != 0 || !prep.Suitable || !prep.FS.Superblock || prep.FS.DirIndex || prep.FS.Source != "/dev/vda" {
			t.Fatalf("prepare: %s", out)
		}
		if n := strings.TrimSpace(vm.MustRun(t, "ls /mnt/xdir/dst_20000_files | wc -l")); n != "20000" {
			t.Fatalf("dst_20000_files holds %s files", n)
		}
		// Top-up and trim in the guest, on a small directory.
		if out := vm.MustRun(t, "syncord bench xdir prepare --dir /mnt/xdir/small -n 50 && mv /mnt/xdir/small/dst_50_files /mnt/xdir/small/dst_20_files && syncord bench xdir prepare --dir /mnt/xdir/small -n 20"); !strings.Contains(out, "created 0, removed 30") || !strings.Contains(out, "dir_index off") {
			t.Errorf("guest prepare:\n%s", out)
		}

		out = vm.MustRun(t, "syncord bench xdir run /mnt/xdir/src_empty /mnt/xdir/dst_20000_files /mnt/xdir/dst_empty 3 2 2")
		t.Logf("guest xdir run:\n%s", out)
		out, progress := withoutProgress(out)
		if progress == 0 {
			t.Errorf("no status line on stderr in a 3 s xdir run")
		}
		tasks := xdirTaskRE.FindAllStringSubmatch(out, -1)
		wantOrder := []string{"b0", "b2", "v1", "v3"}
		if len(tasks) != 4 {
			t.Fatalf("task lines:\n%s", out)
		}
		var bHold, vHold float64
		for i, m := range tasks {
			if m[1]+m[2] != wantOrder[i] {
				t.Errorf("line %d is %s task %s, want %s", i, m[1], m[2], wantOrder[i])
			}
			hold, _ := strconv.ParseFloat(m[3], 64)
			runs, _ := strconv.Atoi(m[4])
			if hold <= 0 || runs <= 0 {
				t.Errorf("task %s: lock_hold=%s runs=%s", m[2], m[3], m[4])
			}
			if m[1] == "b" {
				bHold += hold / 2
			} else {
				vHold += hold / 2
			}
		}
		rest := out[strings.Index(out, "fairness="):]
		sm := xdirSummaryRE.FindStringSubmatch(rest)
		if sm == nil || !strings.HasPrefix(out, "[b] task 0: ") {
			t.Fatalf("output format:\n%s", out)
		}
		fair, _ := strconv.ParseFloat(sm[1], 64)
		if !(fair > 0 && fair <= 1) {
			t.Errorf("fairness %v outside (0, 1]", fair)
		}
		if want := xdir.JainFairness(bHold, vHold); strconv.FormatFloat(want, 'f', 6, 64) != sm[1] {
			t.Errorf("fairness=%s, Jain over the printed group means gives %f", sm[1], want)
		}
		for _, s := range sm[2:] {
			if v, _ := strconv.ParseFloat(s, 64); v <= 0 {
				t.Errorf("rate %s is not > 0:\n%s", s, out)
			}
		}
		// Stock kernel: syscall 436 is close_range, so the hold is measured.
		out = vm.MustRun(t, "syncord bench xdir run /mnt/xdir/src_empty /mnt/xdir/dst_20000_files /mnt/xdir/dst_empty 1 1 1 --json")
		if !strings.Contains(out, `"lock_hold_source": "rename_duration"`) {
			t.Errorf("lock_hold source on a stock kernel:\n%s", out)
		}
		if n := strings.TrimSpace(vm.MustRun(t, "ls /mnt/xdir/src_empty /mnt/xdir/dst_empty | grep -vc ':$\\|^$' || true")); n != "0" {
			t.Errorf("files left behind in src_empty/dst_empty: %s", n)
		}
	})

	t.Run("metis", func(t *testing.T) {
		out := vm.MustRun(t, "syncord bench metis wrmem -p 4 -s 8 -l 3")
		t.Logf("guest metis:\n%s", out)
		m := metisRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("output format:\n%q", out)
		}
		if real, _ := strconv.Atoi(m[6]); real <= 0 {
			t.Errorf("Real: %s", m[6])
		}
		if m[8] == "0" || m[9] == "0" {
			t.Errorf("map tasks %s, reduce tasks %s", m[8], m[9])
		}
		if m[10] != "4394" || m[11] != strconv.Itoa(8<<20/4) {
			t.Errorf("%s keys, %s words; want 4394 (the LCG's 3-letter words) and %d", m[10], m[11], 8<<20/4)
		}
		if !strings.HasPrefix(m[12], "            ABA - ") {
			t.Errorf("top keys:\n%s", m[12])
		}
	})

	t.Run("leveldb", func(t *testing.T) {
		out := vm.MustRun(t, "syncord bench leveldb readrandom --threads 4 --num 2000 --duration 2 --db /tmp/ldb 2>/dev/null")
		t.Logf("guest leveldb:\n%s", out)
		m := leveldbRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("output format:\n%s", out)
		}
		for _, s := range m[2:] {
			if v, _ := strconv.ParseFloat(s, 64); v <= 0 {
				t.Errorf("ops/s %s is not > 0:\n%s", s, out)
			}
		}
		// Every key 0..num-1 exists, so every read finds its key.
		for _, f := range leveldbFoundRE.FindAllStringSubmatch(m[1], -1) {
			if f[1] != f[2] {
				t.Errorf("not every key found: %s", f[0])
			}
		}
	})
}
