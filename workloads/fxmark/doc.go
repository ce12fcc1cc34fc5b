// Package fxmark is the SynCord fork of FxMark's metadata and data
// microbenchmarks (MWRL, MWCM, DWOL, ...): Run runs one type on the
// workloads engine and (*Result).WriteText prints fxmark's report lines;
// Config.Progress gets a status line a second while one run goes
// (ProgressLine), which fxmark itself does not print; Sweep runs a type
// over core counts as run-fxmark.py does (its points print no status
// lines) and (*SweepResult).WriteText prints the plotter's .dat file.
package fxmark
