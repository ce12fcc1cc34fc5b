package xdir

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/syncord/syncord/workloads"
	"github.com/syncord/syncord/workloads/internal/progresstest"
)

// progressRE is the shape of Config.Progress's lines.
var progressRE = regexp.MustCompile(`^xdir: (\d+)/(\d+(?:\.\d+)?) s: bullies (\d+) renames \((\d+)/s\), victims (\d+) renames \((\d+)/s\)$`)

func TestProgressLine(t *testing.T) {
	for _, tc := range []struct {
		elapsed, duration time.Duration
		b, v              uint64
		want              string
	}{
		{3 * time.Second, 30 * time.Second, 12345, 23456, "xdir: 3/30 s: bullies 12345 renames (4115/s), victims 23456 renames (7819/s)\n"},
		{1499 * time.Millisecond, 2 * time.Second, 0, 3, "xdir: 1/2 s: bullies 0 renames (0/s), victims 3 renames (2/s)\n"},
		{0, time.Second, 1, 1, "xdir: 0/1 s: bullies 1 renames (0/s), victims 1 renames (0/s)\n"},
	} {
		if got := ProgressLine(tc.elapsed, tc.duration, tc.b, tc.v); got != tc.want {
			t.Errorf("ProgressLine(%v, %v, %d, %d) = %q, want %q", tc.elapsed, tc.duration, tc.b, tc.v, got, tc.want)
		}
	}
}

// TestXDirRunProgress runs one bully and one victim for 3 s with Progress
// set: at least one status line of the documented shape, counts that never
// go back and never exceed the tasks' runs=, none after Run returned, and
// the artifact's output on WriteText.
func TestXDirRunProgress(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs for 3 seconds (drop -short)")
	}
	if c := workloads.UsableCPUs(); c < 2 {
		t.Skipf("skipping: needs 2 CPUs for 2 pinned tasks, have %d", c)
	}
	p, err := Prepare("/proc", t.TempDir(), 200)
	if err != nil {
		t.Fatal(err)
	}
	rec := progresstest.New(t)
	res, err := Run(context.Background(), Config{Src: p.Src, DstDirty: p.DstDirty, Dst: p.Dst,
		Duration: 3 * time.Second, Bullies: 1, Victims: 1, Progress: rec})
	lines := rec.Close()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // a status line after Run returned would show now
	if len(lines) == 0 {
		t.Fatal("no progress line in a 3 s run")
	}
	var lastB, lastV uint64
	for _, l := range lines {
		m := progressRE.FindStringSubmatch(l)
		if m == nil || m[2] != "3" {
			t.Fatalf("progress line %q: want \"xdir: E/3 s: bullies B renames (R/s), victims V renames (R/s)\"", l)
		}
		b, _ := strconv.ParseUint(m[3], 10, 64)
		v, _ := strconv.ParseUint(m[5], 10, 64)
		if b < lastB || v < lastV {
			t.Errorf("renames went back:\n%s", strings.Join(lines, "\n"))
		}
		lastB, lastV = b, v
	}
	if lastB > uint64(res.Tasks[0].Runs) || lastV > uint64(res.Tasks[1].Runs) {
		t.Errorf("progress says %d and %d renames, the tasks made %d and %d", lastB, lastV, res.Tasks[0].Runs, res.Tasks[1].Runs)
	}
	var b bytes.Buffer
	res.WriteText(&b)
	if !xdirOutRE.Match(b.Bytes()) {
		t.Errorf("output does not match the artifact format:\n%s", b.String())
	}
}
