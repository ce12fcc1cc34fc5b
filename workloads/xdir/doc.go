// Package xdir is xDir-rename, the bully/victim workload of the SCL paper
// as the SynCord artifact runs it (benchmarks/xDir-rename/benchmark.c):
// Prepare makes its directories, Run runs it on the workloads engine and
// (*Result).WriteText prints the artifact's lines. Config.Progress gets a
// status line a second while it runs (ProgressLine: the bullies' and the
// victims' renames so far), which the artifact does not print.
//
// Task i runs on CPU i; even tasks are bullies that rename a fresh file
// from SRC into DST_DIRTY (a directory with many entries, so the rename
// holds the filesystem's rename lock long on ext4 without dir_index), odd
// tasks are victims that rename into the empty DST. Each loop is open(O_CREAT) + close + rename +
// unlink of a 36-character random name, exactly the artifact's system calls.
package xdir
