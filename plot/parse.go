package plot

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Kind is a result format Parse recognises.
type Kind string

// The formats, as SYNCORD-ABI.md section 4 and the artifact's scripts give
// them.
const (
	// KindSweep is runtest.py's output (and syncord bench sweep's): an
	// optional "(num_cores, num_nodes, cores_per_socket) = (a, b, c)"
	// line, "# core,total,fast,slow", then "core,total,fast,slow" rows
	// (-1 for a failed run). Concatenated sweeps are repetitions.
	KindSweep Kind = "will-it-scale sweep"
	// KindFxMark is FxMark's report: "# ncpu secs works works/sec ..."
	// and "ncpu secs works works/sec fast/sec slow/sec [profile]" rows,
	// with the "### k = v" and "## media:fs:bench:..." lines of its log.
	KindFxMark Kind = "fxmark report"
	// KindFxDat is the plotter's .dat file: "# media:fs:bench:iomode:*",
	// "# core, total, fast, slow", then "ncpu total fast slow" in millions
	// of works per second.
	KindFxDat Kind = "fxmark .dat"
	// KindLevelDB is db_bench's report lines followed by the summary
	// "#num_threads, fast, slow, tot ops/s" and "n, fast, slow, total".
	KindLevelDB Kind = "leveldb summary"
	// KindXDir is xDir-rename's output: "[b] task ..." / "[v] task ..."
	// lines, fairness=, Ops/sec:, Bully  Ops/sec:, Victim Ops/sec:. Each
	// such block is one run; its x is its number of tasks.
	KindXDir Kind = "xdir result"
	// KindXDirSummary is the artifact's xDir-rename/plot.py output:
	// "#bully_throughput, victim_throughput, total_throughput, fairness,
	// bully_holdtime, victim_holdtime" rows, one per core count of its
	// fixed list (XDirSummaryCores).
	KindXDirSummary Kind = "xdir plot.py summary"
	// KindMetis is Metis's output: "Runtime in milliseconds [N cores]"
	// and the tab line whose number after "Real:" is the runtime.
	KindMetis Kind = "metis result"
	// KindMetisSummary is the artifact's metis/parser.py output: "CORE,
	// RUNTIME" and "core, ms" rows.
	KindMetisSummary Kind = "metis parser.py summary"
	// KindTidy is syncord-host experiment's per-cell CSV (TidyHeader).
	KindTidy Kind = "experiment csv"
)

// Metric is the value of a sample a figure draws.
type Metric string

// Metrics. For xdir, fast is the bullies' ops/s and slow the victims'; for
// Metis, total is the runtime.
const (
	Total    Metric = "total"
	Fast     Metric = "fast"
	Slow     Metric = "slow"
	Fairness Metric = "fairness"
)

// Metrics lists every metric in order.
var Metrics = []Metric{Total, Fast, Slow, Fairness}

// ParseMetric checks a metric name.
func ParseMetric(s string) (Metric, error) {
	for _, m := range Metrics {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown metric %q (want total, fast, slow or fairness)", s)
}

// Sample is one measurement at X (cores or threads); Values holds the
// metrics the format has.
type Sample struct {
	X      float64            `json:"x"`
	Values map[Metric]float64 `json:"values"`
}

// Series is what one input (or one experiment cell) holds.
type Series struct {
	Label string `json:"label"`
	Kind  Kind   `json:"kind"`
	// XName is what X counts ("cores" or "threads").
	XName string `json:"x"`
	// Quantity and Unit describe the total, fast and slow metrics
	// ("throughput", "ops/s"; "runtime", "ms").
	Quantity string   `json:"quantity"`
	Unit     string   `json:"unit"`
	Samples  []Sample `json:"samples"`
}

// ErrUnknownFormat is wrapped by Parse's error for a file that is none of
// the formats.
var ErrUnknownFormat = errors.New("not a result file syncord can plot")

// ParseError is a file's unreadable line.
type ParseError struct {
	File string
	Line int
	Err  error
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }
func (e *ParseError) Unwrap() error { return e.Err }

// maxFile bounds what ParseFile reads: result files are small.
const maxFile = 64 << 20

// ParseFile reads and parses the result file at path.
func ParseFile(path string) ([]*Series, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read result file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("read result file %s: %w", path, err)
	}
	if len(b) > maxFile {
		return nil, fmt.Errorf("read result file %s: larger than %d MiB, not a result file", path, maxFile>>20)
	}
	return Parse(path, b)
}

// Parse recognises the format of data (read from file name, used in
// errors and for the label: its base name without extension) and parses
// it into series: one, or one per experiment cell of a tidy CSV.
func Parse(name string, data []byte) ([]*Series, error) {
	lines := splitLines(data)
	kind, at := detect(lines)
	if kind == "" {
		return nil, &ParseError{File: name, Line: at, Err: fmt.Errorf("%w (want a runtest sweep, an FxMark report or .dat, a LevelDB summary, xdir or Metis output, or an experiment csv; see syncord-host help plot)", ErrUnknownFormat)}
	}
	label := strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))
	s := &Series{Label: label, Kind: kind, XName: "cores", Quantity: "throughput"}
	var err error
	switch kind {
	case KindSweep:
		s.Unit = "ops/s"
		err = parseSweep(s, lines)
	case KindFxMark:
		s.Unit = "M works/s"
		err = parseFxMark(s, lines)
	case KindFxDat:
		s.Unit = "M works/s"
		err = parseFxDat(s, lines)
	case KindLevelDB:
		s.XName, s.Unit = "threads", "ops/s"
		err = parseLevelDB(s, lines)
	case KindXDir:
		s.XName, s.Unit = "threads", "ops/s"
		err = parseXDir(s, lines)
	case KindXDirSummary:
		s.Unit = "ops/s"
		err = parseXDirSummary(s, lines)
	case KindMetis:
		s.Quantity, s.Unit = "runtime", "ms"
		err = parseMetis(s, lines)
	case KindMetisSummary:
		s.Quantity, s.Unit = "runtime", "ms"
		err = parseMetisSummary(s, lines)
	case KindTidy:
		return parseTidy(name, data)
	}
	if err != nil {
		var le *lineError
		if errors.As(err, &le) {
			return nil, &ParseError{File: name, Line: le.line, Err: fmt.Errorf("%s: %w", kind, le.err)}
		}
		return nil, fmt.Errorf("%s: %s: %w", name, kind, err)
	}
	if len(s.Samples) == 0 {
		return nil, &ParseError{File: name, Line: len(lines), Err: fmt.Errorf("%s without a single data row (every run failed?)", kind)}
	}
	return []*Series{s}, nil
}

// line is one line of input with its 1-based number.
type line struct {
	n    int
	text string // without the line ending and trailing blanks
}

func splitLines(data []byte) []line {
	var ls []line
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		ls = append(ls, line{n: n, text: strings.TrimRight(sc.Text(), " \t\r")})
	}
	return ls
}

type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }

func bad(l line, format string, a ...any) error {
	return &lineError{line: l.n, err: fmt.Errorf(format, a...)}
}

// TidyHeader is the first line of an experiment csv: one row per
// repetition of one point of one cell; an empty value is a metric the
// benchmark does not have.
const TidyHeader = "kernel,policy,benchmark,unit,point,rep,total,fast,slow,fairness"

var (
	reRuntestHeader = regexp.MustCompile(`^\(num_cores, num_nodes, cores_per_socket\) = \((\d+), (\d+), (\d+)\)$`)
	reFxKey         = regexp.MustCompile(`^# [^:\s]+:[^:\s]+:[^:\s]+:[^:\s]+(:\S+)?$`)
	reXDirTask      = regexp.MustCompile(`^\[([bv])\] task (\d+): lock_hold=(\d+), runs=(-?\d+)$`)
	reMetisRuntime  = regexp.MustCompile(`^Runtime in milliseconds \[(\d+) cores\]$`)
	reMetisTop      = regexp.MustCompile(`^wordreverseindex: results \(TOP \d+ from \d+ keys, \d+ words\):$`)
	reMetisKey      = regexp.MustCompile(`^\s*\S+ - \d+$`)
	reDBBench       = regexp.MustCompile(`^[A-Za-z][\w /.()-]*:\s`)
)

// detect returns the kind of the first line that marks a format, or "" and
// the first non-blank line's number.
func detect(ls []line) (Kind, int) {
	first := 0
	for _, l := range ls {
		t := strings.TrimSpace(l.text)
		if t == "" {
			continue
		}
		if first == 0 {
			first = l.n
		}
		switch {
		case reRuntestHeader.MatchString(t), t == "# core,total,fast,slow":
			return KindSweep, l.n
		case strings.HasPrefix(t, "# ncpu secs works works/sec"):
			return KindFxMark, l.n
		case t == "# core, total, fast, slow":
			return KindFxDat, l.n
		case strings.HasPrefix(t, "#num_threads, fast, slow, tot ops/s"):
			return KindLevelDB, l.n
		case reXDirTask.MatchString(t), strings.HasPrefix(t, "fairness="):
			return KindXDir, l.n
		case strings.HasPrefix(t, "#bully_throughput,"):
			return KindXDirSummary, l.n
		case reMetisRuntime.MatchString(t), t == "Starting mapreduce":
			return KindMetis, l.n
		case t == "CORE, RUNTIME":
			return KindMetisSummary, l.n
		case t == TidyHeader:
			return KindTidy, l.n
		}
	}
	if first == 0 {
		first = 1
	}
	return "", first
}

// countRow parses a row whose first field is a positive count (the x of
// the sample, named what in errors) and whose next fields are metrics, in
// the order given. f must hold 1+len(metrics) fields.
func countRow(l line, f []string, what string, metrics ...Metric) (Sample, error) {
	n, err := atoi(l, f[0], what)
	if err != nil {
		return Sample{}, err
	}
	if n <= 0 {
		return Sample{}, bad(l, "%s %d must be > 0", what, n)
	}
	v := make(map[Metric]float64, len(metrics))
	for i, m := range metrics {
		x, err := atof(l, f[1+i], string(m))
		if err != nil {
			return Sample{}, err
		}
		v[m] = x
	}
	return Sample{X: float64(n), Values: v}, nil
}

func atoi(l line, s, what string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, bad(l, "%s %q is not an integer", what, s)
	}
	return n, nil
}

func atof(l line, s, what string) (float64, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "-nan", "nan", "-nan(ind)":
		return math.NaN(), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, bad(l, "%s %q is not a number", what, s)
	}
	return f, nil
}

func parseSweep(s *Series, ls []line) error {
	cols := false
	for _, l := range ls {
		t := strings.TrimSpace(l.text)
		switch {
		case t == "":
		case reRuntestHeader.MatchString(t):
			cols = false
		case t == "# core,total,fast,slow":
			cols = true
		case !cols:
			return bad(l, "%q before the \"# core,total,fast,slow\" line", t)
		default:
			f := strings.Split(t, ",")
			if len(f) != 4 {
				return bad(l, "want 4 comma-separated integers core,total,fast,slow, got %q", t)
			}
			var v [4]int
			for i, name := range []string{"core", "total", "fast", "slow"} {
				n, err := atoi(l, f[i], name)
				if err != nil {
					return err
				}
				v[i] = n
			}
			if v[0] <= 0 {
				return bad(l, "core count %d must be > 0", v[0])
			}
			if v[1] < 0 { // runtest.py's -1: the run failed
				continue
			}
			s.Samples = append(s.Samples, Sample{X: float64(v[0]), Values: map[Metric]float64{Total: float64(v[1]), Fast: float64(v[2]), Slow: float64(v[3])}})
		}
	}
	return nil
}

func parseFxMark(s *Series, ls []line) error {
	schema, key := false, ""
	for _, l := range ls {
		t := strings.TrimSpace(l.text)
		switch {
		case t == "":
		case strings.HasPrefix(t, "### "):
		case strings.HasPrefix(t, "## "):
			// run-fxmark.py's "## media:fs:bench:ncore:dio" before each
			// run: one benchmark (any ncore) per series.
			f := strings.Split(strings.TrimSpace(t[3:]), ":")
			if len(f) == 5 {
				f[3] = "*"
			}
			k := strings.Join(f, ":")
			if key != "" && k != key {
				return bad(l, "a second benchmark %s after %s: one series per file (split the log)", k, key)
			}
			key = k
		case strings.HasPrefix(t, "# ncpu secs works works/sec"):
			schema = true
		case strings.HasPrefix(t, "#"):
			// the log's other comments ("# Fail to mount ...", "# INFO: ...")
		case !schema:
			return bad(l, "%q before the \"# ncpu secs works works/sec\" line", t)
		default:
			f := strings.Fields(t)
			if len(f) < 4 {
				return bad(l, "want \"ncpu secs works works/sec [fast/sec slow/sec] [profile]\", got %q", t)
			}
			n, err := atoi(l, f[0], "ncpu")
			if err != nil {
				return err
			}
			if n <= 0 {
				return bad(l, "ncpu %d must be > 0", n)
			}
			v := map[Metric]float64{}
			for i, name := range []string{"secs", "works", "works/sec"} {
				x, err := atof(l, f[1+i], name)
				if err != nil {
					return err
				}
				if name == "works/sec" {
					v[Total] = x / 1e6
				}
			}
			// fast and slow when the SynCord build printed them (the
			// original FxMark has a profile string there).
			if len(f) >= 6 {
				fa, err1 := strconv.ParseFloat(f[4], 64)
				sl, err2 := strconv.ParseFloat(f[5], 64)
				if err1 == nil && err2 == nil {
					v[Fast], v[Slow] = fa/1e6, sl/1e6
				}
			}
			s.Samples = append(s.Samples, Sample{X: float64(n), Values: v})
		}
	}
	return nil
}

func parseFxDat(s *Series, ls []line) error {
	cols := false
	for _, l := range ls {
		t := strings.TrimSpace(l.text)
		switch {
		case t == "":
		case reFxKey.MatchString(t):
			cols = false
		case t == "# core, total, fast, slow":
			cols = true
		case !cols:
			return bad(l, "%q before the \"# core, total, fast, slow\" line", t)
		default:
			f := strings.Fields(t)
			if len(f) != 4 {
				return bad(l, "want \"ncpu total fast slow\", got %q", t)
			}
			p, err := countRow(l, f, "ncpu", Total, Fast, Slow)
			if err != nil {
				return err
			}
			s.Samples = append(s.Samples, p)
		}
	}
	return nil
}

func parseLevelDB(s *Series, ls []line) error {
	summary := false
	for _, l := range ls {
		t := strings.TrimSpace(l.text)
		switch {
		case t == "":
		case strings.HasPrefix(t, "#num_threads, fast, slow, tot ops/s"):
			summary = true
		case strings.Trim(t, "-") == "":
			// db_bench's separator line
		case reDBBench.MatchString(t) || strings.Contains(t, " : "):
			// db_bench's report and header lines ("readrandom   : ...",
			// "Keys:       16 bytes each"); a new report ends a summary.
			summary = false
		case !summary:
			return bad(l, "%q is neither a db_bench report line nor after \"#num_threads, fast, slow, tot ops/s\"", t)
		default:
			f := strings.Split(t, ",")
			if len(f) != 4 {
				return bad(l, "want \"threads, fast, slow, total\", got %q", t)
			}
			p, err := countRow(l, f, "thread count", Fast, Slow, Total)
			if err != nil {
				return err
			}
			s.Samples = append(s.Samples, p)
		}
	}
	return nil
}

func parseXDir(s *Series, ls []line) error {
	tasks, start := 0, 0
	var cur map[Metric]float64
	begin := func(l line) {
		if cur == nil {
			cur, start = map[Metric]float64{}, l.n
		}
	}
	for _, l := range ls {
		t := strings.TrimSpace(l.text)
		val := func(prefix, what string) (float64, error) {
			return atof(l, strings.TrimPrefix(t, prefix), what)
		}
		switch {
		case t == "":
		case strings.HasPrefix(t, "Directory "), strings.HasPrefix(t, "./benchmark "), strings.HasPrefix(t, "disable dir_index"):
			// run_bench.py's own lines
		case reXDirTask.MatchString(t):
			if len(cur) > 0 {
				return bad(l, "task line after the summary of the run that began on line %d", start)
			}
			begin(l)
			tasks++
		case strings.HasPrefix(t, "fairness="):
			begin(l)
			x, err := val("fairness=", "fairness")
			if err != nil {
				return err
			}
			cur[Fairness] = x
		case strings.HasPrefix(t, "Ops/sec:"):
			begin(l)
			x, err := val("Ops/sec:", "Ops/sec")
			if err != nil {
				return err
			}
			cur[Total] = x
		case strings.HasPrefix(t, "Bully  Ops/sec:"), strings.HasPrefix(t, "Bully Ops/sec:"):
			begin(l)
			x, err := val(t[:strings.Index(t, ":")+1], "bully Ops/sec")
			if err != nil {
				return err
			}
			cur[Fast] = x
		case strings.HasPrefix(t, "Victim Ops/sec:"):
			begin(l)
			x, err := val("Victim Ops/sec:", "victim Ops/sec")
			if err != nil {
				return err
			}
			cur[Slow] = x
			if tasks == 0 {
				return bad(l, "the run that began on line %d has no [b]/[v] task lines, so no thread count", start)
			}
			if _, ok := cur[Total]; !ok {
				return bad(l, "the run that began on line %d has no Ops/sec line", start)
			}
			s.Samples = append(s.Samples, Sample{X: float64(tasks), Values: cur})
			cur, tasks = nil, 0
		default:
			return bad(l, "%q is not an xdir output line", t)
		}
	}
	if cur != nil {
		return &lineError{line: start, err: fmt.Errorf("the run that begins here has no \"Victim Ops/sec:\" line (truncated output?)")}
	}
	return nil
}

// XDirSummaryCores are the core counts of the artifact's xDir-rename
// plot.py, one per row of its summary.
var XDirSummaryCores = []int{2, 4, 8, 16, 28, 56, 84, 112, 140, 168, 196, 224}

func parseXDirSummary(s *Series, ls []line) error {
	section, row := "", 0
	for _, l := range ls {
		t := strings.TrimSpace(l.text)
		switch {
		case t == "":
		case strings.HasPrefix(t, "#bully_throughput,"):
			section = "tput"
		case strings.HasPrefix(t, "#xsock-cnt"):
			section = "profile"
		case section == "profile":
			for _, f := range strings.Fields(t) {
				if _, err := atof(l, f, "profile value"); err != nil {
					return err
				}
			}
		case section == "":
			return bad(l, "%q before the \"#bully_throughput, ...\" line", t)
		default:
			f := strings.Split(t, ",")
			if len(f) != 6 {
				return bad(l, "want 6 comma-separated values (bully, victim, total, fairness, bully hold, victim hold), got %q", t)
			}
			var v [6]float64
			for i := range f {
				x, err := atof(l, f[i], "value")
				if err != nil {
					return err
				}
				v[i] = x
			}
			if row >= len(XDirSummaryCores) {
				return bad(l, "more rows than plot.py's %d core counts", len(XDirSummaryCores))
			}
			s.Samples = append(s.Samples, Sample{X: float64(XDirSummaryCores[row]), Values: map[Metric]float64{Fast: v[0], Slow: v[1], Total: v[2], Fairness: v[3]}})
			row++
		}
	}
	return nil
}

func parseMetis(s *Series, ls []line) error {
	cores := 0
	for _, l := range ls {
		t := strings.TrimSpace(l.text)
		switch {
		case t == "", t == "Starting mapreduce", t == "Finished mapreduce", t == "Number of Tasks":
		case reMetisRuntime.MatchString(t):
			n, _ := strconv.Atoi(reMetisRuntime.FindStringSubmatch(t)[1])
			if n <= 0 {
				return bad(l, "core count %d must be > 0", n)
			}
			cores = n
		case strings.HasPrefix(t, "Sample:"):
			f := strings.Split(t, "\t")
			real := -1
			for i := 0; i+1 < len(f); i++ {
				if f[i] == "Real:" {
					real = i + 1
				}
			}
			if real < 0 {
				if strings.Contains(t, "Map:") && strings.Contains(t, "Reduce:") {
					continue // the "Number of Tasks" line
				}
				return bad(l, "a Sample: line without Map:/Reduce: or Real: (tab-separated) in %q", t)
			}
			if cores == 0 {
				return bad(l, "Real: before any \"Runtime in milliseconds [N cores]\" line")
			}
			ms, err := atoi(l, f[real], "Real")
			if err != nil {
				return err
			}
			s.Samples = append(s.Samples, Sample{X: float64(cores), Values: map[Metric]float64{Total: float64(ms)}})
			cores = 0
		case reMetisTop.MatchString(t), reMetisKey.MatchString(t):
		default:
			return bad(l, "%q is not a Metis output line", t)
		}
	}
	return nil
}

func parseMetisSummary(s *Series, ls []line) error {
	hdr := false
	for _, l := range ls {
		t := strings.TrimSpace(l.text)
		switch {
		case t == "":
		case t == "CORE, RUNTIME":
			hdr = true
		case !hdr:
			return bad(l, "%q before the \"CORE, RUNTIME\" line", t)
		default:
			f := strings.Split(t, ",")
			if len(f) != 2 {
				return bad(l, "want \"core, runtime\", got %q", t)
			}
			n, err := atoi(l, f[0], "core")
			if err != nil {
				return err
			}
			ms, err := atof(l, f[1], "runtime")
			if err != nil {
				return err
			}
			if n <= 0 {
				return bad(l, "core count %d must be > 0", n)
			}
			s.Samples = append(s.Samples, Sample{X: float64(n), Values: map[Metric]float64{Total: ms}})
		}
	}
	return nil
}

// TidyRow is one row of an experiment csv.
type TidyRow struct {
	Kernel, Policy, Benchmark, Unit string
	Point, Rep                      int
	Values                          map[Metric]float64
}

// WriteTidy writes rows as an experiment csv (TidyHeader first).
func WriteTidy(w io.Writer, rows []TidyRow) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(strings.Split(TidyHeader, ",")); err != nil {
		return err
	}
	for _, r := range rows {
		rec := []string{r.Kernel, r.Policy, r.Benchmark, r.Unit, strconv.Itoa(r.Point), strconv.Itoa(r.Rep)}
		for _, m := range Metrics {
			if v, ok := r.Values[m]; ok {
				rec = append(rec, strconv.FormatFloat(v, 'g', -1, 64))
			} else {
				rec = append(rec, "")
			}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// Quantity of an experiment unit: runtime for time units, else throughput.
func quantityOf(unit string) string {
	switch unit {
	case "ms", "s":
		return "runtime"
	case "":
		return "value"
	}
	return "throughput"
}

func parseTidy(name string, data []byte) ([]*Series, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	var out []*Series
	byCell := map[string]*Series{}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		ln, _ := r.FieldPos(0)
		if err != nil {
			return nil, &ParseError{File: name, Line: ln, Err: fmt.Errorf("%s: %w", KindTidy, err)}
		}
		if strings.Join(rec, ",") == TidyHeader {
			continue
		}
		l := line{n: ln, text: strings.Join(rec, ",")}
		fail := func(err error) ([]*Series, error) {
			var le *lineError
			if errors.As(err, &le) {
				err = le.err
			}
			return nil, &ParseError{File: name, Line: ln, Err: fmt.Errorf("%s: %w", KindTidy, err)}
		}
		if len(rec) != 10 {
			return fail(fmt.Errorf("want the 10 columns %s, got %d", TidyHeader, len(rec)))
		}
		pt, err := atoi(l, rec[4], "point")
		if err != nil {
			return fail(err)
		}
		if pt <= 0 {
			return fail(fmt.Errorf("point %d must be > 0", pt))
		}
		if _, err := atoi(l, rec[5], "rep"); err != nil {
			return fail(err)
		}
		v := map[Metric]float64{}
		for i, m := range Metrics {
			if rec[6+i] == "" {
				continue
			}
			x, err := atof(l, rec[6+i], string(m))
			if err != nil {
				return fail(err)
			}
			v[m] = x
		}
		key := rec[0] + "\x00" + rec[1] + "\x00" + rec[2]
		s := byCell[key]
		if s == nil {
			s = &Series{Label: CellLabel(rec[0], rec[1]), Kind: KindTidy, XName: "cores", Quantity: quantityOf(rec[3]), Unit: rec[3]}
			byCell[key] = s
			out = append(out, s)
		}
		s.Samples = append(s.Samples, Sample{X: float64(pt), Values: v})
	}
	if len(out) == 0 {
		return nil, &ParseError{File: name, Line: 1, Err: fmt.Errorf("%s without a single data row", KindTidy)}
	}
	return out, nil
}

// CellLabel is a cell's legend label: "kernel policy" ("none" is "no
// policy").
func CellLabel(kernel, policy string) string {
	if policy == "" || policy == "none" {
		policy = "no policy"
	}
	if kernel == "" {
		return policy
	}
	return kernel + " " + policy
}
