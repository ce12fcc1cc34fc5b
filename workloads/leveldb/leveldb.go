package leveldb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"

	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/internal/setting"
	"github.com/syncord/syncord/numa"
	"github.com/syncord/syncord/workloads"
)

// Config is one readrandom run; zero values mean db_bench's
// defaults.
type Config struct {
	Threads   int           // --threads (> 0)
	Duration  time.Duration // --duration (0: 30 s)
	Num       int           // --num keys (0: 1,000,000)
	ValueSize int           // --value-size (0: 100)
	// DB is the database directory (required).
	DB string
	// UseExisting keeps an existing database and fills only when there is
	// none; otherwise the directory's database is destroyed and refilled,
	// as db_bench's fillseq does.
	UseExisting bool
	// CoresPerSocket feeds the placement rule and the fast/slow split
	// (> 0).
	CoresPerSocket int
	// SysRoot is the sysfs mount whose online CPUs the readers' must be
	// among ("" means /sys).
	SysRoot pseudofs.FS
	// Progress receives fillseq's report (nil: none).
	Progress io.Writer
}

// Stats is db_bench's Stats for one group of threads.
type Stats struct {
	Name          string  `json:"group"` // "fast", "slow", "total"
	Threads       int     `json:"threads"`
	Done          int64   `json:"ops"`
	Found         int64   `json:"found"`
	Seconds       float64 `json:"thread_seconds"` // sum of the threads' run times
	Elapsed       float64 `json:"elapsed_seconds"`
	MicrosPerOp   float64 `json:"micros_per_op"`
	OpsPerSec     float64 `json:"ops_per_sec"`
	Message       string  `json:"message"`
	start, finish float64
}

// Result is a readrandom run.
type Result struct {
	Threads  int     `json:"threads"`
	CPUs     []int   `json:"cpus"`
	Filled   bool    `json:"filled"`
	Num      int     `json:"num"`
	Fast     *Stats  `json:"fast,omitempty"`
	Slow     *Stats  `json:"slow,omitempty"`
	Total    Stats   `json:"total"`
	PerTask  []Stats `json:"per_thread"`
	FillOps  float64 `json:"fillseq_ops_per_sec,omitempty"`
	FillTime float64 `json:"fillseq_seconds,omitempty"`
}

// ParkMiller is LevelDB's util/random.h generator: seed = seed*16807 mod
// (2^31-1), seeded with s&0x7fffffff (0 and 2^31-1 become 1).
type ParkMiller struct{ seed uint32 }

// NewParkMiller returns Random(s).
func NewParkMiller(s uint32) *ParkMiller {
	p := &ParkMiller{seed: s & 0x7fffffff}
	if p.seed == 0 || p.seed == 2147483647 {
		p.seed = 1
	}
	return p
}

// Next returns the next value in [1, 2^31-2].
func (p *ParkMiller) Next() uint32 {
	const m = 2147483647
	product := uint64(p.seed) * 16807
	s := uint32(product>>31) + uint32(product&m)
	if s > m {
		s -= m
	}
	p.seed = s
	return s
}

// Uniform returns a value in [0, n).
func (p *ParkMiller) Uniform(n int) int { return int(p.Next() % uint32(n)) }

// leveldbValues is db_bench's RandomGenerator: 1 MiB of pieces that
// compress to half (test::CompressibleString with Random(301)), handed out
// in consecutive slices.
type leveldbValues struct {
	data []byte
	pos  int
}

func newLevelDBValues() *leveldbValues {
	rnd := NewParkMiller(301)
	g := &leveldbValues{}
	for len(g.data) < 1048576 {
		// CompressibleString(rnd, 0.5, 100): a random 50-byte string of
		// printable characters, repeated to 100 bytes.
		raw := make([]byte, 50)
		for i := range raw {
			raw[i] = byte(' ' + rnd.Uniform(95))
		}
		for n := 0; n < 100; n += len(raw) {
			g.data = append(g.data, raw[:min(len(raw), 100-n)]...)
		}
	}
	return g
}

func (g *leveldbValues) next(n int) []byte {
	if g.pos+n > len(g.data) {
		g.pos = 0
	}
	g.pos += n
	return g.data[g.pos-n : g.pos]
}

// leveldbOptions are LevelDB 1.20's defaults.
func leveldbOptions(create bool) *opt.Options {
	return &opt.Options{
		ErrorIfMissing:         !create,
		WriteBuffer:            4 << 20,
		BlockCacheCapacity:     8 << 20,
		BlockSize:              4 << 10,
		OpenFilesCacheCapacity: 1000 - 10, // max_open_files minus LevelDB's reserve
	}
}

func leveldbKey(buf []byte, k int) []byte {
	var d [20]byte
	digits := strconv.AppendInt(d[:0], int64(k), 10)
	buf = buf[:0]
	for i := len(digits); i < 16; i++ {
		buf = append(buf, '0')
	}
	return append(buf, digits...)
}

// leveldbExists reports whether dir holds a LevelDB database (a CURRENT
// file).
func leveldbExists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "CURRENT"))
	return err == nil
}

// leveldbDestroy removes the database in dir, refusing a non-empty
// directory that is not one.
func leveldbDestroy(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(ents) > 0 && !leveldbExists(dir) {
		return setting.Errorf("%s is not empty and holds no LevelDB database (no CURRENT file); refusing to delete it (give another {DB})", dir)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// FillSeq writes keys 0..num-1 in order with one thread (db_bench
// fillseq) and returns the ops/s. A fill that fails or is cancelled
// removes the half-made database: the directories it created, or else
// everything in dir (which it emptied of the old database first).
func FillSeq(ctx context.Context, dir string, num, valueSize int) (ops float64, d time.Duration, err error) {
	if valueSize < 0 || valueSize > MaxValueSize {
		return 0, 0, setting.Invalid("leveldb fillseq: {ValueSize} %d is out of range (0 to %d bytes, the size of db_bench's value generator)", valueSize, MaxValueSize)
	}
	if num < 0 {
		return 0, 0, setting.Invalid("leveldb fillseq: {Num} %d is negative", num)
	}
	if err := leveldbDestroy(dir); err != nil {
		return 0, 0, fmt.Errorf("leveldb fillseq: %w", err)
	}
	top, err := mkdirAllNew(dir, 0o755)
	if err != nil {
		return 0, 0, fmt.Errorf("leveldb fillseq: %w", err)
	}
	defer func() {
		if err == nil {
			return
		}
		if top != "" {
			os.RemoveAll(top)
		} else {
			leveldbDestroy(dir)
		}
	}()
	db, err := leveldb.OpenFile(dir, leveldbOptions(true))
	if err != nil {
		return 0, 0, fmt.Errorf("leveldb open %s: %w", dir, err)
	}
	gen := newLevelDBValues()
	key := make([]byte, 0, 32)
	var batch leveldb.Batch
	t0 := time.Now()
	for i := 0; i < num; i++ {
		if i&1023 == 0 && ctx.Err() != nil {
			db.Close()
			return 0, 0, ctx.Err()
		}
		batch.Reset()
		batch.Put(leveldbKey(key, i), gen.next(valueSize))
		if err := db.Write(&batch, nil); err != nil {
			db.Close()
			return 0, 0, fmt.Errorf("leveldb fillseq put: %w", err)
		}
	}
	d = time.Since(t0)
	if err := db.Close(); err != nil {
		return 0, 0, fmt.Errorf("leveldb close %s: %w", dir, err)
	}
	return float64(num) / d.Seconds(), d, nil
}

// MaxValueSize bounds --value-size: db_bench hands values out of
// its 1 MiB generator buffer.
const MaxValueSize = 1 << 20

// MaxThreads bounds --threads.
const MaxThreads = 4096

// mkdirAllNew is os.MkdirAll returning the topmost directory it created
// ("" when dir existed), so a failed run removes only what it made.
func mkdirAllNew(dir string, perm os.FileMode) (string, error) {
	dir = filepath.Clean(dir)
	top := ""
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		top = d
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return "", err
	}
	return top, nil
}

// Run fills the database if needed and runs readrandom.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Threads <= 0 || cfg.Threads > MaxThreads {
		return nil, setting.Invalid("leveldb: {Threads} %d is out of range (1 to %d)", cfg.Threads, MaxThreads)
	}
	if cfg.CoresPerSocket <= 0 {
		return nil, fmt.Errorf("leveldb: cores per socket must be > 0, got %d", cfg.CoresPerSocket)
	}
	if cfg.DB == "" {
		return nil, setting.Invalid("leveldb: no database directory (give {DB})")
	}
	if cfg.Duration == 0 {
		cfg.Duration = 30 * time.Second
	}
	if cfg.Num == 0 {
		cfg.Num = 1000000
	}
	if cfg.ValueSize == 0 {
		cfg.ValueSize = 100
	}
	if cfg.Num < 0 || cfg.ValueSize < 0 || cfg.Duration < 0 {
		return nil, setting.Invalid("leveldb: {Num}, {ValueSize} and {Duration} must be positive")
	}
	if cfg.ValueSize > MaxValueSize {
		return nil, setting.Invalid("leveldb: {ValueSize} %d is larger than %d bytes (1 MiB, the size of db_bench's value generator)", cfg.ValueSize, MaxValueSize)
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	// Plan before the fill: the CPUs exist and are online (Launch checks
	// that this process may use them).
	ecfg := workloads.Config{Tasks: cfg.Threads, CoresPerSocket: cfg.CoresPerSocket, SysRoot: cfg.SysRoot, Allocates: true}
	cpus, err := workloads.Plan(ecfg)
	if err != nil {
		return nil, fmt.Errorf("leveldb: %w", err)
	}
	res := &Result{Threads: cfg.Threads, CPUs: cpus, Num: cfg.Num}
	if !cfg.UseExisting || !leveldbExists(cfg.DB) {
		ops, d, err := FillSeq(ctx, cfg.DB, cfg.Num, cfg.ValueSize)
		if err != nil {
			return nil, err
		}
		res.Filled, res.FillOps, res.FillTime = true, ops, d.Seconds()
		fmt.Fprintf(progress, "%-12s : %11.3f micros/op; (%d ops in %.3f s, one thread)\n", "fillseq", d.Seconds()*1e6/float64(max(cfg.Num, 1)), cfg.Num, d.Seconds())
	}
	db, err := leveldb.OpenFile(cfg.DB, leveldbOptions(false))
	if err != nil {
		return nil, setting.Errorf("leveldb open %s: %w (fill it first: drop {UseExisting})", cfg.DB, err)
	}
	defer db.Close()

	// The readers run on the engine: pinned, released together; each
	// stops after Duration of its own, or when the run stops (an error,
	// the context).
	stats := make([]Stats, cfg.Threads)
	limit := cfg.Duration.Seconds() * 1e6
	run, err := workloads.Launch(ctx, ecfg, func(t *workloads.Task) error {
		if !t.Ready() {
			return nil
		}
		return readRandom(db, cfg.Num, t, &stats[t.ID], limit)
	})
	if err != nil {
		return nil, fmt.Errorf("leveldb: %w", err)
	}
	select {
	case <-run.Done():
	case <-ctx.Done():
	}
	if err := run.Stop(); err != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("leveldb readrandom: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("leveldb readrandom: interrupted: %w", err)
	}

	var fast, slow []int
	for i, c := range cpus {
		if numa.IsFast(c, cfg.CoresPerSocket) {
			fast = append(fast, i)
		} else {
			slow = append(slow, i)
		}
	}
	for i := range stats {
		s := stats[i]
		s.Name, s.Threads = "thread "+strconv.Itoa(i), 1
		leveldbFinish(&s)
		res.PerTask = append(res.PerTask, s)
	}
	if len(fast) > 0 {
		res.Fast = leveldbMerge("fast", stats, fast)
	}
	if len(slow) > 0 {
		res.Slow = leveldbMerge("slow", stats, slow)
	}
	all := append(append([]int{}, fast...), slow...)
	res.Total = *leveldbMerge("total", stats, all)
	return res, nil
}

// readRandom is one reader thread: Park-Miller Random(1000+ID) keys,
// until limit µs passed or the run stops.
func readRandom(db *leveldb.DB, num int, t *workloads.Task, st *Stats, limit float64) error {
	rnd := NewParkMiller(uint32(1000 + t.ID))
	key := make([]byte, 0, 32)
	stop := t.StopFlag()
	st.start = nowMicros()
	var found, check int64
	var err error
	for {
		check++
		k := int(rnd.Next() % uint32(num))
		_, gerr := db.Get(leveldbKey(key, k), nil)
		if gerr == nil {
			found++
		} else if !errors.Is(gerr, leveldb.ErrNotFound) {
			err = fmt.Errorf("leveldb get: %w", gerr)
			break
		}
		st.Done++
		if nowMicros()-st.start >= limit || stop.Load() {
			break
		}
	}
	st.finish = nowMicros()
	st.Seconds = (st.finish - st.start) * 1e-6
	st.Found = found
	st.Message = fmt.Sprintf("(%d of %d found)", found, check)
	return err
}

func nowMicros() float64 { return float64(time.Now().UnixNano()) / 1e3 }

// leveldbMerge is db_bench's Stats::Merge over the threads idx (the first
// one's message is kept).
func leveldbMerge(name string, stats []Stats, idx []int) *Stats {
	m := stats[idx[0]]
	m.Name, m.Threads = name, len(idx)
	for _, i := range idx[1:] {
		o := stats[i]
		m.Done += o.Done
		m.Found += o.Found
		m.Seconds += o.Seconds
		m.start = min(m.start, o.start)
		m.finish = max(m.finish, o.finish)
		if m.Message == "" {
			m.Message = o.Message
		}
	}
	leveldbFinish(&m)
	return &m
}

func leveldbFinish(s *Stats) {
	if s.Done < 1 {
		s.Done = 1 // db_bench pretends one op was done
	}
	s.Elapsed = (s.finish - s.start) * 1e-6
	s.MicrosPerOp = s.Seconds * 1e6 / float64(s.Done)
	s.OpsPerSec = float64(s.Done) / s.Elapsed
}

// writeReport prints db_bench's Stats::Report for readrandom (exact):
//
//	%-12s : %11.3f micros/op;%s%s       ("per-thread stat", message)
//	%-12s : %11.3f (%10d / %5.3f) ops/s ("readrandom")
func (s *Stats) writeReport(b *strings.Builder) {
	sep := ""
	if s.Message != "" {
		sep = " "
	}
	fmt.Fprintf(b, "%-12s : %11.3f micros/op;%s%s\n", "per-thread stat", s.MicrosPerOp, sep, s.Message)
	fmt.Fprintf(b, "%-12s : %11.3f (%10d / %5.3f) ops/s\n", "readrandom", s.OpsPerSec, int32(s.Done), s.Elapsed)
}

// WriteText prints the fast, slow and total reports (a group without
// threads is left out, as db_bench leaves out slow with one thread), then
// the summary the plots read:
//
//	#num_threads, fast, slow, tot ops/s
//	n, fast, slow, total
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	var f, s float64
	if r.Fast != nil {
		r.Fast.writeReport(&b)
		f = r.Fast.OpsPerSec
	}
	if r.Slow != nil {
		r.Slow.writeReport(&b)
		s = r.Slow.OpsPerSec
	}
	r.Total.writeReport(&b)
	fmt.Fprintf(&b, "#num_threads, fast, slow, tot ops/s\n")
	fmt.Fprintf(&b, "%d, %.3f, %.3f, %.3f\n", r.Threads, f, s, r.Total.OpsPerSec)
	_, err := io.WriteString(w, b.String())
	return err
}
