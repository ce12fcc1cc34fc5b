package metis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/internal/setting"
	"github.com/syncord/syncord/workloads"
	"golang.org/x/sys/unix"
)

// Config is one wrmem run; zero values mean the original's defaults.
type Config struct {
	// Procs is -p, the number of workers (0: every CPU this process may
	// use).
	Procs int
	// InputMB is -s, the input size in MiB (0: 2048, i.e. 0x80000000 bytes).
	InputMB int
	// Top is -l, how many keys to show (0: 5).
	Top int
	// MapTasks is -m, the number of input splits (0: 16 per worker).
	MapTasks int
	// ReduceTasks is -r, the number of hash partitions (0: by sampling).
	ReduceTasks int
	// CoresPerSocket feeds the placement rule (0: Procs, i.e. worker i on
	// CPU i as Metis's own affinity does).
	CoresPerSocket int
	// SysRoot is the sysfs mount whose online CPUs the workers' must be
	// among ("" means /sys).
	SysRoot pseudofs.FS
	// Quiet is -q: WriteText leaves out the top keys.
	Quiet bool
	// Progress receives "Starting mapreduce" and "Finished mapreduce" when
	// the original prints them (nil: none).
	Progress io.Writer
}

// Key is one result key with its number of occurrences.
type Key struct {
	Key   string `json:"key"`
	Count int    `json:"count"`
}

// Result is what a wrmem run measured and found.
type Result struct {
	Procs         int    `json:"cores"`
	CPUs          []int  `json:"cpus"`
	InputBytes    uint64 `json:"input_bytes"`
	SampleMS      uint64 `json:"sample_ms"`
	MapMS         uint64 `json:"map_ms"`
	ReduceMS      uint64 `json:"reduce_ms"`
	MergeMS       uint64 `json:"merge_ms"`
	SumMS         uint64 `json:"sum_ms"`
	RealMS        uint64 `json:"real_ms"`
	SampledSplits uint64 `json:"sample_tasks"`
	MapSplits     uint64 `json:"map_tasks"`
	ReduceTasks   uint32 `json:"reduce_tasks"`
	Keys          int    `json:"keys"`
	Words         uint64 `json:"words"`
	TopN          int    `json:"top_n"`
	Top           []Key  `json:"top"`
	// MinorFaults is getrusage(RUSAGE_SELF).ru_minflt over the run
	// (generation included); Mmaps and Munmaps count the run's own calls.
	MinorFaults uint64 `json:"minor_faults"`
	Mmaps       uint64 `json:"mmaps"`
	Munmaps     uint64 `json:"munmaps"`

	quiet bool
}

// Bounds of a Config, far above what the artifact runs (-s 2048,
// reduce tasks by sampling: a few thousand for three-letter words) and low
// enough that no size computation overflows and per-task tables stay small.
const (
	MaxInputMB = 1 << 20 // 1 TiB
	MaxProcs   = 4096
	MaxTasks   = 1 << 16 // -m and -r
)

// check refuses values the run cannot honour, naming the flag and bound.
func (cfg Config) check() error {
	bound := func(name string, v, lo, hi int, what string) error {
		if v < lo || v > hi {
			return setting.Invalid("metis: %s %d is out of range: %s must be %d to %d (0: the default)", setting.Name(name), v, what, lo, hi)
		}
		return nil
	}
	for _, c := range []struct {
		name      string
		v, lo, hi int
		what      string
	}{
		{"Procs", cfg.Procs, 0, MaxProcs, "the number of workers"},
		{"InputMB", cfg.InputMB, 0, MaxInputMB, "the input size in MiB"},
		{"MapTasks", cfg.MapTasks, 0, MaxTasks, "the number of map tasks"},
		{"ReduceTasks", cfg.ReduceTasks, 0, MaxTasks, "the number of reduce tasks"},
		{"Top", cfg.Top, 0, math.MaxInt32, "the number of top keys"},
		{"CoresPerSocket", cfg.CoresPerSocket, 0, MaxProcs, "cores per socket"},
	} {
		if err := bound(c.name, c.v, c.lo, c.hi, c.what); err != nil {
			return err
		}
	}
	return nil
}

const (
	metisDefaultInput  = 0x80000000
	metisSplitsPerCore = 16
	metisReducePerCore = 16 // def_gr_tasks_per_cpu
	metisSamplePercent = 5
	metisKeysPerBucket = 10 // expected_keys_per_bucket
	metisChunk         = 1 << 20
	metisMaxKeyLen     = 1024
	metisBlockVals     = 63 // a value block: next pointer + 63 positions = 512 bytes
)

// Generate fills buf with the wrmem input: words of three letters
// from the LCG, each followed by a space, then zeros (wrmem.c main).
func Generate(buf []byte, inputsize uint64) {
	metisGenerate(context.Background(), buf, inputsize)
}

// metisGenerate is Generate stopping early when ctx ends (it checks
// every 4 MiB of input, a few milliseconds).
func metisGenerate(ctx context.Context, buf []byte, inputsize uint64) error {
	var seed uint32
	pos := 0
	for i := uint64(0); i < inputsize/4; i++ {
		if i&(1<<20-1) == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		for j := 0; j < 3; j++ {
			seed = seed*1103515245 + 12345
			buf[pos] = byte((seed&0x7fffffff)%26) + 'A'
			pos++
		}
		buf[pos] = ' '
		pos++
	}
	clear(buf[pos:inputsize])
	return nil
}

// metisArena is one worker's bump allocator over anonymous mappings.
// Addresses are chunk<<32 | offset, in 8-byte words.
type metisArena struct {
	chunks [][]uint64
	raw    [][]byte
	cur    int // words used in the last chunk
	mmaps  uint64
}

func metisMmap(n int) ([]byte, error) {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, setting.Errorf("mmap %d bytes: %w (lower {InputMB} or free memory)", n, err)
	}
	// Keep 4 KiB faults even where THP is "always" (see package comment).
	_ = unix.Madvise(b, unix.MADV_NOHUGEPAGE)
	return b, nil
}

// alloc returns the address of n zeroed 8-byte words.
func (a *metisArena) alloc(n int) (uint64, error) {
	if len(a.chunks) == 0 || a.cur+n > len(a.chunks[len(a.chunks)-1]) {
		size := metisChunk
		if n*8 > size {
			size = (n*8 + 4095) &^ 4095
		}
		b, err := metisMmap(size)
		if err != nil {
			return 0, err
		}
		a.mmaps++
		a.raw = append(a.raw, b)
		a.chunks = append(a.chunks, unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), size/8))
		a.cur = 0
	}
	addr := uint64(len(a.chunks)-1)<<32 | uint64(a.cur)
	a.cur += n
	return addr, nil
}

func (a *metisArena) words(addr uint64, n int) []uint64 {
	c, off := addr>>32, int(addr&0xffffffff)
	return a.chunks[c][off : off+n]
}

// release unmaps every chunk and returns how many.
func (a *metisArena) release() (uint64, error) {
	var n uint64
	var first error
	for _, b := range a.raw {
		if err := unix.Munmap(b); err != nil && first == nil {
			first = fmt.Errorf("munmap: %w", err)
		}
		n++
	}
	a.raw, a.chunks, a.cur = nil, nil, 0
	return n, first
}

// metisMapKey is one key in one map worker: its chain of value blocks.
type metisMapKey struct {
	name        string
	first, last uint64 // block addresses
	n           uint64 // values
}

// metisMapStore is one map worker's output: keys with their positions.
// Keys of up to 8 bytes (all of wrmem's) are found through a small
// open-addressing table on the key packed into a uint64 (keys hold no zero
// byte, so the packing is unique and 0 marks a free slot); longer keys use
// a Go map.
type metisMapStore struct {
	slots []metisSlot
	used  int
	long  map[string]int32
	keys  []metisMapKey
	arena metisArena
	parts [][]int32 // by partition, after the map phase
}

type metisSlot struct {
	packed uint64
	id     int32
}

func newMetisMapStore() *metisMapStore {
	return &metisMapStore{slots: make([]metisSlot, 1<<12), long: map[string]int32{}}
}

func metisSlotHash(packed uint64, mask int) int {
	return int((packed*0x9E3779B97F4A7C15)>>32) & mask
}

// lookup returns the id of key (packed when len(key) <= 8), adding it.
func (s *metisMapStore) lookup(key []byte, packed uint64) int32 {
	if len(key) > 8 {
		id, ok := s.long[string(key)]
		if !ok {
			id = int32(len(s.keys))
			s.long[string(key)] = id
			s.keys = append(s.keys, metisMapKey{name: string(key)})
		}
		return id
	}
	mask := len(s.slots) - 1
	for i := metisSlotHash(packed, mask); ; i = (i + 1) & mask {
		sl := &s.slots[i]
		if sl.packed == packed {
			return sl.id
		}
		if sl.packed == 0 {
			id := int32(len(s.keys))
			sl.packed, sl.id = packed, id
			s.keys = append(s.keys, metisMapKey{name: string(key)})
			if s.used++; s.used*2 > len(s.slots) {
				s.grow()
			}
			return id
		}
	}
}

func (s *metisMapStore) grow() {
	old := s.slots
	s.slots = make([]metisSlot, 2*len(old))
	mask := len(s.slots) - 1
	for _, sl := range old {
		if sl.packed == 0 {
			continue
		}
		i := metisSlotHash(sl.packed, mask)
		for s.slots[i].packed != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = sl
	}
}

func (s *metisMapStore) emit(key []byte, packed, pos uint64) error {
	id := s.lookup(key, packed)
	k := &s.keys[id]
	slot := int(k.n % metisBlockVals)
	if slot == 0 {
		b, err := s.arena.alloc(1 + metisBlockVals)
		if err != nil {
			return err
		}
		if k.n == 0 {
			k.first = b
		} else {
			s.arena.words(k.last, 1)[0] = b + 1 // +1: 0 means none
		}
		k.last = b
	}
	c, off := k.last>>32, int(k.last&0xffffffff)
	s.arena.chunks[c][off+1+slot] = pos
	k.n++
	return nil
}

// copyValues appends key k's positions to dst.
func (s *metisMapStore) copyValues(k *metisMapKey, dst []uint64) []uint64 {
	b, left := k.first, k.n
	for left > 0 {
		blk := s.arena.words(b, 1+metisBlockVals)
		n := min(left, metisBlockVals)
		dst = append(dst, blk[1:1+n]...)
		left -= n
		b = blk[0] - 1
	}
	return dst
}

// metisHash is Metis's default partition hash (djb2 over the key bytes,
// modulo 2^32-1).
func metisHash(key string) uint32 {
	var h uint64 = 5381
	for i := 0; i < len(key); i++ {
		h = h<<5 + h + uint64(key[i])
	}
	return uint32(h % 0xffffffff)
}

// metisMap is wrmem's map over one split: words of letters (and
// apostrophes after the first letter), upper-cased.
func metisMap(data []byte, base uint64, s *metisMapStore) error {
	var key [metisMaxKeyLen]byte
	in := false
	n := 0
	var packed, start uint64
	for i, c := range data {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if in {
			if (c < 'A' || c > 'Z') && c != '\'' {
				if err := s.emit(key[:n], packed, start); err != nil {
					return err
				}
				in = false
			} else {
				if n >= metisMaxKeyLen-1 {
					return fmt.Errorf("metis map: word at %d longer than %d bytes", start, metisMaxKeyLen-1)
				}
				if n < 8 {
					packed |= uint64(c) << (8 * n)
				}
				key[n] = c
				n++
			}
		} else if c >= 'A' && c <= 'Z' {
			start = base + uint64(i)
			key[0] = c
			packed = uint64(c)
			n = 1
			in = true
		}
	}
	if in {
		return s.emit(key[:n], packed, start)
	}
	return nil
}

// metisSplits divides input[:flen] into about nsplits pieces ending at a
// separator (wr_splitter).
func metisSplits(input []byte, flen uint64, nsplits int) [][2]uint64 {
	var out [][2]uint64
	length := flen / uint64(nsplits)
	for pos := uint64(0); pos < flen; {
		l := length
		if l == 0 {
			l = 1
		}
		if pos+l > flen {
			l = flen - pos
		}
		end := pos + l
		for end < flen {
			c := input[end]
			if c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0 {
				break
			}
			end++
		}
		out = append(out, [2]uint64{pos, end})
		pos = end
	}
	return out
}

// metisPool runs phase functions on the engine's pinned worker threads
// (workloads.Launch): each task waits for functions on its own channel
// until the pool closes.
type metisPool struct {
	tasks *workloads.Run
	work  []chan func() error
	wg    sync.WaitGroup
	errs  []error
}

func newMetisPool(ctx context.Context, cfg workloads.Config) (*metisPool, error) {
	p := &metisPool{work: make([]chan func() error, cfg.Tasks), errs: make([]error, cfg.Tasks)}
	for i := range p.work {
		p.work[i] = make(chan func() error)
	}
	run, err := workloads.Launch(ctx, cfg, func(t *workloads.Task) error {
		if !t.Ready() {
			return nil
		}
		for f := range p.work[t.ID] {
			p.errs[t.ID] = f()
			p.wg.Done()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("metis: %w", err)
	}
	p.tasks = run
	return p, nil
}

// run runs f(i) on the first n workers and waits.
func (p *metisPool) run(n int, f func(i int) error) error {
	p.wg.Add(n)
	for i := 0; i < n; i++ {
		p.work[i] <- func() error { return f(i) }
	}
	p.wg.Wait()
	return errors.Join(p.errs[:n]...)
}

func (p *metisPool) close() {
	for _, c := range p.work {
		close(c)
	}
	p.tasks.Stop()
}

// metisKV is one grouped key: its positions in a reduce arena.
type metisKV struct {
	key   string
	owner int32
	addr  uint64
	n     uint64
}

// wrmem is one run's state, phase to phase.
type wrmem struct {
	ctx    context.Context
	pool   *metisPool
	nprocs int
	res    *Result
	// input is the generated input, mapped until the end of the map phase.
	input  []byte
	splits [][2]uint64
	stores []*metisMapStore
	// next hands out splits, partitions and merge pairs to the workers.
	next atomic.Int64
	// ntasks is the number of reduce partitions.
	ntasks int
	// rarenas are the reduce workers' arenas, parts the partitions'
	// grouped keys.
	rarenas []*metisArena
	parts   [][]metisKV
}

// Run runs wrmem. It writes "Starting mapreduce" and "Finished
// mapreduce" to cfg.Progress at the moments the original does (nil: not
// at all); everything after comes from WriteText.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	nprocs := cfg.Procs
	if nprocs == 0 {
		nprocs = workloads.UsableCPUs()
	}
	inputsize := uint64(metisDefaultInput)
	if cfg.InputMB > 0 {
		inputsize = uint64(cfg.InputMB) << 20
	}
	top := cfg.Top
	if top == 0 {
		top = 5
	}
	cps := cfg.CoresPerSocket
	if cps == 0 {
		cps = nprocs
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	var ru0 unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru0)
	pool, err := newMetisPool(ctx, workloads.Config{Tasks: nprocs, CoresPerSocket: cps, SysRoot: cfg.SysRoot, Allocates: true})
	if err != nil {
		return nil, err
	}
	defer pool.close()
	w := &wrmem{ctx: ctx, pool: pool, nprocs: nprocs, res: &Result{Procs: nprocs, InputBytes: inputsize, TopN: top, quiet: cfg.Quiet}}
	for _, t := range pool.tasks.Tasks() {
		w.res.CPUs = append(w.res.CPUs, t.CPU)
	}
	defer w.unmapInput()
	defer w.releaseReduce()

	// Generate the input on worker 0's CPU (wrmem pins main to CPU 0).
	if w.input, err = metisMmap(int(inputsize + 1)); err != nil {
		return nil, fmt.Errorf("metis: input: %w", err)
	}
	w.res.Mmaps++
	if err := pool.run(1, func(int) error { return metisGenerate(ctx, w.input, inputsize) }); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fmt.Fprintln(progress, "Starting mapreduce")

	realStart := time.Now()
	nsplits := cfg.MapTasks
	if nsplits == 0 {
		nsplits = nprocs * metisSplitsPerCore
	}
	w.splits = metisSplits(w.input, inputsize, nsplits)
	w.stores = make([]*metisMapStore, nprocs)
	for i := range w.stores {
		w.stores[i] = newMetisMapStore()
	}
	w.ntasks = cfg.ReduceTasks
	var times [4]time.Duration // sample, map, reduce, merge
	nsampled := 0
	if w.ntasks == 0 {
		t0 := time.Now()
		if nsampled, err = w.sample(); err != nil {
			return nil, err
		}
		times[0] = time.Since(t0)
	}
	w.res.SampledSplits = uint64(nsampled)
	w.res.MapSplits = uint64(len(w.splits) - nsampled)
	w.res.ReduceTasks = uint32(w.ntasks)
	var final []metisKV
	for i, phase := range []func() error{
		func() error { return w.mapRest(nsampled) },
		w.reduce,
		func() (err error) { final, err = w.merge(); return err },
	} {
		t0 := time.Now()
		if err := phase(); err != nil {
			return nil, err
		}
		times[i+1] = time.Since(t0)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	realTime := time.Since(realStart)
	fmt.Fprintln(progress, "Finished mapreduce")

	if err := w.releaseReduce(); err != nil {
		return nil, fmt.Errorf("metis: %w", err)
	}
	res := w.res
	res.Keys = len(final)
	for i, kv := range final {
		res.Words += kv.n
		if i < top {
			res.Top = append(res.Top, Key{Key: kv.key, Count: int(kv.n)})
		}
	}
	ms := func(d time.Duration) uint64 { return uint64(d / time.Millisecond) }
	res.SampleMS, res.MapMS, res.ReduceMS, res.MergeMS = ms(times[0]), ms(times[1]), ms(times[2]), ms(times[3])
	res.SumMS = ms(times[0] + times[1] + times[2] + times[3])
	res.RealMS = ms(realTime)
	var ru1 unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru1)
	res.MinorFaults = uint64(ru1.Minflt - ru0.Minflt)
	runtime.KeepAlive(w.stores)
	return res, nil
}

// mapRange returns the worker function that maps the splits the shared
// counter hands out, up to limit.
func (w *wrmem) mapRange(limit int) func(worker int) error {
	return func(worker int) error {
		for {
			i := int(w.next.Add(1) - 1)
			if i >= limit || w.ctx.Err() != nil {
				return nil
			}
			sp := w.splits[i]
			if err := metisMap(w.input[sp[0]:sp[1]], sp[0], w.stores[worker]); err != nil {
				return err
			}
		}
	}
}

// sample maps the first 5% of the splits and sizes the reduce phase from
// the keys seen (kept: they are part of the map output). It returns how
// many splits it mapped.
func (w *wrmem) sample() (int, error) {
	nsampled := metisSamplePercent * len(w.splits) / 100
	if nsampled < w.nprocs {
		nsampled = min(w.nprocs, len(w.splits))
	}
	if nsampled == 0 {
		nsampled = 1
	}
	if err := w.pool.run(w.nprocs, w.mapRange(nsampled)); err != nil {
		return 0, fmt.Errorf("metis sample: %w", err)
	}
	seen := map[string]struct{}{}
	for _, s := range w.stores {
		for i := range s.keys {
			seen[s.keys[i].name] = struct{}{}
		}
	}
	w.ntasks = max(metisPrimeAtLeast(len(seen)/metisKeysPerBucket), w.nprocs*metisReducePerCore)
	return nsampled, nil
}

// mapRest maps the splits after the sampled ones, buckets each worker's
// keys by partition and unmaps the input (the positions are offsets).
func (w *wrmem) mapRest(nsampled int) error {
	w.next.Store(int64(nsampled)) // the sample's workers overshot the counter
	if err := w.pool.run(w.nprocs, w.mapRange(len(w.splits))); err != nil {
		return fmt.Errorf("metis map: %w", err)
	}
	if err := w.pool.run(w.nprocs, func(worker int) error {
		s := w.stores[worker]
		s.parts = make([][]int32, w.ntasks)
		for id := range s.keys {
			p := metisHash(s.keys[id].name) % uint32(w.ntasks)
			s.parts[p] = append(s.parts[p], int32(id))
		}
		return nil
	}); err != nil {
		return err
	}
	input := w.input
	w.input = nil
	if err := unix.Munmap(input); err != nil {
		return fmt.Errorf("metis: munmap input: %w", err)
	}
	w.res.Munmaps++
	return nil
}

// unmapInput unmaps the input if a failed run still holds it.
func (w *wrmem) unmapInput() {
	if w.input != nil {
		unix.Munmap(w.input)
		w.input = nil
	}
}

// reduce groups each partition's pairs by key into the reduce worker's
// arena, sorted by key; then the map arenas go.
func (w *wrmem) reduce() error {
	w.rarenas = make([]*metisArena, w.nprocs)
	for i := range w.rarenas {
		w.rarenas[i] = &metisArena{}
	}
	w.parts = make([][]metisKV, w.ntasks)
	w.next.Store(0)
	if err := w.pool.run(w.nprocs, w.reduceWorker); err != nil {
		return fmt.Errorf("metis reduce: %w", err)
	}
	var unmapped atomic.Uint64
	if err := w.pool.run(w.nprocs, func(worker int) error {
		n, err := w.stores[worker].arena.release()
		unmapped.Add(n)
		return err
	}); err != nil {
		return fmt.Errorf("metis reduce: %w", err)
	}
	for _, s := range w.stores {
		w.res.Mmaps += s.arena.mmaps
	}
	w.res.Munmaps += unmapped.Load()
	return nil
}

// reduceWorker reduces the partitions the shared counter hands out.
func (w *wrmem) reduceWorker(worker int) error {
	type ref struct{ w, id int32 }
	group := map[string][]ref{}
	arena := w.rarenas[worker]
	for {
		p := int(w.next.Add(1) - 1)
		if p >= w.ntasks || w.ctx.Err() != nil {
			return nil
		}
		clear(group)
		for sw, s := range w.stores {
			for _, id := range s.parts[p] {
				k := s.keys[id].name
				group[k] = append(group[k], ref{int32(sw), id})
			}
		}
		keys := make([]string, 0, len(group))
		for k := range group {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([]metisKV, 0, len(keys))
		for _, k := range keys {
			var total int
			for _, r := range group[k] {
				total += int(w.stores[r.w].keys[r.id].n)
			}
			addr, err := arena.alloc(total)
			if err != nil {
				return err
			}
			dst := arena.words(addr, total)[:0:total]
			for _, r := range group[k] {
				s := w.stores[r.w]
				dst = s.copyValues(&s.keys[r.id], dst)
			}
			out = append(out, metisKV{key: k, owner: int32(worker), addr: addr, n: uint64(total)})
		}
		w.parts[p] = out
	}
}

// merge joins the sorted partitions in pairwise rounds on up to nprocs
// workers until one sorted array is left (Metis's merge without PSRS).
func (w *wrmem) merge() ([]metisKV, error) {
	lists := w.parts
	for len(lists) > 1 {
		if err := w.ctx.Err(); err != nil {
			return nil, err
		}
		pairs := (len(lists) + 1) / 2
		merged := make([][]metisKV, pairs)
		w.next.Store(0)
		if err := w.pool.run(min(w.nprocs, pairs), func(int) error {
			for {
				i := int(w.next.Add(1) - 1)
				if i >= pairs {
					return nil
				}
				if 2*i+1 == len(lists) {
					merged[i] = lists[2*i]
					continue
				}
				merged[i] = metisMerge(lists[2*i], lists[2*i+1])
			}
		}); err != nil {
			return nil, err
		}
		lists = merged
	}
	if len(lists) == 1 {
		return lists[0], nil
	}
	return nil, nil
}

// releaseReduce unmaps the reduce arenas, counting their calls; a second
// call does nothing.
func (w *wrmem) releaseReduce() error {
	var first error
	for _, a := range w.rarenas {
		w.res.Mmaps += a.mmaps
		n, err := a.release()
		w.res.Munmaps += n
		if err != nil && first == nil {
			first = err
		}
	}
	w.rarenas = nil
	return first
}

func metisMerge(a, b []metisKV) []metisKV {
	out := make([]metisKV, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if strings.Compare(a[0].key, b[0].key) <= 0 {
			out = append(out, a[0])
			a = a[1:]
		} else {
			out = append(out, b[0])
			b = b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// metisPrimeAtLeast returns the smallest prime >= n (Metis sizes the
// partition table with a prime).
func metisPrimeAtLeast(n int) int {
	if n <= 2 {
		return 2
	}
	for ; ; n++ {
		prime := true
		for d := 2; d*d <= n; d++ {
			if n%d == 0 {
				prime = false
				break
			}
		}
		if prime {
			return n
		}
	}
}

// WriteText prints mr_print_stats and, unless Config.Quiet, print_top
// (exact):
//
//	Runtime in milliseconds [%d cores]
//	\tSample:\t%lu\tMap:\t%lu\tReduce:\t%lu\tMerge:\t%lu\tSum:\t%lu\tReal:\t%lu\t
//	Number of Tasks
//	\tSample:\t%lu\tMap:\t%lu\tReduce:\t%u\t
//
//	wordreverseindex: results (TOP %d from %zu keys, %lu words):
//	%15s - %d
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Runtime in milliseconds [%d cores]\n\t", r.Procs)
	fmt.Fprintf(&b, "Sample:\t%d\tMap:\t%d\tReduce:\t%d\tMerge:\t%d\tSum:\t%d\tReal:\t%d\t", r.SampleMS, r.MapMS, r.ReduceMS, r.MergeMS, r.SumMS, r.RealMS)
	fmt.Fprintf(&b, "\nNumber of Tasks\n\t")
	fmt.Fprintf(&b, "Sample:\t%d\tMap:\t%d\tReduce:\t%d\t\n", r.SampledSplits, r.MapSplits, r.ReduceTasks)
	if !r.quiet {
		fmt.Fprintf(&b, "\nwordreverseindex: results (TOP %d from %d keys, %d words):\n", r.TopN, r.Keys, r.Words)
		for _, k := range r.Top {
			fmt.Fprintf(&b, "%15s - %d\n", k.Key, uint32(k.Count))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
