package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExperimentListPlan(t *testing.T) {
	out, errOut, code := vmTestRun(t, context.Background(), "experiment", "list")
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"fig5 ", "fig7 ", "fig9 ", "fig12 ", "fig13 ", "Fig. 13, lockstat overhead"} {
		if !strings.Contains(out, want) {
			t.Errorf("list has no %q:\n%s", want, out)
		}
	}
	// fig13 scaled to a 4x4 layout: points 1,2,4,8,12,16 for none and
	// lockstat, 3 repetitions; lockstat is built, installed, uninstalled.
	out, errOut, code = vmTestRun(t, context.Background(), "experiment", "plan", "fig13", "--sockets", "4", "--cores", "4", "--json")
	if code != 0 {
		t.Fatalf("plan: exit %d: %s", code, errOut)
	}
	var plan struct {
		Steps []struct {
			Step    string   `json:"step"`
			Policy  string   `json:"policy"`
			Point   int      `json:"point"`
			Command []string `json:"command"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatal(err)
	}
	var steps []string
	runs := 0
	for _, s := range plan.Steps {
		if s.Step == "run" {
			runs++
			continue
		}
		steps = append(steps, s.Step+" "+s.Policy)
	}
	if runs != 2*6*3 || strings.Join(steps, ",") != "boot ,build lockstat,install lockstat,uninstall lockstat" {
		t.Errorf("plan: %d runs, steps %v", runs, steps)
	}
	out, _, code = vmTestRun(t, context.Background(), "experiment", "plan", "fig13")
	if code != 0 || !strings.Contains(out, "fig13: 18 runs in 2 cells on a 2x2 VM") {
		t.Errorf("plan table: exit %d\n%s", code, out)
	}
}

func TestExperimentRefuses(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[[kernel]]\npath = \"debian\"\n[[benchmark]]\ndriver = \"will-it-scale\"\ntest = \"lock1\"\nrepeat = 3\n"), 0o644)
	notStatic := filepath.Join(dir, "syncord")
	os.WriteFile(notStatic, []byte("#!/bin/sh\n"), 0o755)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"experiment"}, 2, "list|plan|run"},
		{[]string{"experiment", "fly"}, 2, `unknown subcommand "fly"`},
		{[]string{"experiment", "run", "fig13"}, 2, "--out DIR is required"},
		{[]string{"experiment", "plan"}, 2, "give one SPEC"},
		{[]string{"experiment", "plan", "fig99"}, 1, "no built-in spec of that name"},
		{[]string{"experiment", "plan", bad}, 1, "unknown key(s) benchmark.repeat"},
		{[]string{"experiment", "plan", "fig13", "--sockets", "-1"}, 2, "is not a VM"},
		{[]string{"experiment", "run", "fig13", "--out", filepath.Join(dir, "o"), "--syncord", notStatic}, 1, "guest binary"},
	} {
		_, stderr, code := vmTestRun(t, context.Background(), tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d saying %q", tc.args, code, stderr, tc.code, tc.msg)
		}
	}
}
