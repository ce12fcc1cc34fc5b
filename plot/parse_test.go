package plot

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestParseFiles(t *testing.T) {
	for _, tc := range []struct {
		file    string
		kind    Kind
		n       int // samples
		x0      float64
		metric  Metric
		v0      float64 // value of metric at the first sample
		metrics string  // metrics present in every sample
	}{
		{"artifact/lock1-stock.txt", KindSweep, 13, 1, Total, 1850234, "total,fast,slow"},
		{"artifact/fxmark-mwrl.log", KindFxMark, 4, 1, Total, 0.187107085979, "total,fast,slow"},
		{"artifact/mem-tmpfs-MWRL-bufferedio.dat", KindFxDat, 4, 1, Total, 0.187107085979, "total,fast,slow"},
		{"artifact/leveldb-summary.txt", KindLevelDB, 4, 1, Total, 402113.212, "total,fast,slow"},
		{"artifact/xdir-result.28", KindXDir, 1, 4, Fairness, 0.540112, "total,fast,slow,fairness"},
		{"artifact/xdir-summary.txt", KindXDirSummary, 2, 2, Slow, 60, "total,fast,slow,fairness"},
		{"artifact/metis-parser.txt", KindMetisSummary, 4, 1, Total, 41234, "total"},
		{"syncord/lock1.sweep", KindSweep, 2, 1, Total, 918090, "total,fast,slow"},
		{"syncord/mwrl.report", KindFxMark, 1, 2, Fast, 0.011303947777, "total,fast,slow"},
		{"syncord/mwrl.dat", KindFxDat, 2, 1, Total, 0.04938759697622903, "total,fast,slow"},
		{"syncord/leveldb.out", KindLevelDB, 1, 2, Slow, 71128.436, "total,fast,slow"},
		{"syncord/xdir.out", KindXDir, 1, 2, Total, 4101, "total,fast,slow,fairness"},
		{"syncord/metis.out", KindMetis, 1, 2, Total, 164, "total"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			ss, err := ParseFile("testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if len(ss) != 1 {
				t.Fatalf("%d series, want 1", len(ss))
			}
			s := ss[0]
			if s.Kind != tc.kind {
				t.Errorf("kind %q, want %q", s.Kind, tc.kind)
			}
			if len(s.Samples) != tc.n {
				t.Fatalf("%d samples, want %d", len(s.Samples), tc.n)
			}
			if s.Samples[0].X != tc.x0 {
				t.Errorf("first x %v, want %v", s.Samples[0].X, tc.x0)
			}
			if v := s.Samples[0].Values[tc.metric]; math.Abs(v-tc.v0) > 1e-9*math.Max(1, math.Abs(tc.v0)) {
				t.Errorf("first %s = %v, want %v", tc.metric, v, tc.v0)
			}
			if got := strings.Join(metricsOf(s), ","); got != tc.metrics {
				t.Errorf("metrics %s, want %s", got, tc.metrics)
			}
			want := strings.TrimSuffix(tc.file[strings.LastIndex(tc.file, "/")+1:], "")
			if !strings.HasPrefix(want, s.Label) {
				t.Errorf("label %q is not the file's base name without extension (%s)", s.Label, want)
			}
		})
	}
}

func TestParseRepetitionsAndFailures(t *testing.T) {
	in := "(num_cores, num_nodes, cores_per_socket) = (4, 2, 2)\n# core,total,fast,slow\n1,100,100,0\n2,-1,-1,-1\n" +
		"(num_cores, num_nodes, cores_per_socket) = (4, 2, 2)\n# core,total,fast,slow\n1,300,300,0\n2,50,25,25\n" +
		"# core,total,fast,slow\n1,200,200,0\n"
	ss, err := Parse("r.csv", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	pts, err := Fold(ss[0], Total)
	if err != nil {
		t.Fatal(err)
	}
	want := []Point{{X: 1, Median: 200, Min: 100, Max: 300, N: 3}, {X: 2, Median: 50, Min: 50, Max: 50, N: 1}}
	if len(pts) != len(want) {
		t.Fatalf("points %+v, want %+v", pts, want)
	}
	for i := range want {
		if pts[i] != want[i] {
			t.Errorf("point %d = %+v, want %+v", i, pts[i], want[i])
		}
	}
}

func TestParseTidy(t *testing.T) {
	in := TidyHeader + "\n" +
		"debian,none,lock1,ops/s,1,0,10,10,0,\n" +
		"debian,none,lock1,ops/s,1,1,30,30,0,\n" +
		"debian,lockstat,lock1,ops/s,1,0,5,5,0,\n"
	ss, err := Parse("cells.csv", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 2 || ss[0].Label != "debian no policy" || ss[1].Label != "debian lockstat" {
		t.Fatalf("series %+v", ss)
	}
	if _, ok := ss[0].Samples[0].Values[Fairness]; ok {
		t.Errorf("an empty fairness cell became a value")
	}
	pts, _ := Fold(ss[0], Total)
	if len(pts) != 1 || pts[0].Median != 20 || pts[0].N != 2 {
		t.Errorf("folded %+v", pts)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		line     int
		unknown  bool
		msg      string
	}{
		{"notes.txt", "\n\nhello world\n", 3, true, "not a result file"},
		{"empty.txt", "", 1, true, "not a result file"},
		{"lock1.csv", "# core,total,fast,slow\n1,2,3,4\n2,x,3,4\n", 3, false, `total "x" is not an integer`},
		{"lock1.csv", "# core,total,fast,slow\n1,2,3\n", 2, false, "want 4 comma-separated"},
		{"lock1.csv", "junk\n# core,total,fast,slow\n1,2,3,4\n", 1, false, "before the"},
		{"lock1.csv", "# core,total,fast,slow\n1,-1,-1,-1\n", 2, false, "without a single data row"},
		{"x.out", "[b] task 0: lock_hold=1, runs=2\nfairness=1.0\nOps/sec: 2.0\n", 1, false, "no \"Victim Ops/sec:\""},
		{"x.out", "[b] task 0: lock_hold=1, runs=2\nsomething else\n", 2, false, "not an xdir output line"},
		{"m.out", "Starting mapreduce\n\tSample:\t1\tMap:\t2\tReduce:\t3\tMerge:\t4\tSum:\t5\tReal:\t6\t\n", 2, false, "before any"},
		{"fx.log", "## mem:tmpfs:MWRL:1:bufferedio\n# ncpu secs works works/sec\n1 1 1 1\n## mem:tmpfs:DWOM:1:bufferedio\n", 4, false, "a second benchmark"},
		{"c.csv", TidyHeader + "\ndebian,none,lock1,ops/s,0,0,1,1,1,\n", 2, false, "point 0 must be > 0"},
		{"l.txt", "#num_threads, fast, slow, tot ops/s\n2, 1, 2\n", 2, false, "want \"threads, fast, slow, total\""},
	} {
		t.Run(tc.name+"/"+tc.msg, func(t *testing.T) {
			_, err := Parse(tc.name, []byte(tc.in))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ParseError", err)
			}
			if pe.File != tc.name || pe.Line != tc.line {
				t.Errorf("at %s:%d, want %s:%d (%v)", pe.File, pe.Line, tc.name, tc.line, err)
			}
			if errors.Is(err, ErrUnknownFormat) != tc.unknown {
				t.Errorf("errors.Is(ErrUnknownFormat) = %v, want %v", !tc.unknown, tc.unknown)
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), tc.name+":") {
				t.Errorf("error %q: want it to start with the file name and say %q", err, tc.msg)
			}
		})
	}
}
