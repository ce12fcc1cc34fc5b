package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPlotCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "lock1.svg")
	// Flags after the files, as a shell user writes them.
	stdout, stderr, code := vmTestRun(t, context.Background(), "plot",
		"../../plot/testdata/artifact/lock1-stock.txt", "../../plot/testdata/syncord/lock1.sweep",
		"-o", out, "--title", "lock1", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var fig struct {
		Output string `json:"output"`
		Series []struct {
			Label string `json:"label"`
		} `json:"series"`
	}
	if err := json.Unmarshal([]byte(stdout), &fig); err != nil {
		t.Fatalf("--json: %v: %q", err, stdout)
	}
	if fig.Output != out || len(fig.Series) != 2 || fig.Series[0].Label != "lock1-stock" || fig.Series[1].Label != "lock1" {
		t.Errorf("figure %+v", fig)
	}
	if b, err := os.ReadFile(out); err != nil || !strings.Contains(string(b), ">lock1-stock</text>") {
		t.Errorf("%s: %v, no legend entry", out, err)
	}
}

func TestPlotRefuses(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "notes.txt")
	os.WriteFile(junk, []byte("\nsome notes\n"), 0o644)
	out := filepath.Join(dir, "f.svg")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"plot", "-o", out, junk}, 1, junk + ":2: not a result file"},
		{[]string{"plot", "-o", out}, 2, "no result files"},
		{[]string{"plot", junk}, 2, "-o is required"},
		{[]string{"plot", "-o", filepath.Join(dir, "f.gif"), junk}, 2, "unknown figure type"},
		{[]string{"plot", "-o", out, "--metric", "speed", junk}, 2, `unknown metric "speed"`},
		{[]string{"plot", "-o", out, "--metric", "fairness", "../../plot/testdata/syncord/lock1.sweep"}, 1, "has no fairness values"},
	} {
		_, stderr, code := vmTestRun(t, context.Background(), tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d saying %q", tc.args, code, stderr, tc.code, tc.msg)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a refused plot wrote %s", out)
	}
}
