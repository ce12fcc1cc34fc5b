package e2e

import (
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var (
	benchSampleRE = regexp.MustCompile(`^min:(\d+) max:(\d+) total:(\d+) fast:(\d+) slow:(\d+)$`)
	benchRowRE    = regexp.MustCompile(`^(\d+),(-?\d+),(-?\d+),(-?\d+)$`)
	fxDataRE      = regexp.MustCompile(`^(\d+) (\d+\.\d{6}) (\d+\.\d{6}) (\d+\.\d{6}) (\d+\.\d{6}) (\d+\.\d{6}) $`)
	// benchProgressRE is a status line bench fxmark and bench xdir run
	// write to stderr while they run (fxmark.ProgressLine,
	// xdir.ProgressLine).
	benchProgressRE = regexp.MustCompile(`(?m)^(?:fxmark: \S+ \d+/[\d.]+ s: \d+ works, \d+ works/s|xdir: \d+/[\d.]+ s: bullies \d+ renames \(\d+/s\), victims \d+ renames \(\d+/s\))\n`)
)

// withoutProgress removes the status lines of bench fxmark and bench xdir
// run from a guest command's output (vm.Run combines stdout and stderr;
// the report is on stdout, after them) and says how many there were.
func withoutProgress(out string) (string, int) {
	n := len(benchProgressRE.FindAllStringIndex(out, -1))
	return benchProgressRE.ReplaceAllString(out, ""), n
}

func atoiT(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBench boots the 2 sockets x 2 cores guest and runs the issue 3
// drivers there: will-it-scale lock1 and page_fault1 with 4 pinned tasks,
// and lock1 with 4 task processes (every sample line has fast+slow == total, the fast half being CPUs 0
// and 2), runtest.py sweeps of both over the topology's points 1,2,4, and
// FxMark MWRL with 1 and 4 cores, the 4-core one on a private tmpfs that
// --tmpfs mounts and unmounts.
func TestBench(t *testing.T) {
	skipUnlessEnabled(t)
	// page_fault1 with 4 tasks maps 4 x 128 MiB at once.
	vm := Boot(t, Config{Sockets: 2, Cores: 2, MemPerNodeMB: 768})

	for _, test := range []string{"lock1", "page_fault1", "lock1 --processes"} {
		t.Run(test, func(t *testing.T) {
			out := vm.MustRun(t, "syncord bench will-it-scale "+test+" -t 4 -s 2")
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) != 3+6+1+2+1 || lines[0] != "done" || !strings.HasPrefix(lines[1], "testcase:") || lines[2] != "warmup" || lines[9] != "measurement" {
				t.Fatalf("output:\n%s", out)
			}
			var fastSeen, slowSeen bool
			for i, l := range lines {
				if i < 3 || i == 9 || i == len(lines)-1 {
					continue
				}
				m := benchSampleRE.FindStringSubmatch(l)
				if m == nil {
					t.Fatalf("line %d %q is not a sample line:\n%s", i, l, out)
				}
				total, fast, slow := atoiT(t, m[3]), atoiT(t, m[4]), atoiT(t, m[5])
				if fast+slow != total {
					t.Errorf("line %d %q: fast+slow != total", i, l)
				}
				fastSeen = fastSeen || fast > 0
				slowSeen = slowSeen || slow > 0
			}
			avg := regexp.MustCompile(`^average:(\d+):(\d+):(\d+)$`).FindStringSubmatch(lines[len(lines)-1])
			if avg == nil || atoiT(t, avg[1]) == 0 {
				t.Fatalf("average line %q", lines[len(lines)-1])
			}
			if !fastSeen || !slowSeen {
				t.Errorf("4 tasks on 2 sockets of 2 cores: want work on both fast and slow CPUs:\n%s", out)
			}
		})
	}

	for _, test := range []string{"lock1", "page_fault1"} {
		t.Run("sweep "+test, func(t *testing.T) {
			out := vm.MustRun(t, "syncord bench sweep will-it-scale "+test+" --duration 1 2>/tmp/progress")
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			want := []string{"(num_cores, num_nodes, cores_per_socket) = (4, 2, 2)", "# core,total,fast,slow"}
			if len(lines) != 5 || lines[0] != want[0] || lines[1] != want[1] {
				t.Fatalf("sweep output:\n%s", out)
			}
			for i, cores := range []int64{1, 2, 4} {
				m := benchRowRE.FindStringSubmatch(lines[2+i])
				if m == nil || atoiT(t, m[1]) != cores {
					t.Fatalf("row %q, want core %d", lines[2+i], cores)
				}
				total, fast, slow := atoiT(t, m[2]), atoiT(t, m[3]), atoiT(t, m[4])
				if total <= 0 || fast+slow != total {
					t.Errorf("row %q: want total > 0 and fast+slow == total", lines[2+i])
				}
				if cores == 1 && slow != 0 {
					t.Errorf("row %q: one task runs on fast CPU 0", lines[2+i])
				}
			}
			prog := vm.MustRun(t, "cat /tmp/progress")
			if !strings.Contains(prog, "point 3 of 3 (4 tasks)") {
				t.Errorf("progress on stderr:\n%s", prog)
			}
		})
	}

	t.Run("fxmark MWRL", func(t *testing.T) {
		for _, tc := range []struct {
			ncore int
			cmd   string
		}{
			{1, "mkdir -p /tmp/fx1 && syncord bench fxmark --type MWRL --ncore 1 --duration 2 --root /tmp/fx1"},
			{4, "mkdir -p /mnt/fx && syncord bench fxmark --type MWRL --ncore 4 --duration 2 --root /mnt/fx --tmpfs"},
		} {
			out, progress := withoutProgress(vm.MustRun(t, tc.cmd))
			// One core on 4 vCPUs for 2 s: its status lines come (the
			// 4-core run may starve them on a slow host).
			if tc.ncore == 1 && progress == 0 {
				t.Errorf("no status line on stderr in a 2 s run:\n%s", out)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) != 2 || lines[0] != "# ncpu secs works works/sec  fast_works/sec, slow_works/sec" {
				t.Fatalf("fxmark output:\n%q", out)
			}
			m := fxDataRE.FindStringSubmatch(lines[1])
			if m == nil || atoiT(t, m[1]) != int64(tc.ncore) {
				t.Fatalf("data line %q", lines[1])
			}
			f := func(i int) float64 { v, _ := strconv.ParseFloat(m[i], 64); return v }
			works, total, fast, slow := f(3), f(4), f(5), f(6)
			if works <= 0 || total <= 0 || math.Abs(fast+slow-total) > 1e-5*total+1e-5 {
				t.Errorf("data line %q: want works > 0 and fast+slow == works/sec", lines[1])
			}
			if (tc.ncore == 1) != (slow == 0) {
				t.Errorf("data line %q: slow works only with 4 cores", lines[1])
			}
		}
		if out := vm.MustRun(t, "ls -A /tmp/fx1; grep ' /mnt/fx ' /proc/mounts; true"); strings.TrimSpace(out) != "" {
			t.Errorf("left behind after fxmark: %q", out)
		}
	})

	// The later FxMark types on 4 vCPUs: a shared-file one, a _bg one whose
	// background worker stays out of the report, and --directio on the
	// guest's RAM file system, which has no direct I/O in 6.1.
	t.Run("fxmark DWOM MRPM_bg directio", func(t *testing.T) {
		// Guest output mixes stdout and stderr: the status lines (one a
		// second; a 1 s run may or may not end with one) go first.
		out, _ := withoutProgress(vm.MustRun(t, "mkdir -p /tmp/fx2 && syncord bench fxmark --type DWOM --ncore 4 --duration 1 --root /tmp/fx2"))
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if m := fxDataRE.FindStringSubmatch(lines[len(lines)-1]); len(lines) != 2 || m == nil || m[1] != "4" || m[3] == "0.000000" {
			t.Errorf("DWOM report:\n%s", out)
		}
		var res struct {
			NCPU    int
			Workers []struct {
				BG    bool `json:"background"`
				Works float64
			}
		}
		out, _ = withoutProgress(vm.MustRun(t, "syncord bench fxmark --type MRPM_bg --ncore 4 --nbg 1 --duration 1 --root /tmp/fx2 --json"))
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("MRPM_bg --json: %v\n%s", err, out)
		}
		if res.NCPU != 3 || len(res.Workers) != 4 || !res.Workers[3].BG || res.Workers[3].Works <= 0 || res.Workers[0].Works <= 0 {
			t.Errorf("MRPM_bg with 1 of 4 in the background: %s", out)
		}
		out, code := vm.Run(t, "syncord bench fxmark --type DWSL --ncore 2 --duration 1 --root /tmp/fx2 --directio 2>&1")
		out, _ = withoutProgress(out)
		switch {
		case code != 0 && strings.Contains(out, "does not do direct I/O"):
		case code == 0 && strings.HasPrefix(out, "# ncpu"):
			t.Logf("the guest's /tmp does direct I/O:\n%s", out)
		default:
			t.Errorf("DWSL --directio on /tmp exited %d:\n%s", code, out)
		}
		if out := vm.MustRun(t, "ls -A /tmp/fx2"); strings.TrimSpace(out) != "" {
			t.Errorf("left behind after fxmark: %q", out)
		}
	})
}
