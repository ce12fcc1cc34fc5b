package wis

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/syncord/syncord/numa"
	"github.com/syncord/syncord/workloads"
	"github.com/syncord/syncord/workloads/internal/cputest"
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
	noAff := cputest.Online(t) < 2
	for _, tc := range Tests() {
		t.Run(tc.Name, func(t *testing.T) {
			var buf bytes.Buffer
			res, err := runText(context.Background(), Config{Test: tc.Name, Tasks: 2, CoresPerSocket: 2,
				Duration: 1 * 100 * time.Millisecond, Warmup: -1, Interval: 100 * time.Millisecond, NoAffinity: noAff, TmpDir: t.TempDir()}, &buf)
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

// runText runs cfg with its lines going to out and, after a run that
// ended with a result, the closing line too: what the suite prints.
func runText(ctx context.Context, cfg Config, out io.Writer) (*Result, error) {
	cfg.Progress = out
	res, err := Run(ctx, cfg)
	if err == nil && out != nil {
		res.WriteText(out)
	}
	return res, err
}

// TestTempFilesGoneAfterCancel: runs of tests that keep named files are
// cancelled mid-way (with -s 0, which is how such a run ends, and with -s
// 50, which is an interruption: 5 s of samples cannot end before the
// 350 ms deadline); nothing is left in the temp directory.
func TestTempFilesGoneAfterCancel(t *testing.T) {
	for _, name := range []string{"lock1", "lock2", "open1", "open2", "unlink2", "dup1", "page_fault2", "readseek3"} {
		for _, secs := range []int{0, 50} {
			t.Run(name, func(t *testing.T) {
				tmp := t.TempDir()
				var ctx context.Context
				var cancel context.CancelFunc
				var buf bytes.Buffer
				var out io.Writer = &buf
				if secs == 0 {
					// Cancelled once the first measured sample is out,
					// however long a busy machine takes to get there.
					ctx, cancel = context.WithCancel(context.Background())
					out = &cancelAfterSample{w: &buf, cancel: cancel}
				} else {
					ctx, cancel = context.WithTimeout(context.Background(), 350*time.Millisecond)
				}
				defer cancel()
				res, err := runText(ctx, Config{Test: name, Tasks: 2, CoresPerSocket: 2, Duration: time.Duration(secs) * (100 * time.Millisecond), Warmup: -1,
					Interval: 100 * time.Millisecond, NoAffinity: true, TmpDir: tmp}, out)
				if secs == 0 {
					if err != nil {
						t.Fatalf("-s 0 ended by cancel: %v", err)
					}
					if res.Measured == 0 || !regexp.MustCompile(`\naverage:\d+:\d+:\d+\n$`).MatchString(buf.String()) {
						t.Fatalf("no average after cancel:\n%s", buf.String())
					}
				} else if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("err = %v, want the context's", err)
				}
				ents, _ := os.ReadDir(tmp)
				for _, e := range ents {
					t.Errorf("left behind: %s", e.Name())
				}
			})
		}
	}
}

// cancelAfterSample cancels once a measured sample line (a "min:" line
// after "measurement") has been written.
type cancelAfterSample struct {
	w         io.Writer
	cancel    context.CancelFunc
	measuring bool
}

func (c *cancelAfterSample) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if bytes.Contains(p, []byte("measurement")) {
		c.measuring = true
	} else if c.measuring && bytes.Contains(p, []byte("min:")) {
		c.cancel()
	}
	return n, err
}

// TestLock1RealRun is a real lock1 run with the suite's 5 warmup samples
// of 1 s and one measured second, 2 tasks.
func TestLock1RealRun(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: 7 s run (drop -short)")
	}
	var buf bytes.Buffer
	res, err := runText(context.Background(), Config{Test: "lock1", Tasks: 2, CoresPerSocket: 2, Duration: 1 * time.Second,
		NoAffinity: cputest.Online(t) < 2, TmpDir: t.TempDir()}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	checkWISOutput(t, buf.String(), "Separate file write lock/unlock", 5, 1)
	if res.Average.Total == 0 || res.Average.Total%2 != 0 && res.Average.Total < 2 {
		t.Errorf("average %+v", res.Average)
	}
	last := res.Samples[len(res.Samples)-1]
	if res.Average.Total != last.Total {
		t.Errorf("average of one measured sample %d != that sample %d", res.Average.Total, last.Total)
	}
}

func TestSweep(t *testing.T) {
	var out, prog bytes.Buffer
	h := numa.RuntestHeader{NumCores: 2, NumNodes: 1, CoresPerSocket: 2}
	res, err := Sweep(context.Background(), SweepConfig{
		Run:      Config{Test: "getppid1", CoresPerSocket: 2, Warmup: -1, Interval: 100 * time.Millisecond, TmpDir: t.TempDir(), SysRoot: cputest.FakeSys(t, "0")},
		Points:   []int{1, 4},
		Duration: 100 * time.Millisecond,
		Header:   h,
		Progress: &prog,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 4 || lines[0] != h.String() || lines[1] != SweepColumns || lines[3] != "4,-1,-1,-1" {
		t.Fatalf("output:\n%s", out.String())
	}
	// One 100 ms sample: whether the task got CPU 0 in it is the busy
	// machine's business; where its work counts is not.
	if m := regexp.MustCompile(`^1,(\d+),(\d+),0$`).FindStringSubmatch(lines[2]); m == nil || m[1] != m[2] {
		t.Fatalf("row %q: one task on CPU 0 of a 2-core socket is all fast", lines[2])
	}
	if res.Rows[1].Error == "" || !strings.Contains(prog.String(), "point 2 of 2") {
		t.Fatalf("failed point not reported: %+v\n%s", res.Rows[1], prog.String())
	}
}

// TestProcessesMode runs tests in processes mode (the test binary is
// re-executed as each task): the lines have the same shape, the tasks did
// work, their CPU time was collected, and the temp directory is empty.
func TestProcessesMode(t *testing.T) {
	for _, name := range []string{"lock1", "open1", "brk1", "signal1", "context_switch1"} {
		t.Run(name, func(t *testing.T) {
			tmp := t.TempDir()
			var buf bytes.Buffer
			tc, _ := Lookup(name)
			res, err := runText(context.Background(), Config{Test: name, Tasks: 2, CoresPerSocket: 2, Duration: 1 * 200 * time.Millisecond, Warmup: -1,
				Interval: 200 * time.Millisecond, NoAffinity: cputest.Online(t) < 2, Processes: true, TmpDir: tmp}, &buf)
			if err != nil {
				t.Fatal(err)
			}
			checkWISOutput(t, buf.String(), tc.Description, 0, 1)
			for i := range res.TaskOps {
				if res.TaskOps[i] == 0 || res.TaskCPU[i] <= 0 {
					t.Errorf("task %d: %d ops, %f CPU seconds", i, res.TaskOps[i], res.TaskCPU[i])
				}
			}
			ents, _ := os.ReadDir(tmp)
			for _, e := range ents {
				t.Errorf("left behind: %s", e.Name())
			}
		})
	}
}

// TestProcessesModeCancel: a processes-mode run cancelled mid-way
// leaves no task process and no temp file behind.
func TestProcessesModeCancel(t *testing.T) {
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	// 50 samples of 100 ms: the run cannot end by itself before the
	// deadline (with 5 it raced the deadline on a busy machine).
	_, err := runText(ctx, Config{Test: "open1", Tasks: 2, CoresPerSocket: 2, Duration: 50 * 100 * time.Millisecond, Warmup: -1,
		Interval: 100 * time.Millisecond, NoAffinity: true, Processes: true, TmpDir: tmp}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's", err)
	}
	if kids := childPids(t); len(kids) != 0 {
		t.Errorf("task processes left: %v", kids)
	}
	ents, _ := os.ReadDir(tmp)
	for _, e := range ents {
		t.Errorf("left behind: %s", e.Name())
	}
}

// childPids lists this process's children (/proc/self/task/*/children).
func childPids(t *testing.T) []string {
	files, _ := filepath.Glob("/proc/self/task/*/children")
	var pids []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pids = append(pids, strings.Fields(string(b))...)
	}
	return pids
}

// TestWISTasksBound: -t beyond TasksPerCPU per CPU is refused naming the
// limit, before the run's temp directory exists (issue 11 item 10).
func TestWISTasksBound(t *testing.T) {
	tmp := t.TempDir()
	n := workloads.MaxTasks() + 1
	_, err := runText(context.Background(), Config{Test: "getppid1", Tasks: n, CoresPerSocket: 1, NoAffinity: true,
		Duration: 1 * 10 * time.Millisecond, Warmup: -1, Interval: 10 * time.Millisecond, TmpDir: tmp}, nil)
	if err == nil || !strings.Contains(err.Error(), "exceed the limit of") {
		t.Fatalf("-t %d --no-affinity: %v, want the task limit", n, err)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Fatalf("left %v in --tmpdir", ents)
	}
}

func TestWISLinesGolden(t *testing.T) {
	var buf bytes.Buffer
	l := lines{w: &buf}
	l.done()
	l.testcase("Separate file write lock/unlock")
	l.warmup()
	l.sample(workloads.Sample{Min: 10, Max: 20, Total: 30, Fast: 20, Slow: 10})
	l.measurement()
	l.sample(workloads.Sample{Min: 0, Max: 18446744073709551615, Total: 18446744073709551615, Fast: 18446744073709551615, Slow: 0})
	(&Result{Average: workloads.Sample{Total: 7, Fast: 4, Slow: 3}}).WriteText(&buf)
	want := "done\n" +
		"testcase:Separate file write lock/unlock\n" +
		"warmup\n" +
		"min:10 max:20 total:30 fast:20 slow:10\n" +
		"measurement\n" +
		"min:0 max:18446744073709551615 total:18446744073709551615 fast:18446744073709551615 slow:0\n" +
		"average:7:4:3\n"
	if buf.String() != want {
		t.Fatalf("got\n%q\nwant\n%q", buf.String(), want)
	}
}

func TestSweepLinesGolden(t *testing.T) {
	h := numa.RuntestHeader{NumCores: 224, NumNodes: 8, CoresPerSocket: 28}
	if got, want := h.String(), "(num_cores, num_nodes, cores_per_socket) = (224, 8, 28)"; got != want {
		t.Fatalf("header %q, want %q", got, want)
	}
	for _, tc := range []struct {
		row  SweepRow
		want string
	}{
		{SweepRow{Cores: 1, Total: 2200000, Fast: 2200000, Slow: 0}, "1,2200000,2200000,0"},
		{SweepRow{Cores: 56, Total: -1, Fast: -1, Slow: -1}, "56,-1,-1,-1"},
	} {
		if got := FormatSweepRow(tc.row); got != tc.want {
			t.Errorf("row %q, want %q", got, tc.want)
		}
	}
	if SweepColumns != "# core,total,fast,slow" {
		t.Fatal("columns line changed")
	}
}
