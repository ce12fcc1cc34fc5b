// Package metis is Metis wrmem, the word reverse index of the Metis
// MapReduce library: Run runs it on worker threads of the workloads
// engine, (*Result).WriteText prints the original's statistics.
//
// It runs wrmem as the SynCord artifact does
// (benchmarks/metis/app/wrmem.c). The input is
// generated in memory: inputsize/4 words of three upper-case letters from
// the LCG seed = seed*1103515245 + 12345, rnd = seed & 0x7fffffff, letter =
// rnd % 26 (seed starts at 0), each followed by a space. Map splits the
// input at word borders and emits (word, position) pairs; reduce groups the
// pairs of each hash partition by word; merge joins the sorted partitions
// into one array sorted by word. Phases run on a pool of worker threads,
// each locked and pinned by the placement rule (workloads.Launch).
//
// # The kernel behaviour that made it a benchmark
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
package metis
