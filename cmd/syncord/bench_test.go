package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/syncord/syncord/workloads"
	"github.com/syncord/syncord/workloads/xdir"
)

func runBenchCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), &Env{Stdout: &out, Stderr: &errb}, append([]string{"bench"}, args...))
	return out.String(), errb.String(), code
}

func TestBenchDispatch(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		{"no driver", nil, 2, "", "will-it-scale"},
		{"help", []string{"--help"}, 0, "fxmark", ""},
		{"unknown driver", []string{"nope"}, 2, "", `unknown bench driver "nope"`},
		{"list", []string{"will-it-scale", "--list"}, 0, "lock1            Separate file write lock/unlock\n", ""},
		{"no test", []string{"will-it-scale", "-t", "1"}, 2, "", "Usage: syncord bench will-it-scale"},
		// "--" ends the flags: "-t" and "0" after it are arguments, three
		// of them is a usage error (flags after "--" once ran the test).
		{"flags end at --", []string{"will-it-scale", "--", "lock1", "-t", "0"}, 2, "", "Usage: syncord bench will-it-scale"},
		{"xdir unknown subcommand", []string{"xdir", "fly"}, 2, "", `bench xdir: unknown subcommand "fly" (prepare, run;`},
		{"unknown test", []string{"will-it-scale", "nope", "-n", "1"}, 1, "", `unknown will-it-scale test "nope"`},
		{"zero tasks", []string{"will-it-scale", "lock1", "-t", "0", "-n", "1"}, 1, "", "-t must be > 0"},
		{"negative cps", []string{"will-it-scale", "lock1", "-n", "-1"}, 1, "", "-n (cores per socket) must be > 0"},
		{"zero cps", []string{"will-it-scale", "lock1", "-n", "0"}, 1, "", "-n (cores per socket) must be > 0"},
		{"sweep zero cps", []string{"sweep", "will-it-scale", "lock1", "-n", "0"}, 1, "", "-n (cores per socket) must be > 0"},
		{"offline CPU", []string{"will-it-scale", "lock1", "-t", "2", "-n", "100000"}, 1, "", "does not exist or is offline"},
		{"sweep needs will-it-scale", []string{"sweep", "lock1"}, 2, "", "Usage: syncord bench sweep"},
		{"sweep bad points", []string{"sweep", "will-it-scale", "lock1", "--points", "1,x"}, 1, "", "not a positive core count"},
		{"fxmark no root", []string{"fxmark", "--type", "MWRL"}, 2, "", "Usage: syncord bench fxmark"},
		{"fxmark missing root", []string{"fxmark", "--type", "MWRL", "--root", "/nonexistent/x", "-n", "1"}, 1, "", "must be an existing directory"},
		{"fxmark unknown type", []string{"fxmark", "--type", "XXXX", "--root", os.TempDir(), "-n", "1"}, 1, "", "unknown fxmark type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := runBenchCmd(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.inStdout) || !strings.Contains(errs, tc.inStderr) {
				t.Fatalf("code %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errs)
			}
		})
	}
}

func TestBenchFxMarkCLI(t *testing.T) {
	root := t.TempDir()
	// A single run: the report alone on stdout, status lines on stderr
	// (at least one in 2 s; how many depends on the machine's load).
	out, errs, code := runBenchCmd(t, "fxmark", "--type", "MWRL", "--ncore", "1", "--duration", "2", "--root", root, "-n", "2")
	if code != 0 {
		t.Fatalf("code %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 || lines[0] != "# ncpu secs works works/sec  fast_works/sec, slow_works/sec" || !strings.HasPrefix(lines[1], "1 ") {
		t.Fatalf("report:\n%s", out)
	}
	fxProgress := regexp.MustCompile(`^fxmark: MWRL \d+/2 s: \d+ works, \d+ works/s$`)
	if errs == "" || !allLinesMatch(errs, fxProgress) {
		t.Fatalf("stderr of a 2 s run: want status lines \"fxmark: MWRL E/2 s: N works, R works/s\" only, got:\n%s", errs)
	}
	out, errs, code = runBenchCmd(t, "fxmark", "--type", "MWRL", "--sweep", "--points", "1", "--duration", "1", "--root", root, "-n", "2", "--fs", "testfs")
	if code != 0 {
		t.Fatalf("sweep code %d: %s", code, errs)
	}
	if !strings.HasPrefix(out, "# mem:testfs:MWRL:bufferedio:*\n# core, total, fast, slow\n1 ") || !strings.Contains(errs, "# ncpu secs") {
		t.Fatalf("sweep stdout:\n%s\nstderr:\n%s", out, errs)
	}
	if strings.Contains(errs, "fxmark: MWRL ") {
		t.Fatalf("sweep stderr has a point's status lines (a sweep prints one line a point):\n%s", errs)
	}
	// --directio names its I/O mode in the .dat header, and is refused,
	// with the types that have it, for one that does no data I/O.
	out, errs, code = runBenchCmd(t, "fxmark", "--type", "DWOL", "--directio", "--sweep", "--points", "1", "--duration", "1", "--root", root, "-n", "2", "--fs", "testfs")
	switch {
	case code == 0 && strings.HasPrefix(out, "# mem:testfs:DWOL:directio:*\n"):
	case code != 0 && strings.Contains(errs, "does not do direct I/O"):
		t.Logf("the temp dir's file system has no direct I/O: %s", errs)
	default:
		t.Fatalf("DWOL --directio sweep: code %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if _, errs, code = runBenchCmd(t, "fxmark", "--type", "MWRL", "--directio", "--duration", "1", "--root", root, "-n", "2"); code == 0 || !strings.Contains(errs, "MWRL does no file data I/O") {
		t.Fatalf("MWRL --directio: code %d, %s", code, errs)
	}
}

// allLinesMatch reports whether every line of s matches re.
func allLinesMatch(s string, re *regexp.Regexp) bool {
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if !re.MatchString(l) {
			return false
		}
	}
	return true
}

// TestBenchXDirRunCLI runs one bully and one victim for 2 s: the
// artifact's lines alone on stdout, status lines on stderr.
func TestBenchXDirRunCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: 2 s run (drop -short)")
	}
	if c := workloads.UsableCPUs(); c < 2 {
		t.Skipf("skipping: needs 2 CPUs for 2 pinned tasks, have %d", c)
	}
	p, err := xdir.Prepare("/proc", t.TempDir(), 20)
	if err != nil {
		t.Fatal(err)
	}
	out, errs, code := runBenchCmd(t, "xdir", "run", p.Src, p.DstDirty, p.Dst, "2", "1", "1", "--hold", "duration")
	if code != 0 {
		t.Fatalf("code %d: %s", code, errs)
	}
	artifact := regexp.MustCompile(`\A\[b\] task 0: lock_hold=\d+, runs=\d+\n\[v\] task 1: lock_hold=\d+, runs=\d+\nfairness=\d+\.\d{6}\nOps/sec: \d+\.\d{6}\nBully  Ops/sec: \d+\.\d{6}\nVictim Ops/sec: \d+\.\d{6}\n\z`)
	if !artifact.MatchString(out) {
		t.Fatalf("stdout is not the artifact's lines:\n%s", out)
	}
	xdirProgress := regexp.MustCompile(`^xdir: \d+/2 s: bullies \d+ renames \(\d+/s\), victims \d+ renames \(\d+/s\)$`)
	if errs == "" || !allLinesMatch(errs, xdirProgress) {
		t.Fatalf("stderr of a 2 s run: want status lines \"xdir: E/2 s: bullies B renames (R/s), victims V renames (R/s)\" only, got:\n%s", errs)
	}
}

func TestBenchWillItScaleJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: 6 s run (drop -short)")
	}
	out, errs, code := runBenchCmd(t, "will-it-scale", "getppid1", "-t", "1", "-s", "1", "-n", "1", "--json", "--tmpdir", t.TempDir())
	if code != 0 {
		t.Fatalf("code %d: %s", code, errs)
	}
	var res struct {
		Test     string                               `json:"test"`
		Samples  []struct{ Total, Fast, Slow uint64 } `json:"samples"`
		Measured int                                  `json:"measured_samples"`
		Average  struct{ Total uint64 }               `json:"average"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.Test != "getppid1" || len(res.Samples) != 7 || res.Measured != 1 || res.Average.Total == 0 {
		t.Fatalf("%+v", res)
	}
}
