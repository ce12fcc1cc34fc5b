package workloads

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var sampleRE = regexp.MustCompile(`^min:(\d+) max:(\d+) total:(\d+) fast:(\d+) slow:(\d+)$`)

// checkWISOutput checks the line sequence of a run and that every sample
// line has fast+slow == total and min <= max.
func checkWISOutput(t *testing.T, out string, desc string, warmup, seconds int) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := 3 + warmup + 1 + 1 + seconds + 1
	if len(lines) != want {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), want, out)
	}
	if lines[0] != "done" || lines[1] != "testcase:"+desc || lines[2] != "warmup" {
		t.Fatalf("bad header:\n%s", out)
	}
	i := 3
	for n := 0; n < warmup+1+seconds; n++ {
		if n == warmup+1 {
			if lines[i] != "measurement" {
				t.Fatalf("line %d = %q, want measurement", i, lines[i])
			}
			i++
		}
		m := sampleRE.FindStringSubmatch(lines[i])
		if m == nil {
			t.Fatalf("line %d = %q is not a sample line", i, lines[i])
		}
		v := make([]uint64, 5)
		for k := range v {
			v[k], _ = strconv.ParseUint(m[k+1], 10, 64)
		}
		if v[3]+v[4] != v[2] {
			t.Errorf("line %d %q: fast+slow != total", i, lines[i])
		}
		if v[0] > v[1] {
			t.Errorf("line %d %q: min > max", i, lines[i])
		}
		i++
	}
	if !regexp.MustCompile(`^average:\d+:\d+:\d+$`).MatchString(lines[i]) {
		t.Fatalf("last line %q is not average", lines[i])
	}
}

// TestEveryTestRuns runs each test briefly with 2 pinned tasks (unpinned
// on a 1-CPU machine): the output has the suite's shape, fast+slow ==
// total on every sample, the tasks did work, and the samples add up to no
// more than the work the tasks counted. Whether work falls into one given
// 100 ms sample is the machine's weather (a busy CPU, or writeback
// throttling a pwrite test on a disk-backed TMPDIR, can hold both tasks
// for that long), so no single sample is required to be non-zero.
func TestEveryTestRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs every test for 0.2 s (drop -short)")
	}
	noAff := onlineCount(t) < 2
	for _, tc := range WISTests() {
		t.Run(tc.Name, func(t *testing.T) {
			var buf bytes.Buffer
			res, err := RunWillItScale(context.Background(), WISOptions{Test: tc.Name, Tasks: 2, CoresPerSocket: 2,
				Seconds: 1, Warmup: -1, Interval: 100 * time.Millisecond, NoAffinity: noAff, TmpDir: t.TempDir()}, &buf)
			if err != nil {
				t.Fatal(err)
			}
			checkWISOutput(t, buf.String(), tc.Description, 0, 1)
			var ops, sampled uint64
			for _, n := range res.TaskOps {
				ops += n
			}
			for _, s := range res.Samples {
				sampled += s.Total
			}
			if ops == 0 {
				t.Errorf("the tasks did no operations at all:\n%s", buf.String())
			}
			if sampled > ops {
				t.Errorf("the samples add up to %d operations, more than the %d the tasks counted:\n%s", sampled, ops, buf.String())
			}
			if m, a := res.Samples[len(res.Samples)-1], res.Average; a.Total != m.Total || a.Fast != m.Fast || a.Slow != m.Slow {
				t.Errorf("average %+v, want the one measured sample %+v", res.Average, m)
			}
		})
	}
}

func onlineCount(t *testing.T) int {
	set, err := OnlineCPUs("")
	if err != nil {
		t.Fatal(err)
	}
	return set.Len()
}
