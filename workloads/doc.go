// Package workloads holds the benchmark drivers (will-it-scale tests, the
// runtest sweep, FxMark, xDir-rename, Metis wrmem, LevelDB readrandom) on one
// engine that pins tasks by the SynCord placement rule and samples padded
// per-task counters once a second.
package workloads
