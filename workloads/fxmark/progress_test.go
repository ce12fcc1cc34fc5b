package fxmark

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/syncord/syncord/workloads/internal/progresstest"
)

// progressRE is the shape of Config.Progress's lines.
var progressRE = regexp.MustCompile(`^fxmark: ([A-Z_a-z]+) (\d+)/(\d+(?:\.\d+)?) s: (\d+) works, (\d+) works/s$`)

func TestProgressLine(t *testing.T) {
	for _, tc := range []struct {
		elapsed, duration time.Duration
		works             uint64
		want              string
	}{
		{3 * time.Second, 30 * time.Second, 481234, "fxmark: MWRL 3/30 s: 481234 works, 160411 works/s\n"},
		{1002 * time.Millisecond, 1500 * time.Millisecond, 0, "fxmark: MWRL 1/1.5 s: 0 works, 0 works/s\n"},
		{0, time.Second, 5, "fxmark: MWRL 0/1 s: 5 works, 0 works/s\n"},
	} {
		if got := ProgressLine("MWRL", tc.elapsed, tc.duration, tc.works); got != tc.want {
			t.Errorf("ProgressLine(%v, %v, %d) = %q, want %q", tc.elapsed, tc.duration, tc.works, got, tc.want)
		}
	}
}

// TestRunProgress runs MWRL for 3 s with Progress set: at least one
// status line of the documented shape, works that never go back and never
// exceed the report's, none after Run returned, and a report of fxmark's
// shape on WriteText.
func TestRunProgress(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs for 3 seconds (drop -short)")
	}
	rec := progresstest.New(t)
	res, err := Run(context.Background(), Config{Type: "MWRL", NCore: 1, Duration: 3 * time.Second,
		Root: t.TempDir(), CoresPerSocket: 1, NoAffinity: true, Progress: rec})
	lines := rec.Close()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // a status line after Run returned would show now
	if len(lines) == 0 {
		t.Fatal("no progress line in a 3 s run")
	}
	var last int64 = -1
	for _, l := range lines {
		m := progressRE.FindStringSubmatch(l)
		if m == nil || m[1] != "MWRL" || m[3] != "3" {
			t.Fatalf("progress line %q: want \"fxmark: MWRL E/3 s: N works, R works/s\"", l)
		}
		n, _ := strconv.ParseInt(m[4], 10, 64)
		if n < last {
			t.Errorf("works went back from %d to %d:\n%s", last, n, strings.Join(lines, "\n"))
		}
		last = n
	}
	if float64(last) > res.Works {
		t.Errorf("progress says %d works, the report %v", last, res.Works)
	}
	var buf bytes.Buffer
	res.WriteText(&buf)
	if got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n"); len(got) != 2 || got[0] != Header || !fxDataRE.MatchString(got[1]) {
		t.Fatalf("report:\n%q", buf.String())
	}
}

// TestSweepNoPointProgress sweeps one point of 1.5 s with Run.Progress
// set: the points write no status lines there (the sweep's own Progress
// has its point lines and reports, as before).
func TestSweepNoPointProgress(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs for 1.5 seconds (drop -short)")
	}
	rec := progresstest.New(t)
	var sweep bytes.Buffer
	_, err := Sweep(context.Background(), SweepConfig{Run: Config{Type: "MWRL", Duration: 1500 * time.Millisecond,
		Root: t.TempDir(), CoresPerSocket: 1, NoAffinity: true, Progress: rec}, Points: []int{1}, FS: "testfs", Progress: &sweep})
	if lines := rec.Close(); err != nil || len(lines) != 0 {
		t.Fatalf("sweep: %v; point status lines %q, want none", err, lines)
	}
	if regexp.MustCompile(`(?m)^fxmark: `).MatchString(sweep.String()) || !strings.HasPrefix(sweep.String(), "fxmark MWRL: point 1 of 1 (1 cores)") {
		t.Fatalf("sweep progress:\n%s", sweep.String())
	}
}
