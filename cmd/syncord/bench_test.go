package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
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
	out, errs, code := runBenchCmd(t, "fxmark", "--type", "MWRL", "--ncore", "1", "--duration", "1", "--root", root, "-n", "2")
	if code != 0 {
		t.Fatalf("code %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 || lines[0] != "# ncpu secs works works/sec  fast_works/sec, slow_works/sec" || !strings.HasPrefix(lines[1], "1 ") {
		t.Fatalf("report:\n%s", out)
	}
	out, errs, code = runBenchCmd(t, "fxmark", "--type", "MWRL", "--sweep", "--points", "1", "--duration", "1", "--root", root, "-n", "2", "--fs", "testfs")
	if code != 0 {
		t.Fatalf("sweep code %d: %s", code, errs)
	}
	if !strings.HasPrefix(out, "# mem:testfs:MWRL:bufferedio:*\n# core, total, fast, slow\n1 ") || !strings.Contains(errs, "# ncpu secs") {
		t.Fatalf("sweep stdout:\n%s\nstderr:\n%s", out, errs)
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
