// Package leveldb is LevelDB db_bench's readrandom on goleveldb: Run fills
// the database (FillSeq) and runs the readers on the workloads engine;
// (*Result).WriteText prints db_bench's report and the plots' summary.
//
// LevelDB readrandom as the SynCord artifact runs db_bench (its modified
// leveldb-1.20 db/db_bench.cc and run_db_bench.sh): fill a database of num
// keys "%016d" with value-size-byte values by fillseq on one thread, then
// run readrandom on N threads, each pinned by the placement rule and
// seeded with Park-Miller Random(1000+i), for a fixed duration; report
// db_bench's two lines for the fast threads, the slow threads and all.
//
// The store is github.com/syndtr/goleveldb, the Go port that keeps
// LevelDB's design (memtable, sorted tables, block cache, levelled
// compaction), opened with LevelDB's default options.
package leveldb
