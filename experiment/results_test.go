package experiment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syncord/syncord/plot"
)

// fakeRun writes what the guest would have printed for r, as the runner
// does on success.
func fakeRun(t *testing.T, out string, r Run, total int) {
	t.Helper()
	var text string
	switch r.Cell.Bench.Driver {
	case "will-it-scale":
		text = fmt.Sprintf("(num_cores, num_nodes, cores_per_socket) = (4, 2, 2)\n# core,total,fast,slow\n%d,%d,%d,0\n", r.Point, total, total)
	case "fxmark":
		text = fmt.Sprintf("# ncpu secs works works/sec  fast_works/sec, slow_works/sec\n%d 1.0 %d.0 %d.0 %d.0 0.0 \n", r.Point, total, total, total)
	}
	p := RawPath(out, r)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestResultsDir(t *testing.T) {
	s := mustParse(t, strings.Replace(smallSpec, "duration = 1", "duration = 1\nrepetitions = 2", 1))
	out := t.TempDir()
	m, err := openManifest(out, s)
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{spec: s, o: Options{Out: out}, m: m}
	cells := s.Cells()
	// debian's lock1 cell complete with two repetitions; its MWRL cell
	// has one run of four; nothing else.
	for _, run := range cells[0].Runs() {
		fakeRun(t, out, run, 1000*run.Point*run.Rep)
	}
	fakeRun(t, out, cells[1].Runs()[0], 5)
	// A run whose output is cut short is not done.
	half := RawPath(out, cells[1].Runs()[1])
	os.WriteFile(half, []byte("# ncpu secs works works/sec\n"), 0o644)

	plan := s.Plan(func(run Run) bool { return Done(out, run) })
	done, runs := 0, 0
	for _, e := range plan {
		if e.Step == "run" {
			runs++
			if e.Done {
				done++
			}
		}
		if e.Step == "boot" && e.Kernel == "stock-syncord" && e.Done {
			t.Errorf("stock-syncord has runs left but its boot is marked done")
		}
	}
	if runs != 24 || done != 5 {
		t.Errorf("plan: %d of %d runs done, want 5 of 24", done, runs)
	}
	if err := r.writeCells(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(CSVPath(out, cells[1])); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an incomplete cell got a CSV")
	}
	b, err := os.ReadFile(CSVPath(out, cells[0]))
	if err != nil {
		t.Fatal(err)
	}
	want := plot.TidyHeader + "\n" +
		"debian,none,lock1,ops/s,1,1,1000,1000,0,\n" +
		"debian,none,lock1,ops/s,4,1,4000,4000,0,\n" +
		"debian,none,lock1,ops/s,1,2,2000,2000,0,\n" +
		"debian,none,lock1,ops/s,4,2,8000,8000,0,\n"
	if string(b) != want {
		t.Errorf("tidy CSV:\n%s\nwant:\n%s", b, want)
	}
	if len(r.m.Cells) != 1 || r.m.Cells[0].CSV != "cells/debian-none-lock1.csv" {
		t.Errorf("manifest cells %+v", r.m.Cells)
	}
	figs, err := DrawFigures(out, s)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(figs, " ") != "figures/lock1.svg figures/lock1.png figures/MWRL.svg figures/MWRL.png" {
		t.Errorf("figures %v", figs)
	}
	// The figure reads back as an experiment csv of the cell: median 1500
	// at 1 core with min 1000 and max 2000.
	ss, err := plot.ParseFile(CSVPath(out, cells[0]))
	if err != nil {
		t.Fatal(err)
	}
	f, err := plot.Build(ss, plot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p := f.Lines[0].Points[0]; p.Median != 1500 || p.Min != 1000 || p.Max != 2000 || p.N != 2 || f.Lines[0].Label != "debian no policy" {
		t.Errorf("folded %+v (%s)", p, f.Lines[0].Label)
	}
	svg, _ := os.ReadFile(filepath.Join(out, "figures", "lock1.svg"))
	if !strings.Contains(string(svg), ">debian no policy</text>") {
		t.Errorf("lock1.svg has no legend entry for the cell")
	}
	if err := m.write(out); err != nil {
		t.Fatal(err)
	}
	// The same spec reopens its dir; another spec is refused.
	if _, err := openManifest(out, s); err != nil {
		t.Errorf("reopen: %v", err)
	}
	other := mustParse(t, strings.Replace(smallSpec, "points = [1, 4]", "points = [1, 2]", 1))
	if _, err := openManifest(out, other); !errors.Is(err, errOtherSpec) {
		t.Errorf("another spec's dir: err = %v", err)
	}
	s.VM.Sockets = 4 // a layout override is another experiment too
	if _, err := openManifest(out, s); !errors.Is(err, errOtherSpec) {
		t.Errorf("another layout: err = %v", err)
	}
	junk := t.TempDir()
	os.WriteFile(filepath.Join(junk, "notes.txt"), nil, 0o644)
	if _, err := openManifest(junk, other); err == nil || !strings.Contains(err.Error(), "not a results dir") {
		t.Errorf("a dir of other files: err = %v", err)
	}
}
