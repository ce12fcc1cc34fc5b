package plot

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Options chooses what a figure shows. The zero value draws the total
// metric untitled at the default size.
type Options struct {
	Title  string
	Metric Metric // Total when empty
	// Width and Height of the figure; 16 cm x 10 cm when zero.
	Width, Height vg.Length
}

// Point is one x of a series after repetitions are folded: the median and
// the range of N samples.
type Point struct {
	X      float64 `json:"x"`
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

// Line is one drawn series.
type Line struct {
	Label  string  `json:"label"`
	Points []Point `json:"points"`
}

// Figure is what Draw drew: the series and the axes, for --json and for
// tests.
type Figure struct {
	Title  string  `json:"title,omitempty"`
	XLabel string  `json:"x_label"`
	YLabel string  `json:"y_label"`
	LogX   bool    `json:"log2_x"`
	XMin   float64 `json:"x_min"`
	XMax   float64 `json:"x_max"`
	YMin   float64 `json:"y_min"`
	YMax   float64 `json:"y_max"`
	Lines  []Line  `json:"series"`
}

// Fold folds s's samples of metric m into one point per x (ascending):
// the median with min and max. NaN values (fairness of a run without
// victims) are left out; a series without the metric is an error.
func Fold(s *Series, m Metric) ([]Point, error) {
	byX := map[float64][]float64{}
	has := false
	for _, smp := range s.Samples {
		v, ok := smp.Values[m]
		if !ok {
			continue
		}
		has = true
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		byX[smp.X] = append(byX[smp.X], v)
	}
	if !has {
		return nil, fmt.Errorf("%s (%s) has no %s values (it has %s)", s.Label, s.Kind, m, strings.Join(metricsOf(s), ", "))
	}
	if len(byX) == 0 {
		return nil, fmt.Errorf("%s (%s): every %s value is NaN", s.Label, s.Kind, m)
	}
	var pts []Point
	for x, vs := range byX {
		sort.Float64s(vs)
		pts = append(pts, Point{X: x, Median: median(vs), Min: vs[0], Max: vs[len(vs)-1], N: len(vs)})
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].X < pts[j].X })
	return pts, nil
}

// median of sorted values.
func median(vs []float64) float64 {
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}

func metricsOf(s *Series) []string {
	seen := map[Metric]bool{}
	for _, smp := range s.Samples {
		for m := range smp.Values {
			seen[m] = true
		}
	}
	var out []string
	for _, m := range Metrics {
		if seen[m] {
			out = append(out, string(m))
		}
	}
	return out
}

// yLabel names the y axis of metric m for s.
func yLabel(s *Series, m Metric) string {
	if m == Fairness {
		return "fairness (1 = fair)"
	}
	q := s.Quantity
	switch {
	case m == Fast && (s.Kind == KindXDir || s.Kind == KindXDirSummary):
		q = "bully " + q
	case m == Slow && (s.Kind == KindXDir || s.Kind == KindXDirSummary):
		q = "victim " + q
	case m == Fast:
		q = "fast-core " + q
	case m == Slow:
		q = "slow-core " + q
	}
	return fmt.Sprintf("%s (%s)", q, s.Unit)
}

// Build folds every series and checks that they share one axis: the same
// unit and the same x.
func Build(series []*Series, o Options) (*Figure, error) {
	if len(series) == 0 {
		return nil, fmt.Errorf("plot: no series")
	}
	m := o.Metric
	if m == "" {
		m = Total
	}
	f := &Figure{Title: o.Title, XLabel: series[0].XName, YLabel: yLabel(series[0], m)}
	for _, s := range series {
		if y := yLabel(s, m); y != f.YLabel {
			return nil, fmt.Errorf("plot: %s is %s but %s is %s: one figure has one y axis (plot them separately)", series[0].Label, f.YLabel, s.Label, y)
		}
		if s.XName != f.XLabel && !(s.XName == "threads" || f.XLabel == "threads") {
			return nil, fmt.Errorf("plot: %s counts %s but %s counts %s", series[0].Label, f.XLabel, s.Label, s.XName)
		}
		pts, err := Fold(s, m)
		if err != nil {
			return nil, fmt.Errorf("plot: %w", err)
		}
		f.Lines = append(f.Lines, Line{Label: s.Label, Points: pts})
	}
	scaleUnits(f, series[0], m)
	f.XMin, f.XMax = math.Inf(1), math.Inf(-1)
	f.YMin, f.YMax = 0, math.Inf(-1)
	xs := map[float64]bool{}
	for _, l := range f.Lines {
		for _, p := range l.Points {
			xs[p.X] = true
			f.XMin, f.XMax = min(f.XMin, p.X), max(f.XMax, p.X)
			f.YMin, f.YMax = min(f.YMin, p.Min), max(f.YMax, p.Max)
		}
	}
	if f.YMax <= f.YMin {
		f.YMax = f.YMin + 1
	}
	f.LogX = len(xs) >= 2
	for x := range xs {
		if !isPow2(x) {
			f.LogX = false
		}
	}
	return f, nil
}

// scaleUnits shows large throughputs in K or M units, as the paper does.
func scaleUnits(f *Figure, s *Series, m Metric) {
	if m == Fairness || s.Quantity != "throughput" || strings.HasPrefix(s.Unit, "M ") || strings.HasPrefix(s.Unit, "K ") {
		return
	}
	top := 0.0
	for _, l := range f.Lines {
		for _, p := range l.Points {
			top = max(top, math.Abs(p.Max))
		}
	}
	div, prefix := 1.0, ""
	switch {
	case top >= 1e6:
		div, prefix = 1e6, "M "
	case top >= 1e4:
		div, prefix = 1e3, "K "
	default:
		return
	}
	for i := range f.Lines {
		for j := range f.Lines[i].Points {
			p := &f.Lines[i].Points[j]
			p.Median, p.Min, p.Max = p.Median/div, p.Min/div, p.Max/div
		}
	}
	f.YLabel = strings.Replace(f.YLabel, "("+s.Unit+")", "("+prefix+s.Unit+")", 1)
}

func isPow2(x float64) bool {
	if x < 1 || x != math.Trunc(x) || x > 1<<40 {
		return false
	}
	n := int64(x)
	return n&(n-1) == 0
}

// log2Ticks labels every power of two in range.
type log2Ticks struct{}

func (log2Ticks) Ticks(lo, hi float64) []gplot.Tick {
	var ts []gplot.Tick
	for v := 1.0; v <= hi*1.0000001; v *= 2 {
		if v >= lo*0.9999999 {
			ts = append(ts, gplot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
		}
	}
	return ts
}

// intTicks is gonum's default ticks with fractional core counts dropped.
type intTicks struct{}

func (intTicks) Ticks(lo, hi float64) []gplot.Tick {
	var out []gplot.Tick
	for _, t := range (gplot.DefaultTicks{}).Ticks(lo, hi) {
		switch {
		case t.Label == "":
			out = append(out, t)
		case t.Value == math.Trunc(t.Value):
			t.Label = strconv.FormatFloat(t.Value, 'f', -1, 64)
			out = append(out, t)
		}
	}
	return out
}

// cleanTicks is gonum's default ticks with trailing zeros dropped from
// the labels ("25000.00" is "25000").
type cleanTicks struct{}

func (cleanTicks) Ticks(lo, hi float64) []gplot.Tick {
	ts := (gplot.DefaultTicks{}).Ticks(lo, hi)
	for i, t := range ts {
		if v, err := strconv.ParseFloat(t.Label, 64); err == nil && t.Label != "" {
			ts[i].Label = strconv.FormatFloat(v, 'f', -1, 64)
		}
	}
	return ts
}

// errPoints gives plotter.YErrorBars the median and its min/max.
type errPoints []Point

func (e errPoints) Len() int                    { return len(e) }
func (e errPoints) XY(i int) (float64, float64) { return e[i].X, e[i].Median }
func (e errPoints) YError(i int) (float64, float64) {
	return e[i].Median - e[i].Min, e[i].Max - e[i].Median
}

// Plot makes the gonum plot of f.
func (f *Figure) Plot() (*gplot.Plot, error) {
	p := gplot.New()
	p.Title.Text = f.Title
	p.X.Label.Text = f.XLabel
	p.Y.Label.Text = f.YLabel
	p.X.Tick.Marker = intTicks{}
	p.Y.Tick.Marker = cleanTicks{}
	if f.LogX {
		p.X.Scale = gplot.LogScale{}
		p.X.Tick.Marker = log2Ticks{}
	}
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.ThumbnailWidth = vg.Points(24)
	for i, l := range f.Lines {
		xys := make(plotter.XYs, len(l.Points))
		for j, pt := range l.Points {
			xys[j] = plotter.XY{X: pt.X, Y: pt.Median}
		}
		line, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", l.Label, err)
		}
		c := plotutil.Color(i)
		line.Color, line.Width = c, vg.Points(1.5)
		line.Dashes = plotutil.Dashes(i / len(plotutil.SoftColors))
		pts.Color, pts.Shape = c, plotutil.Shape(i)
		p.Add(line, pts)
		if slices.ContainsFunc(l.Points, func(p Point) bool { return p.N > 1 }) {
			eb, err := plotter.NewYErrorBars(errPoints(l.Points))
			if err != nil {
				return nil, fmt.Errorf("plot %s: %w", l.Label, err)
			}
			eb.Color, eb.LineStyle.Width = c, vg.Points(1)
			p.Add(eb)
		}
		p.Legend.Add(l.Label, line, pts)
	}
	p.X.Min, p.X.Max = f.XMin, f.XMax
	if f.XMin == f.XMax {
		p.X.Min, p.X.Max = f.XMin/2, f.XMax*2
		if f.XMin == 0 {
			p.X.Min, p.X.Max = -1, 1
		}
	}
	// Headroom above the data for the legend (top left), one line per
	// series.
	p.Y.Min, p.Y.Max = f.YMin, f.YMin+(f.YMax-f.YMin)*(1+0.08*float64(len(f.Lines)+1))
	p.X.Padding, p.Y.Padding = vg.Points(6), 0
	return p, nil
}

// Formats are the figure file types Write understands, by extension.
var Formats = []string{"svg", "png", "pdf"}

// FormatOf returns the figure format of path from its extension.
func FormatOf(path string) (string, error) {
	ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(path), "."))
	if !slices.Contains(Formats, ext) {
		return "", fmt.Errorf("plot: output %s: unknown figure type %q (want .svg, .png or .pdf)", path, filepath.Ext(path))
	}
	return ext, nil
}

// Write renders f as format (svg, png or pdf) to w.
func (f *Figure) Write(w io.Writer, format string, o Options) error {
	p, err := f.Plot()
	if err != nil {
		return err
	}
	wd, ht := o.Width, o.Height
	if wd == 0 {
		wd = 16 * vg.Centimeter
	}
	if ht == 0 {
		ht = 10 * vg.Centimeter
	}
	wt, err := p.WriterTo(wd, ht, format)
	if err != nil {
		return fmt.Errorf("plot: render %s: %w", format, err)
	}
	_, err = wt.WriteTo(w)
	return err
}

// Draw builds the figure of series and writes it to w as format.
func Draw(w io.Writer, format string, series []*Series, o Options) (*Figure, error) {
	f, err := Build(series, o)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := f.Write(&buf, format, o); err != nil {
		return nil, err
	}
	_, err = w.Write(buf.Bytes())
	return f, err
}

// WriteFile draws series into path (its extension gives the format),
// writing a temporary file first so a failed draw leaves no partial
// figure.
func WriteFile(path string, series []*Series, o Options) (*Figure, error) {
	format, err := FormatOf(path)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	f, err := Draw(&buf, format, series, o)
	if err != nil {
		return nil, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("plot: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("plot: write %s: %w", path, err)
	}
	return f, nil
}
