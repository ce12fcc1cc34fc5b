// # Metis wrmem: keeping the kernel behaviour that made it a benchmark
//
// wrmem is a lock benchmark because of the address space's mmap_lock: the
// original maps its input with mmap(MAP_ANONYMOUS) and its allocator grows
// the heap with mmap and shrinks it with munmap, so every worker's first
// touch of a page is a page fault taking mmap_lock for reading while other
// workers' mmap/munmap take it for writing. This driver keeps that shape
// and does not let the Go heap absorb it:
//
//   - the input lives in one anonymous private mmap of inputsize+1 bytes,
//     faulted in page by page by the generator and unmapped at the end of
//     the map phase;
//   - each map worker appends its word positions (8 bytes per word, as the
//     original's value pointers) to its own arena of 1 MiB anonymous
//     mappings, mmap'd on demand by the worker thread itself; each reduce
//     worker copies the grouped positions into its own arena the same way;
//   - the map arenas are unmapped by their owners at the end of the reduce
//     phase (which consumes them), the reduce arenas at the end of the run;
//   - every region is madvise(MADV_NOHUGEPAGE)'d, so a system with
//     transparent huge pages set to "always" still faults 4 KiB pages as the
//     artifact's 5.4 kernels (THP "madvise") did.
//
// Only per-key metadata (a few thousand keys for 3-letter words) lives in
// the Go heap. TestMetisFaultsInMappedMemory makes sure of the above: it
// counts minor faults with getrusage(RUSAGE_SELF) around a run and requires
// at least one fault per 4 KiB page of input and of both phases' position
// arrays, and checks the run's own mmap/munmap counts balance.
package workloads

// Metis wrmem: the word reverse index of the Metis MapReduce library as the
// SynCord artifact runs it (benchmarks/metis/app/wrmem.c). The input is
// generated in memory: inputsize/4 words of three upper-case letters from
// the LCG seed = seed*1103515245 + 12345, rnd = seed & 0x7fffffff, letter =
// rnd % 26 (seed starts at 0), each followed by a space. Map splits the
// input at word borders and emits (word, position) pairs; reduce groups the
// pairs of each hash partition by word; merge joins the sorted partitions
// into one array sorted by word. Phases run on a pool of worker threads,
// each locked and pinned by the placement rule.

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

	"golang.org/x/sys/unix"

	"github.com/syncord/syncord/numa"
)

// MetisConfig is one wrmem run; zero values mean the original's defaults.
type MetisConfig struct {
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
}

// MetisKey is one result key with its number of occurrences.
type MetisKey struct {
	Key   string `json:"key"`
	Count int    `json:"count"`
}

// MetisResult is what a wrmem run measured and found.
type MetisResult struct {
	Procs         int        `json:"cores"`
	CPUs          []int      `json:"cpus"`
	InputBytes    uint64     `json:"input_bytes"`
	SampleMS      uint64     `json:"sample_ms"`
	MapMS         uint64     `json:"map_ms"`
	ReduceMS      uint64     `json:"reduce_ms"`
	MergeMS       uint64     `json:"merge_ms"`
	SumMS         uint64     `json:"sum_ms"`
	RealMS        uint64     `json:"real_ms"`
	SampledSplits uint64     `json:"sample_tasks"`
	MapSplits     uint64     `json:"map_tasks"`
	ReduceTasks   uint32     `json:"reduce_tasks"`
	Keys          int        `json:"keys"`
	Words         uint64     `json:"words"`
	TopN          int        `json:"top_n"`
	Top           []MetisKey `json:"top"`
	// MinorFaults is getrusage(RUSAGE_SELF).ru_minflt over the run
	// (generation included); Mmaps and Munmaps count the run's own calls.
	MinorFaults uint64 `json:"minor_faults"`
	Mmaps       uint64 `json:"mmaps"`
	Munmaps     uint64 `json:"munmaps"`
}

// Bounds of a MetisConfig, far above what the artifact runs (-s 2048,
// reduce tasks by sampling: a few thousand for three-letter words) and low
// enough that no size computation overflows and per-task tables stay small.
const (
	MetisMaxInputMB = 1 << 20 // 1 TiB
	MetisMaxProcs   = 4096
	MetisMaxTasks   = 1 << 16 // -m and -r
)

// check refuses values the run cannot honour, naming the flag and bound.
func (cfg MetisConfig) check() error {
	bound := func(flag string, v, lo, hi int, what string) error {
		if v < lo || v > hi {
			return fmt.Errorf("metis: %s %d is out of range: %s must be %d to %d (0: the default)", flag, v, what, lo, hi)
		}
		return nil
	}
	for _, c := range []struct {
		flag      string
		v, lo, hi int
		what      string
	}{
		{"-p", cfg.Procs, 0, MetisMaxProcs, "the number of workers"},
		{"-s", cfg.InputMB, 0, MetisMaxInputMB, "the input size in MiB"},
		{"-m", cfg.MapTasks, 0, MetisMaxTasks, "the number of map tasks"},
		{"-r", cfg.ReduceTasks, 0, MetisMaxTasks, "the number of reduce tasks"},
		{"-l", cfg.Top, 0, math.MaxInt32, "the number of top keys"},
		{"-n", cfg.CoresPerSocket, 0, MetisMaxProcs, "cores per socket"},
	} {
		if err := bound(c.flag, c.v, c.lo, c.hi, c.what); err != nil {
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

// MetisGenerate fills buf with the wrmem input: words of three letters
// from the LCG, each followed by a space, then zeros (wrmem.c main).
func MetisGenerate(buf []byte, inputsize uint64) {
	metisGenerate(context.Background(), buf, inputsize)
}

// metisGenerate is MetisGenerate stopping early when ctx ends (it checks
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
		return nil, fmt.Errorf("mmap %d bytes: %w (lower -s or free memory)", n, err)
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

// metisPool runs phase functions on pinned worker threads.
type metisPool struct {
	work []chan func() error
	wg   sync.WaitGroup
	errs []error
}

func newMetisPool(cpus []int) (*metisPool, error) {
	p := &metisPool{work: make([]chan func() error, len(cpus)), errs: make([]error, len(cpus))}
	ready := make(chan error, len(cpus))
	for i, cpu := range cpus {
		p.work[i] = make(chan func() error)
		go func(i, cpu int) {
			if err := PinThread(cpu); err != nil {
				ready <- fmt.Errorf("metis worker %d: %w", i, err)
				for f := range p.work[i] {
					_ = f
					p.wg.Done()
				}
				return
			}
			ready <- nil
			for f := range p.work[i] {
				p.errs[i] = f()
				p.wg.Done()
			}
		}(i, cpu)
	}
	var first error
	for range cpus {
		if err := <-ready; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		p.close()
		return nil, first
	}
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
}

// metisKV is one grouped key: its positions in a reduce arena.
type metisKV struct {
	key   string
	owner int32
	addr  uint64
	n     uint64
}

// MetisRun runs wrmem. It writes "Starting mapreduce" and "Finished
// mapreduce" to progress at the moments the original does (pass io.Discard
// to omit them); everything after comes from WriteText.
func MetisRun(ctx context.Context, cfg MetisConfig, progress io.Writer) (*MetisResult, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	nprocs := cfg.Procs
	if nprocs == 0 {
		nprocs = drvOnlineCPUs()
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
	cpus, err := numa.Placement(nprocs, cps)
	if err != nil {
		return nil, fmt.Errorf("metis: %w", err)
	}
	if err := drvCheckCPUs("metis", "use a smaller -p or the machine's cores per socket (-n)", cpus); err != nil {
		return nil, err
	}
	res := &MetisResult{Procs: nprocs, CPUs: cpus, InputBytes: inputsize, TopN: top}
	var ru0 unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru0)

	pool, err := newMetisPool(cpus)
	if err != nil {
		return nil, err
	}
	defer pool.close()

	// Generate the input on worker 0's CPU (wrmem pins main to CPU 0).
	raw, err := metisMmap(int(inputsize + 1))
	if err != nil {
		return nil, fmt.Errorf("metis: input: %w", err)
	}
	res.Mmaps++
	inputMapped := true
	defer func() {
		if inputMapped {
			unix.Munmap(raw)
		}
	}()
	if err := pool.run(1, func(int) error { return metisGenerate(ctx, raw, inputsize) }); err != nil {
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
	splits := metisSplits(raw, inputsize, nsplits)
	stores := make([]*metisMapStore, nprocs)
	for i := range stores {
		stores[i] = newMetisMapStore()
	}
	var next atomic.Int64
	mapRange := func(limit int) func(w int) error {
		return func(w int) error {
			for {
				i := int(next.Add(1) - 1)
				if i >= limit || ctx.Err() != nil {
					return nil
				}
				sp := splits[i]
				if err := metisMap(raw[sp[0]:sp[1]], sp[0], stores[w]); err != nil {
					return err
				}
			}
		}
	}

	// Sample: map the first 5% of the splits and size the reduce phase from
	// the keys seen (kept: they are part of the map output).
	ntasks := cfg.ReduceTasks
	var sampleTime time.Duration
	nsampled := 0
	if ntasks == 0 {
		t0 := time.Now()
		nsampled = metisSamplePercent * len(splits) / 100
		if nsampled < nprocs {
			nsampled = min(nprocs, len(splits))
		}
		if nsampled == 0 {
			nsampled = 1
		}
		if err := pool.run(nprocs, mapRange(nsampled)); err != nil {
			return nil, fmt.Errorf("metis sample: %w", err)
		}
		seen := map[string]struct{}{}
		for _, s := range stores {
			for i := range s.keys {
				seen[s.keys[i].name] = struct{}{}
			}
		}
		ntasks = max(metisPrimeAtLeast(len(seen)/metisKeysPerBucket), nprocs*metisReducePerCore)
		sampleTime = time.Since(t0)
	}
	res.SampledSplits = uint64(nsampled)
	res.MapSplits = uint64(len(splits) - nsampled)
	res.ReduceTasks = uint32(ntasks)

	// Map the rest, then bucket each worker's keys by partition.
	t0 := time.Now()
	next.Store(int64(nsampled)) // the sample's workers overshot the counter
	if err := pool.run(nprocs, mapRange(len(splits))); err != nil {
		return nil, fmt.Errorf("metis map: %w", err)
	}
	if err := pool.run(nprocs, func(w int) error {
		s := stores[w]
		s.parts = make([][]int32, ntasks)
		for id := range s.keys {
			p := metisHash(s.keys[id].name) % uint32(ntasks)
			s.parts[p] = append(s.parts[p], int32(id))
		}
		return nil
	}); err != nil {
		return nil, err
	}
	// The positions are offsets, so the input can go with the map phase.
	inputMapped = false
	if err := unix.Munmap(raw); err != nil {
		return nil, fmt.Errorf("metis: munmap input: %w", err)
	}
	res.Munmaps++
	mapTime := time.Since(t0)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// Reduce: group each partition's pairs by key into the reduce worker's
	// arena, sorted by key; then the map arenas go.
	t0 = time.Now()
	rarenas := make([]*metisArena, nprocs)
	for i := range rarenas {
		rarenas[i] = &metisArena{}
	}
	defer func() {
		for _, a := range rarenas {
			a.release()
		}
	}()
	parts := make([][]metisKV, ntasks)
	next.Store(0)
	if err := pool.run(nprocs, func(w int) error {
		type ref struct{ w, id int32 }
		group := map[string][]ref{}
		for {
			p := int(next.Add(1) - 1)
			if p >= ntasks || ctx.Err() != nil {
				return nil
			}
			clear(group)
			for sw, s := range stores {
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
					total += int(stores[r.w].keys[r.id].n)
				}
				addr, err := rarenas[w].alloc(total)
				if err != nil {
					return err
				}
				dst := rarenas[w].words(addr, total)[:0:total]
				for _, r := range group[k] {
					s := stores[r.w]
					dst = s.copyValues(&s.keys[r.id], dst)
				}
				out = append(out, metisKV{key: k, owner: int32(w), addr: addr, n: uint64(total)})
			}
			parts[p] = out
		}
	}); err != nil {
		return nil, fmt.Errorf("metis reduce: %w", err)
	}
	var unmapped atomic.Uint64
	if err := pool.run(nprocs, func(w int) error {
		n, err := stores[w].arena.release()
		unmapped.Add(n)
		return err
	}); err != nil {
		return nil, fmt.Errorf("metis reduce: %w", err)
	}
	for _, s := range stores {
		res.Mmaps += s.arena.mmaps
	}
	res.Munmaps += unmapped.Load()
	reduceTime := time.Since(t0)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// Merge: pairwise rounds on up to nprocs workers until one sorted
	// array is left (Metis's merge without PSRS).
	t0 = time.Now()
	lists := parts
	for len(lists) > 1 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pairs := (len(lists) + 1) / 2
		merged := make([][]metisKV, pairs)
		next.Store(0)
		if err := pool.run(min(nprocs, pairs), func(int) error {
			for {
				i := int(next.Add(1) - 1)
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
	var final []metisKV
	if len(lists) == 1 {
		final = lists[0]
	}
	mergeTime := time.Since(t0)
	realTime := time.Since(realStart)
	fmt.Fprintln(progress, "Finished mapreduce")

	for _, a := range rarenas {
		res.Mmaps += a.mmaps
		n, err := a.release()
		res.Munmaps += n
		if err != nil {
			return nil, fmt.Errorf("metis: %w", err)
		}
	}
	res.Keys = len(final)
	for i, kv := range final {
		res.Words += kv.n
		if i < top {
			res.Top = append(res.Top, MetisKey{Key: kv.key, Count: int(kv.n)})
		}
	}
	ms := func(d time.Duration) uint64 { return uint64(d / time.Millisecond) }
	res.SampleMS, res.MapMS, res.ReduceMS, res.MergeMS = ms(sampleTime), ms(mapTime), ms(reduceTime), ms(mergeTime)
	res.SumMS = ms(sampleTime + mapTime + reduceTime + mergeTime)
	res.RealMS = ms(realTime)
	var ru1 unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru1)
	res.MinorFaults = uint64(ru1.Minflt - ru0.Minflt)
	runtime.KeepAlive(stores)
	return res, nil
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

// WriteText prints mr_print_stats and, unless quiet, print_top (exact):
//
//	Runtime in milliseconds [%d cores]
//	\tSample:\t%lu\tMap:\t%lu\tReduce:\t%lu\tMerge:\t%lu\tSum:\t%lu\tReal:\t%lu\t
//	Number of Tasks
//	\tSample:\t%lu\tMap:\t%lu\tReduce:\t%u\t
//
//	wordreverseindex: results (TOP %d from %zu keys, %lu words):
//	%15s - %d
func (r *MetisResult) WriteText(w io.Writer, quiet bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Runtime in milliseconds [%d cores]\n\t", r.Procs)
	fmt.Fprintf(&b, "Sample:\t%d\tMap:\t%d\tReduce:\t%d\tMerge:\t%d\tSum:\t%d\tReal:\t%d\t", r.SampleMS, r.MapMS, r.ReduceMS, r.MergeMS, r.SumMS, r.RealMS)
	fmt.Fprintf(&b, "\nNumber of Tasks\n\t")
	fmt.Fprintf(&b, "Sample:\t%d\tMap:\t%d\tReduce:\t%d\t\n", r.SampledSplits, r.MapSplits, r.ReduceTasks)
	if !quiet {
		fmt.Fprintf(&b, "\nwordreverseindex: results (TOP %d from %d keys, %d words):\n", r.TopN, r.Keys, r.Words)
		for _, k := range r.Top {
			fmt.Fprintf(&b, "%15s - %d\n", k.Key, uint32(k.Count))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
