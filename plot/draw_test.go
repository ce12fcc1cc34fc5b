package plot

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden SVG structures in testdata/golden")

// svgStructure is what a golden test compares: every text in drawing
// order (title, axis labels, tick labels, which give the axis ranges, and
// the legend), the number of series (distinct stroke colours of the 1.5pt
// lines) and the number of error bar strokes (1pt, which SVG leaves implicit, in a series colour).
type svgStructure struct {
	Texts     []string `json:"texts"`
	Series    int      `json:"series"`
	ErrorBars int      `json:"error_bar_strokes"`
}

var reStroke = regexp.MustCompile(`stroke:(#[0-9A-Fa-f]{6})(?:;stroke-width:([0-9.]+))?`)

func structureOf(t *testing.T, svg []byte) svgStructure {
	t.Helper()
	var st svgStructure
	colors := map[string]bool{}
	var paths []string
	d := xml.NewDecoder(bytes.NewReader(svg))
	inText := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the figure is not well-formed SVG: %v", err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			inText = e.Name.Local == "text"
			if e.Name.Local == "path" {
				for _, a := range e.Attr {
					if a.Name.Local == "style" {
						paths = append(paths, a.Value)
					}
				}
			}
		case xml.CharData:
			if inText {
				st.Texts = append(st.Texts, string(e))
			}
		case xml.EndElement:
			inText = false
		}
	}
	for _, p := range paths {
		if m := reStroke.FindStringSubmatch(p); m != nil && m[2] == "1.5" && m[1] != "#000000" {
			colors[m[1]] = true
		}
	}
	for _, p := range paths {
		if m := reStroke.FindStringSubmatch(p); m != nil && (m[2] == "1" || m[2] == "") && colors[m[1]] {
			st.ErrorBars++
		}
	}
	st.Series = len(colors)
	return st
}

func TestDrawGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		files  []string
		opt    Options
		series int
		bars   bool
		logX   bool
	}{
		{"lock1-artifact", []string{"artifact/lock1-stock.txt", "artifact/lock1-numa-grouping.txt"}, Options{Title: "lock1 (8x28)"}, 2, false, false},
		{"lock1-reps", []string{"golden/lock1-reps.sweep"}, Options{Title: "lock1, 3 repetitions"}, 1, true, true},
		{"mwrl-fast", []string{"artifact/mem-tmpfs-MWRL-bufferedio.dat", "syncord/mwrl.dat"}, Options{Metric: Fast}, 2, false, true},
		{"xdir-fairness", []string{"artifact/xdir-summary.txt"}, Options{Metric: Fairness, Title: "xdir"}, 1, false, true},
		{"metis", []string{"artifact/metis-parser.txt", "syncord/metis.out"}, Options{Title: "metis wrmem"}, 2, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var series []*Series
			for _, f := range tc.files {
				s, err := ParseFile(filepath.Join("testdata", f))
				if err != nil {
					t.Fatal(err)
				}
				series = append(series, s...)
			}
			var buf bytes.Buffer
			fig, err := Draw(&buf, "svg", series, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if fig.LogX != tc.logX {
				t.Errorf("log2 x axis = %v, want %v", fig.LogX, tc.logX)
			}
			got := structureOf(t, buf.Bytes())
			if got.Series != tc.series || len(fig.Lines) != tc.series {
				t.Errorf("%d series drawn (%d built), want %d", got.Series, len(fig.Lines), tc.series)
			}
			if (got.ErrorBars > 0) != tc.bars {
				t.Errorf("%d error bar strokes, want some: %v", got.ErrorBars, tc.bars)
			}
			for _, want := range append([]string{fig.XLabel, fig.YLabel}, labels(fig)...) {
				if !contains(got.Texts, want) {
					t.Errorf("no text %q in the figure (texts %q)", want, got.Texts)
				}
			}
			if tc.opt.Title != "" && (len(got.Texts) == 0 || got.Texts[0] != tc.opt.Title) {
				t.Errorf("first text %q, want the title %q", got.Texts, tc.opt.Title)
			}
			golden := filepath.Join("testdata", "golden", tc.name+".json")
			if *update {
				b, _ := json.MarshalIndent(got, "", "  ")
				if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			b, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./plot -run TestDrawGolden -update)", err)
			}
			var want svgStructure
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("figure structure differs from %s:\n got %+v\nwant %+v", golden, got, want)
			}
		})
	}
}

func labels(f *Figure) []string {
	var l []string
	for _, s := range f.Lines {
		l = append(l, s.Label)
	}
	return l
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestBuildAxes(t *testing.T) {
	ss, err := ParseFile("testdata/artifact/lock1-stock.txt")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Build(ss, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// 1..224 with 28, 56, ... is not all powers of two: a linear axis.
	if f.LogX || f.XMin != 1 || f.XMax != 224 || f.YMin != 0 {
		t.Errorf("axes %+v", f)
	}
	if f.YLabel != "throughput (M ops/s)" || f.YMax != 1.850234 {
		t.Errorf("y axis %q up to %v, want M ops/s up to 1.850234", f.YLabel, f.YMax)
	}
}

func TestBuildRefuses(t *testing.T) {
	sweep, _ := ParseFile("testdata/artifact/lock1-stock.txt")
	metis, _ := ParseFile("testdata/artifact/metis-parser.txt")
	if _, err := Build(append(sweep, metis...), Options{}); err == nil || !strings.Contains(err.Error(), "one y axis") {
		t.Errorf("throughput and runtime on one axis: err = %v", err)
	}
	if _, err := Build(metis, Options{Metric: Fast}); err == nil || !strings.Contains(err.Error(), "has no fast values (it has total)") {
		t.Errorf("metis has no fast metric: err = %v", err)
	}
	if _, err := Build(nil, Options{}); err == nil {
		t.Errorf("no series: no error")
	}
}

func TestWriteFileFormats(t *testing.T) {
	ss, _ := ParseFile("testdata/syncord/lock1.sweep")
	dir := t.TempDir()
	for _, ext := range []string{"svg", "png", "pdf"} {
		p := filepath.Join(dir, "f."+ext)
		if _, err := WriteFile(p, ss, Options{}); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		magic := map[string]string{"svg": "<?xml", "png": "\x89PNG", "pdf": "%PDF"}[ext]
		if !bytes.HasPrefix(b, []byte(magic)) {
			t.Errorf("%s starts %q, want %q", p, b[:min(8, len(b))], magic)
		}
	}
	if _, err := WriteFile(filepath.Join(dir, "f.gif"), ss, Options{}); err == nil {
		t.Errorf(".gif accepted")
	}
	if _, err := os.Stat(filepath.Join(dir, "f.gif")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused figure left a file")
	}
}

// BenchmarkDraw100 measures parsing nothing and drawing 100 series of 13
// points with 3 repetitions each to SVG: the plot time for 100 series.
func BenchmarkDraw100(b *testing.B) {
	var series []*Series
	for i := 0; i < 100; i++ {
		s := &Series{Label: fmt.Sprintf("s%d", i), Kind: KindSweep, XName: "cores", Quantity: "throughput", Unit: "ops/s"}
		for _, x := range []float64{1, 2, 4, 8, 16, 28, 56, 84, 112, 140, 168, 196, 224} {
			for r := 0; r < 3; r++ {
				s.Samples = append(s.Samples, Sample{X: x, Values: map[Metric]float64{Total: float64(i*1000) + x*float64(r+1)}})
			}
		}
		series = append(series, s)
	}
	for _, format := range []string{"svg", "png"} {
		b.Run(format, func(b *testing.B) {
			for b.Loop() {
				if _, err := Draw(io.Discard, format, series, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
